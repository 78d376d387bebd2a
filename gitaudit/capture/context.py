"""Who and where: actor, CI job and correlation id, as pure functions of an environment.

Correlation (DESIGN.md): ``GITAUDIT_CORRELATION_ID`` if set; else the CI job
(GitHub Actions run + attempt + job, GitLab ``CI_JOB_ID``, Jenkins
``BUILD_TAG``, Buildkite ``BUILDKITE_JOB_ID``, CircleCI
``CIRCLE_WORKFLOW_JOB_ID``); else a new UUIDv7. The wrapper exports the
result to git's environment so hooks and nested commands share it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms to import; annotations are strings at runtime
    from collections.abc import Callable, Mapping
    from typing import Any

CORRELATION_ENV = "GITAUDIT_CORRELATION_ID"
PARENT_ENV = "GITAUDIT_PARENT_ID"
MAX_CORRELATION_CHARS = 200

# Environment variables the functions below read, in the order `gitaudit trace2 enable`
# lists them in git's trace2.envVars: git then reports them (def_param events) to the
# daemon, which has no other view of a git process's environment.
TRACE2_ENV_VARS = (
    CORRELATION_ENV, PARENT_ENV,
    "GITHUB_ACTIONS", "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_JOB", "GITHUB_REPOSITORY",
    "GITHUB_SERVER_URL", "GITHUB_WORKFLOW",
    "GITLAB_CI", "CI_JOB_ID", "CI_JOB_NAME", "CI_PIPELINE_ID", "CI_JOB_URL",
    "JENKINS_URL", "JENKINS_HOME", "BUILD_TAG", "BUILD_NUMBER", "JOB_NAME", "BUILD_URL",
    "BUILDKITE", "BUILDKITE_JOB_ID", "BUILDKITE_BUILD_NUMBER", "BUILDKITE_PIPELINE_SLUG",
    "BUILDKITE_BUILD_URL",
    "CIRCLECI", "CIRCLE_WORKFLOW_JOB_ID", "CIRCLE_JOB", "CIRCLE_BUILD_NUM", "CIRCLE_WORKFLOW_ID",
    "CIRCLE_BUILD_URL",
    "CI",
    "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
)  # fmt: skip


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _truthy(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() in {"1", "true", "yes"}


def _github(env: Mapping[str, str]) -> dict[str, Any] | None:
    if not _truthy(env, "GITHUB_ACTIONS"):
        return None
    run_id = _get(env, "GITHUB_RUN_ID")
    attempt = _get(env, "GITHUB_RUN_ATTEMPT")
    server, repo = _get(env, "GITHUB_SERVER_URL"), _get(env, "GITHUB_REPOSITORY")
    url = f"{server}/{repo}/actions/runs/{run_id}" if server and repo and run_id else None
    if url and attempt:
        url += f"/attempts/{attempt}"
    return {
        "provider": "github",
        "job": _get(env, "GITHUB_JOB"),
        "run": f"{run_id}.{attempt}" if run_id and attempt else run_id,
        "pipeline": _get(env, "GITHUB_WORKFLOW"),
        "url": url,
    }


def _gitlab(env: Mapping[str, str]) -> dict[str, Any] | None:
    if not _truthy(env, "GITLAB_CI"):
        return None
    return {
        "provider": "gitlab",
        "job": _get(env, "CI_JOB_ID"),
        "run": _get(env, "CI_JOB_NAME"),
        "pipeline": _get(env, "CI_PIPELINE_ID"),
        "url": _get(env, "CI_JOB_URL"),
    }


def _jenkins(env: Mapping[str, str]) -> dict[str, Any] | None:
    if not (_get(env, "JENKINS_URL") or _get(env, "JENKINS_HOME")) or not _get(env, "BUILD_TAG"):
        return None
    return {
        "provider": "jenkins",
        "job": _get(env, "BUILD_TAG"),
        "run": _get(env, "BUILD_NUMBER"),
        "pipeline": _get(env, "JOB_NAME"),
        "url": _get(env, "BUILD_URL"),
    }


def _buildkite(env: Mapping[str, str]) -> dict[str, Any] | None:
    if not _truthy(env, "BUILDKITE"):
        return None
    return {
        "provider": "buildkite",
        "job": _get(env, "BUILDKITE_JOB_ID"),
        "run": _get(env, "BUILDKITE_BUILD_NUMBER"),
        "pipeline": _get(env, "BUILDKITE_PIPELINE_SLUG"),
        "url": _get(env, "BUILDKITE_BUILD_URL"),
    }


def _circleci(env: Mapping[str, str]) -> dict[str, Any] | None:
    if not _truthy(env, "CIRCLECI"):
        return None
    return {
        "provider": "circleci",
        "job": _get(env, "CIRCLE_WORKFLOW_JOB_ID") or _get(env, "CIRCLE_JOB"),
        "run": _get(env, "CIRCLE_BUILD_NUM"),
        "pipeline": _get(env, "CIRCLE_WORKFLOW_ID"),
        "url": _get(env, "CIRCLE_BUILD_URL"),
    }


def _generic(env: Mapping[str, str]) -> dict[str, Any] | None:
    if not _truthy(env, "CI"):
        return None
    return {"provider": "unknown", "job": None, "run": None, "pipeline": None, "url": None}


_DETECTORS: tuple[Callable[[Mapping[str, str]], dict[str, Any] | None], ...] = (
    _github, _gitlab, _jenkins, _buildkite, _circleci, _generic,
)


def ci_info(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The CI job this process runs in (``actor.ci``), or None on a workstation."""
    for detect in _DETECTORS:
        found = detect(environ)
        if found is not None:
            return found
    return None


