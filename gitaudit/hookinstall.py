"""Installing, removing and inspecting gitaudit's git hooks (``gitaudit hooks ...``).

Hook scripts are rendered from ``hooks/hook-template.sh`` (bundled in the
wheel as ``gitaudit/_hooks``); every installed script carries the marker
``# gitaudit-hook`` and the template's version and SHA-256, which is how
install, uninstall and status recognise ours and tell an outdated one.

Per repository (``--repo``): scripts go into the repository's own hooks
directory (its local ``core.hooksPath`` if it sets one, else
``<common git dir>/hooks``). A hook already there that is not ours is renamed
``<name>.gitaudit-legacy`` (same directory, same mode) and the gitaudit hook
runs it with the same arguments and stdin; uninstall renames it back.

Globally (``--global``): scripts go into ``$XDG_DATA_HOME/gitaudit/hooks`` and
the global ``core.hooksPath`` points there. Its state file remembers the
previous global value: the global hooks chain to that directory if there was
one (that is what git ran before), else to each repository's own
``hooks/`` directory. A repository that sets ``core.hooksPath`` in its own
config overrides the global one in git itself, so the global hooks do not run
there; ``status`` says so (install per repository to cover it).

Planning is pure (:func:`plan_install`, :func:`plan_uninstall`) and tested
without git; the I/O happens in :func:`apply_install` / :func:`apply_uninstall`.
Nothing that is not ours is ever deleted or overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitaudit import paths
from gitaudit.capture import gitcmd
from gitaudit.capture.hookrun import GLOBAL_STATE, HOOK_MARKER, LEGACY_SUFFIX, read_global_state
from gitaudit.capture.hooks import DEFAULT_HOOKS, OPTIONAL_HOOKS
from gitaudit.errors import GitauditError

__all__ = [
    "ABSENT", "ALL_HOOKS", "CONFLICT", "KEEP_AND_WRITE", "LEGACY_SUFFIX", "NOT_OURS", "REMOVE",
    "RESTORE", "UNCHANGED", "UPGRADE", "WRITE", "HookFile", "HookInstallError", "Outcome",
    "Step", "Template", "global_status", "install_global", "install_repo", "plan_install",
    "plan_uninstall", "repo_status", "uninstall_global", "uninstall_repo",
]

TEMPLATE_NAME = "hook-template.sh"
ALL_HOOKS = (*DEFAULT_HOOKS, *OPTIONAL_HOOKS)
_TEMPLATE_LINE = re.compile(rb"^# gitaudit-template: version (\d+) sha256 ([0-9a-f]+)$", re.M)
_LOCAL_SCOPES = frozenset({"local", "worktree"})


class HookInstallError(GitauditError):
    """Hooks cannot be installed, removed or inspected as asked."""


# --- the template ------------------------------------------------------------------------


def template_path() -> Path:
    """The hook template: bundled in the wheel, or ``hooks/`` of a source checkout."""
    package = Path(__file__).resolve().parent
    bundled = package / "_hooks" / TEMPLATE_NAME
    return bundled if bundled.is_file() else package.parent / "hooks" / TEMPLATE_NAME


@dataclass(frozen=True)
class Template:
    """The hook template's text, version and SHA-256 (first 16 hex digits)."""

    text: str
    version: int
    sha256: str

    @classmethod
    def load(cls, path: Path | None = None) -> Template:
        """Read and identify the template."""
        source = path or template_path()
        try:
            raw = source.read_bytes()
        except OSError as exc:
            raise HookInstallError(
                f"cannot read the hook template {source}: {exc.strerror or exc}",
                "reinstall gitaudit (the wheel ships it as gitaudit/_hooks)",
            ) from exc
        found = re.search(rb"# gitaudit-template: version (\d+)", raw)
        version = int(found.group(1)) if found else 0
        return cls(raw.decode("utf-8"), version, hashlib.sha256(raw).hexdigest()[:16])

    def render(self, python: str, package_root: str) -> bytes:
        """The hook script for this interpreter and source root (shell-quoted)."""
        return (
            self.text.replace("@TEMPLATE_SHA256@", self.sha256)
            .replace("@PYTHON@", shlex.quote(python))
            .replace("@PACKAGE_ROOT@", shlex.quote(package_root))
            .encode("utf-8")
        )