def _ci_correlation(environ: Mapping[str, str]) -> str | None:
    if _truthy(environ, "GITHUB_ACTIONS"):
        parts = [_get(environ, name) for name in ("GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT",
                                                 "GITHUB_JOB")]
        if parts[0]:
            return "github:" + ":".join(part or "" for part in parts)
    for provider, name in (
        ("gitlab", "CI_JOB_ID"),
        ("jenkins", "BUILD_TAG"),
        ("buildkite", "BUILDKITE_JOB_ID"),
        ("circleci", "CIRCLE_WORKFLOW_JOB_ID"),
    ):
        value = _get(environ, name)
        if value:
            return f"{provider}:{value}"
    return None


def correlation_id(environ: Mapping[str, str], new_id: Callable[[], str]) -> str:
    """The correlation id: explicit, else the CI job's, else ``new_id()``."""
    explicit = _get(environ, CORRELATION_ENV)
    chosen = explicit or _ci_correlation(environ) or new_id()
    return chosen[:MAX_CORRELATION_CHARS]


def parent_id(environ: Mapping[str, str]) -> str | None:
    """The event id of the wrapped git command this one runs inside (a hook's git), if any."""
    return _get(environ, PARENT_ENV)


def git_identity(
    environ: Mapping[str, str], config: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """(name, email) of whoever acts: committer env, else user.name/email, else author env."""
    name = (
        _get(environ, "GIT_COMMITTER_NAME")
        or config.get("user.name")
        or _get(environ, "GIT_AUTHOR_NAME")
    )
    email = (
        _get(environ, "GIT_COMMITTER_EMAIL")
        or config.get("user.email")
        or _get(environ, "GIT_AUTHOR_EMAIL")
    )
    return name or None, email or None


def identity_complete(environ: Mapping[str, str]) -> bool:
    """True when the environment alone names the committer (no config read needed)."""
    return bool(_get(environ, "GIT_COMMITTER_NAME") and _get(environ, "GIT_COMMITTER_EMAIL"))


def os_user(environ: Mapping[str, str], uid: int) -> str | None:
    """Login name of ``uid`` (passwd entry, else ``$USER``/``$LOGNAME``)."""
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return _get(environ, "USER") or _get(environ, "LOGNAME")


def build_actor(
    *,
    uid: int | None,
    user: str | None,
    host: str | None,
    git_name: str | None,
    git_email: str | None,
    ci: dict[str, Any] | None,
) -> dict[str, Any]:
    """The ``actor`` object of an event (``verified`` is false: nothing here is kernel-checked)."""
    return {
        "uid": uid,
        "user": user,
        "git_name": git_name,
        "git_email": git_email,
        "host": host,
        "verified": False,
        "ci": ci,
    }


def preferred_remote(params: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(name, url) of the repository's main remote: ``origin`` if configured, else the first."""
    urls = {
        key[len("remote.") : -len(".url")]: value
        for key, value in params.items()
        if key.startswith("remote.") and key.endswith(".url")
    }
    if "origin" in urls:
        return "origin", urls["origin"]
    for name, url in urls.items():
        return name, url
    return None, None