def package_root() -> str:
    """The directory holding the ``gitaudit`` package (appended to the hook's sys.path)."""
    return str(Path(__file__).resolve().parent.parent)


def rendered_hook(template: Template | None = None) -> bytes:
    """The hook script for the running interpreter (recorded at install time)."""
    return (template or Template.load()).render(sys.executable, package_root())


# --- what is on disk ---------------------------------------------------------------------


@dataclass(frozen=True)
class HookFile:
    """One hook name in one directory: what is there and whether it is ours."""

    name: str
    kind: str  # "absent", "ours" or "foreign"
    content: bytes | None = None
    version: int | None = None
    sha256: str | None = None
    legacy: bool = False  # a kept <name>.gitaudit-legacy exists next to it


def identify(content: bytes) -> tuple[int | None, str | None] | None:
    """(version, template sha) if ``content`` is a gitaudit hook, else None."""
    if HOOK_MARKER not in content[:512]:
        return None
    found = _TEMPLATE_LINE.search(content[:2048])
    if found is None:
        return None, None
    return int(found.group(1)), found.group(2).decode()


def inspect_hook(folder: Path, name: str) -> HookFile:
    """What ``folder/name`` is (a symlink or directory is always foreign)."""
    path = folder / name
    legacy = os.path.lexists(folder / (name + LEGACY_SUFFIX))
    if not os.path.lexists(path):
        return HookFile(name, "absent", legacy=legacy)
    if path.is_symlink() or not path.is_file():
        return HookFile(name, "foreign", legacy=legacy)
    content = path.read_bytes()
    ours = identify(content)
    if ours is None:
        return HookFile(name, "foreign", content, legacy=legacy)
    return HookFile(name, "ours", content, ours[0], ours[1], legacy)


def inspect_dir(folder: Path, names: Iterable[str] = ALL_HOOKS) -> list[HookFile]:
    """Every hook name of interest in ``folder``."""
    return [inspect_hook(folder, name) for name in names]


# --- planning (pure) ---------------------------------------------------------------------

WRITE = "write"  # nothing there: write ours
UNCHANGED = "unchanged"  # ours, identical
UPGRADE = "upgrade"  # ours, other template or interpreter: rewrite
KEEP_AND_WRITE = "keep-and-write"  # foreign: keep it as .gitaudit-legacy, write ours
CONFLICT = "conflict"  # foreign, and a .gitaudit-legacy already exists: leave all alone
REMOVE = "remove"  # ours, nothing kept: delete
RESTORE = "restore"  # ours, a kept hook: put it back
ABSENT = "absent"  # nothing of ours there
NOT_OURS = "not-ours"  # a foreign hook: left alone


@dataclass(frozen=True)
class Step:
    """One planned action on one hook name."""

    name: str
    action: str


def plan_install(files: Sequence[HookFile], rendered: bytes) -> list[Step]:
    """What installing ``rendered`` does to each hook; never clobbers a foreign file."""
    steps: list[Step] = []
    for hook in files:
        if hook.kind == "absent":
            action = WRITE
        elif hook.kind == "ours":
            action = UNCHANGED if hook.content == rendered else UPGRADE
        else:
            action = CONFLICT if hook.legacy else KEEP_AND_WRITE
        steps.append(Step(hook.name, action))
    return steps


def plan_uninstall(files: Sequence[HookFile]) -> list[Step]:
    """What uninstalling does to each hook: only ours go; kept hooks come back."""
    steps: list[Step] = []
    for hook in files:
        if hook.kind == "ours":
            steps.append(Step(hook.name, RESTORE if hook.legacy else REMOVE))
        elif hook.kind == "foreign":
            steps.append(Step(hook.name, NOT_OURS))
        else:
            steps.append(Step(hook.name, RESTORE if hook.legacy else ABSENT))
    return steps


def conflicts(steps: Sequence[Step]) -> list[str]:
    """Hook names a plan refuses to touch."""
    return [step.name for step in steps if step.action == CONFLICT]


# --- applying ----------------------------------------------------------------------------


def _write_hook(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o755)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(temporary, 0o755)  # noqa: S103 - a hook must be executable, or git skips it
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def apply_install(folder: Path, steps: Sequence[Step], rendered: bytes) -> None:
    """Carry out an install plan in ``folder`` (conflicting hooks are skipped)."""
    folder.mkdir(parents=True, exist_ok=True)
    for step in steps:
        path = folder / step.name
        if step.action in {WRITE, UPGRADE}:
            _write_hook(path, rendered)
        elif step.action == KEEP_AND_WRITE:
            legacy = folder / (step.name + LEGACY_SUFFIX)
            os.rename(path, legacy)  # same directory: content, mode and links kept as they are
            try:
                _write_hook(path, rendered)
            except BaseException:
                os.rename(legacy, path)
                raise


def apply_uninstall(folder: Path, steps: Sequence[Step]) -> None:
    """Carry out an uninstall plan: remove ours, rename kept hooks back."""
    for step in steps:
        path = folder / step.name
        if step.action == REMOVE:
            path.unlink()
        elif step.action == RESTORE:
            if os.path.lexists(path):
                path.unlink()
            os.rename(folder / (step.name + LEGACY_SUFFIX), path)


# --- repositories ------------------------------------------------------------------------


@dataclass
class HooksPath:
    """The effective ``core.hooksPath``: value and the config scope it comes from."""

    value: str | None = None
    scope: str | None = None  # "local", "worktree", "global", "system", "command"

    @property
    def local(self) -> bool:
        """Set by the repository itself (overrides any global value)."""
        return self.scope in _LOCAL_SCOPES


@dataclass
class Repository:
    """Where a repository keeps its hooks."""

    git_dir: str
    common_dir: str
    worktree: str | None
    hooks_path: HooksPath = field(default_factory=HooksPath)

    @property
    def default_hooks_dir(self) -> Path:
        """``<common git dir>/hooks``: where git looks without any core.hooksPath."""
        return Path(self.common_dir) / "hooks"

    def resolve(self, value: str) -> Path:
        """A core.hooksPath value as git resolves it (relative to where hooks run)."""
        expanded = os.path.expanduser(value)
        base = self.worktree or self.git_dir
        return Path(os.path.normpath(os.path.join(base, expanded)))

    @property
    def local_hooks_dir(self) -> Path:
        """The hooks directory the repository itself chose (local core.hooksPath or default)."""
        if self.hooks_path.local and self.hooks_path.value:
            return self.resolve(self.hooks_path.value)
        return self.default_hooks_dir


def parse_scoped_value(output: bytes) -> HooksPath:
    """``git config --show-scope --get`` output (``scope<TAB>value``) to a :class:`HooksPath`."""
    text = output.decode("utf-8", "surrogateescape").rstrip("\n")
    if not text:
        return HooksPath()
    scope, _, value = text.rpartition("\n")[2].partition("\t")
    return HooksPath(value or None, scope or None)


def _where(path: str | None, environ: Mapping[str, str]) -> dict[str, str | None]:
    """``cwd``/``git_dir`` for gitcmd: ``--repo PATH``, else ``$GIT_DIR``, else here."""
    if path is not None:
        return {"cwd": path, "git_dir": None}
    return {"cwd": None if environ.get("GIT_DIR") else os.getcwd(),
            "git_dir": environ.get("GIT_DIR") or None}


def locate(git: str, path: str | None, environ: Mapping[str, str]) -> Repository:
    """The repository at ``path`` (or ``$GIT_DIR``, or the current directory)."""
    where = _where(path, environ)
    output = gitcmd.run(
        git, ["rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir",
              "--is-bare-repository"],
        cwd=where["cwd"], git_dir=where["git_dir"], environ=environ, check=False,
    )
    lines = output.stdout.decode("utf-8", "surrogateescape").splitlines()
    if output.returncode != 0 or len(lines) < 3:
        shown = path or environ.get("GIT_DIR") or os.getcwd()
        raise HookInstallError(
            f"{shown} is not a git repository",
            "pass --repo PATH naming a repository, or --global",
        )
    git_dir, common_dir, bare = lines[0], lines[1], lines[2] == "true"
    worktree = None
    if not bare:
        top = gitcmd.run(git, ["rev-parse", "--show-toplevel"], cwd=where["cwd"],
                         git_dir=where["git_dir"], environ=environ, check=False)
        worktree = top.stdout.decode("utf-8", "surrogateescape").strip() or None
    scoped = gitcmd.run(git, ["config", "--show-scope", "--get", "core.hooksPath"],
                        git_dir=git_dir, environ=_with_worktree(environ, worktree), check=False)
    return Repository(git_dir, common_dir, worktree, parse_scoped_value(scoped.stdout))


def _with_worktree(environ: Mapping[str, str], worktree: str | None) -> dict[str, str]:
    env = dict(environ)
    if worktree:
        env["GIT_WORK_TREE"] = worktree
    return env


def tracked_files(git: str, repo: Repository, folder: Path, environ: Mapping[str, str]) -> bool:
    """True if ``folder`` holds files tracked in the repository (installing would dirty it)."""
    if repo.worktree is None:
        return False
    try:
        relative = os.path.relpath(folder, repo.worktree)
    except ValueError:
        return False
    if relative.startswith(".."):
        return False
    output = gitcmd.run(git, ["ls-files", "-z", "--", relative], cwd=repo.worktree,
                        environ=environ, check=False)
    return bool(output.stdout.strip(b"\0"))


# --- global ------------------------------------------------------------------------------


def global_hooks_dir() -> Path:
    """``$XDG_DATA_HOME/gitaudit/hooks``: the directory --global points core.hooksPath at."""
    return Path(paths.data_home()) / "gitaudit" / "hooks"


def global_value(git: str, environ: Mapping[str, str], scope: str) -> str | None:
    """``core.hooksPath`` from the ``--global`` or ``--system`` config alone."""
    output = gitcmd.run(git, ["config", f"--{scope}", "--get", "core.hooksPath"],
                        cwd="/", environ=environ, check=False)
    text = output.stdout.decode("utf-8", "surrogateescape").strip()
    return text if output.returncode == 0 and text else None


def set_global_value(git: str, environ: Mapping[str, str], value: str | None) -> None:
    """Set (or with None unset) the global ``core.hooksPath``."""
    args = ["config", "--global", "core.hooksPath", value] if value is not None else [
        "config", "--global", "--unset-all", "core.hooksPath"
    ]
    output = gitcmd.run(git, args, cwd="/", environ=environ, check=False)
    if output.returncode not in (0, 5):  # 5: --unset of a key that is not set
        raise HookInstallError(
            f"cannot update core.hooksPath in the global git config: "
            f"{output.stderr.decode('utf-8', 'replace').strip()}",
            "check that ~/.gitconfig (or $GIT_CONFIG_GLOBAL) is writable",
        )


def same_path(first: str | Path | None, second: str | Path | None) -> bool:
    """Two paths naming the same directory (by file identity when both exist)."""
    if not first or not second:
        return False
    try:
        return os.path.samefile(os.path.expanduser(first), os.path.expanduser(second))
    except OSError:
        return os.path.normpath(os.path.expanduser(first)) == os.path.normpath(
            os.path.expanduser(second))


def format_state(chain: str | None, previous_global: str | None) -> str:
    """The global hooks directory's state file (read by the hooks: see hookrun)."""
    return (
        "# gitaudit: where the global hooks chain to, and the core.hooksPath to restore\n"
        f"chain={chain or ''}\nprevious_global={previous_global or ''}\n"
    )


# --- the operations ----------------------------------------------------------------------


@dataclass
class Outcome:
    """What an install or uninstall did, for the CLI to print."""

    hooks_dir: Path
    steps: list[Step]
    notes: list[str] = field(default_factory=list)


def hook_names(extra: Sequence[str]) -> list[str]:
    """The default hooks plus the optional ones asked for (``--with``)."""
    unknown = [name for name in extra if name not in OPTIONAL_HOOKS]
    if unknown:
        raise HookInstallError(
            f"unknown optional hook(s): {', '.join(unknown)}",
            f"choose from: {', '.join(OPTIONAL_HOOKS)}",
        )
    return [*DEFAULT_HOOKS, *(name for name in OPTIONAL_HOOKS if name in extra)]


def _install_into(folder: Path, names: Sequence[str], rendered: bytes) -> list[Step]:
    steps = plan_install(inspect_dir(folder, names), rendered)
    refused = conflicts(steps)
    if refused:
        raise HookInstallError(
            f"{folder}: " + ", ".join(f"{name} and {name}{LEGACY_SUFFIX}" for name in refused)
            + " both exist and are not gitaudit's; nothing was changed",
            "merge or remove one of them, then install again",
        )
    try:
        apply_install(folder, steps, rendered)
    except OSError as exc:
        raise HookInstallError(
            f"cannot install hooks in {folder}: {exc.strerror or exc}",
            "check the directory's permissions",
        ) from exc
    return steps


def install_repo(git: str, path: str | None, environ: Mapping[str, str],
                 extra: Sequence[str] = ()) -> Outcome:
    """Install the hooks into one repository's own hooks directory."""
    repo = locate(git, path, environ)
    folder = repo.local_hooks_dir
    if tracked_files(git, repo, folder, environ):
        raise HookInstallError(
            f"core.hooksPath of this repository ({folder}) holds tracked files; "
            "installing there would change them",
            "gitaudit's wrapper and trace2 capture still cover this repository",
        )
    steps = _install_into(folder, hook_names(extra), rendered_hook())
    return Outcome(folder, steps, repo_notes(git, repo, environ))


def uninstall_repo(git: str, path: str | None, environ: Mapping[str, str]) -> Outcome:
    """Remove our hooks from a repository and put back the ones they replaced."""
    repo = locate(git, path, environ)
    folder = repo.local_hooks_dir
    steps = plan_uninstall(inspect_dir(folder))
    try:
        apply_uninstall(folder, steps)
    except OSError as exc:
        raise HookInstallError(
            f"cannot remove hooks from {folder}: {exc.strerror or exc}",
            "check the directory's permissions",
        ) from exc
    return Outcome(folder, steps, _leftover_notes(folder, steps))


def _leftover_notes(folder: Path, steps: Sequence[Step]) -> list[str]:
    return [
        f"{step.name} is not gitaudit's but {step.name}{LEGACY_SUFFIX} is still there: "
        f"merge them by hand ({folder})"
        for step in steps
        if step.action == NOT_OURS and os.path.lexists(folder / (step.name + LEGACY_SUFFIX))
    ]


def install_global(git: str, environ: Mapping[str, str], extra: Sequence[str] = ()) -> Outcome:
    """Point the global core.hooksPath at gitaudit's hooks directory (chaining as before)."""
    folder = global_hooks_dir()
    current = global_value(git, environ, "global")
    steps = _install_into(folder, hook_names(extra), rendered_hook())
    state_file = folder / GLOBAL_STATE
    already = same_path(current, folder)
    if not (already and state_file.exists()):
        previous = None if already else current
        chain = previous or global_value(git, environ, "system")
        state_file.write_text(format_state(chain, previous), encoding="utf-8")
    if not already:
        set_global_value(git, environ, str(folder))
    return Outcome(folder, steps, global_notes(git, environ))


def uninstall_global(git: str, environ: Mapping[str, str]) -> Outcome:
    """Remove the global hooks and restore the previous global core.hooksPath."""
    folder = global_hooks_dir()
    steps = plan_uninstall(inspect_dir(folder))
    notes: list[str] = []
    state_file = folder / GLOBAL_STATE
    state = read_global_state(str(folder)) or {}
    current = global_value(git, environ, "global")
    if same_path(current, folder):
        set_global_value(git, environ, state.get("previous_global") or None)
    elif current:
        notes.append(f"global core.hooksPath is {current}, not gitaudit's: left as it is")
    apply_uninstall(folder, steps)
    state_file.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # other files remain (not ours): the directory stays
        folder.rmdir()
    return Outcome(folder, steps, notes)


# --- status ------------------------------------------------------------------------------


def hook_rows(folder: Path, template: Template) -> list[dict[str, Any]]:
    """One row per hook name: state, version, chained hook."""
    rows = []
    for hook in inspect_dir(folder):
        state = hook.kind
        if hook.kind == "ours":
            state = "installed" if hook.sha256 == template.sha256 else "outdated"
        legacy = folder / (hook.name + LEGACY_SUFFIX)
        rows.append({
            "name": hook.name,
            "state": state,
            "version": hook.version,
            "template_sha256": hook.sha256,
            "chained": str(legacy) if hook.legacy else None,
        })
    return rows


def repo_notes(git: str, repo: Repository, environ: Mapping[str, str]) -> list[str]:
    """What decides which hooks run in this repository, in words."""
    hooks_path = repo.hooks_path
    ours = global_hooks_dir()
    if hooks_path.local:
        note = (f"this repository sets core.hooksPath ({hooks_path.value}) in its own config: "
                f"git runs hooks from {repo.local_hooks_dir} only")
        if same_path(global_value(git, environ, "global"), ours):
            note += "; gitaudit's global hooks do not run here (install with --repo to cover it)"
        return [note]
    if hooks_path.value and same_path(repo.resolve(hooks_path.value), ours):
        return [f"gitaudit's global hooks run here and chain to {repo.default_hooks_dir}"]
    if hooks_path.value:
        return [f"core.hooksPath from the {hooks_path.scope} config ({hooks_path.value}) "
                f"overrides {repo.default_hooks_dir}: hooks there do not run"]
    return []


def repo_status(git: str, path: str | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """Status of one repository's hooks (for ``gitaudit hooks status --repo``)."""
    repo = locate(git, path, environ)
    folder = repo.local_hooks_dir
    return {
        "scope": "repo",
        "repository": repo.worktree or repo.git_dir,
        "hooks_dir": str(folder),
        "core_hooks_path": {"value": repo.hooks_path.value, "scope": repo.hooks_path.scope},
        "overridden": bool(repo.hooks_path.value)
        and not same_path(repo.resolve(repo.hooks_path.value or ""), folder),
        "template": {"version": Template.load().version, "sha256": Template.load().sha256},
        "hooks": hook_rows(folder, Template.load()),
        "notes": repo_notes(git, repo, environ),
    }


def global_notes(git: str, environ: Mapping[str, str]) -> list[str]:
    """What the global hooks chain to, in words."""
    folder = global_hooks_dir()
    state = read_global_state(str(folder))
    notes = []
    if state and state.get("chain"):
        notes.append(f"global hooks chain to {state['chain']} (the previous core.hooksPath)")
    elif state is not None:
        notes.append("global hooks chain to each repository's own hooks directory")
    notes.append("repositories that set core.hooksPath in their own config bypass global hooks")
    return notes


def global_status(git: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """Status of the global hooks (for ``gitaudit hooks status --global``)."""
    folder = global_hooks_dir()
    current = global_value(git, environ, "global")
    template = Template.load()
    return {
        "scope": "global",
        "hooks_dir": str(folder),
        "core_hooks_path": {"value": current, "scope": "global" if current else None},
        "active": same_path(current, folder),
        "template": {"version": template.version, "sha256": template.sha256},
        "hooks": hook_rows(folder, template),
        "notes": global_notes(git, environ),
    }
