"""Actor, CI detection and correlation ids: pure functions of an environment."""

from __future__ import annotations

import pytest

from gitaudit.capture import context


def new_id() -> str:
    return "fresh-id"


GITHUB = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_RUN_ID": "123",
    "GITHUB_RUN_ATTEMPT": "2",
    "GITHUB_JOB": "build",
    "GITHUB_WORKFLOW": "CI",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "o/r",
}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "fresh-id"),
        ({"GITAUDIT_CORRELATION_ID": "explicit"}, "explicit"),
        ({**GITHUB, "GITAUDIT_CORRELATION_ID": "explicit"}, "explicit"),
        (GITHUB, "github:123:2:build"),
        ({"GITLAB_CI": "true", "CI_JOB_ID": "77"}, "gitlab:77"),
        ({"JENKINS_URL": "https://j/", "BUILD_TAG": "jenkins-app-5"}, "jenkins:jenkins-app-5"),
        ({"BUILDKITE": "true", "BUILDKITE_JOB_ID": "bk-1"}, "buildkite:bk-1"),
        ({"CIRCLECI": "true", "CIRCLE_WORKFLOW_JOB_ID": "c-9"}, "circleci:c-9"),
        ({"GITAUDIT_CORRELATION_ID": "  "}, "fresh-id"),
    ],
)
def test_correlation_precedence(environ: dict[str, str], expected: str) -> None:
    assert context.correlation_id(environ, new_id) == expected


def test_correlation_is_capped() -> None:
    long = "x" * 500
    assert len(context.correlation_id({"GITAUDIT_CORRELATION_ID": long}, new_id)) == 200


def test_ci_info_per_provider() -> None:
    assert context.ci_info({}) is None
    assert context.ci_info(GITHUB) == {
        "provider": "github",
        "job": "build",
        "run": "123.2",
        "pipeline": "CI",
        "url": "https://github.com/o/r/actions/runs/123/attempts/2",
    }
    gitlab = context.ci_info({"GITLAB_CI": "true", "CI_JOB_ID": "5", "CI_PIPELINE_ID": "9",
                              "CI_JOB_URL": "https://gl/j/5"})
    assert gitlab is not None
    assert (gitlab["provider"], gitlab["job"], gitlab["pipeline"]) == ("gitlab", "5", "9")
    jenkins = context.ci_info({"JENKINS_HOME": "/var/j", "BUILD_TAG": "t", "JOB_NAME": "app"})
    assert jenkins is not None
    assert jenkins["provider"] == "jenkins"
    buildkite = context.ci_info({"BUILDKITE": "true", "BUILDKITE_PIPELINE_SLUG": "p"})
    assert buildkite is not None
    assert buildkite["pipeline"] == "p"
    circle = context.ci_info({"CIRCLECI": "true", "CIRCLE_JOB": "test"})
    assert circle is not None
    assert circle["job"] == "test"
    generic = context.ci_info({"CI": "1"})
    assert generic is not None
    assert generic["provider"] == "unknown"


def test_git_identity_precedence() -> None:
    config = {"user.name": "Config", "user.email": "c@x"}
    assert context.git_identity({}, config) == ("Config", "c@x")
    committer = {"GIT_COMMITTER_NAME": "Env", "GIT_COMMITTER_EMAIL": "e@x"}
    assert context.git_identity(committer, config) == ("Env", "e@x")
    assert context.git_identity({"GIT_AUTHOR_NAME": "Auth"}, {}) == ("Auth", None)
    assert context.identity_complete(committer)
    assert not context.identity_complete({"GIT_COMMITTER_NAME": "Env"})


def test_preferred_remote() -> None:
    assert context.preferred_remote({}) == (None, None)
    assert context.preferred_remote(
        {"remote.upstream.url": "u", "remote.origin.url": "o", "user.name": "x"}
    ) == ("origin", "o")
    assert context.preferred_remote({"remote.Fork.url": "f"}) == ("Fork", "f")


def test_actor_and_parent() -> None:
    actor = context.build_actor(uid=5, user="u", host="h", git_name="n", git_email="e", ci=None)
    assert actor == {"uid": 5, "user": "u", "git_name": "n", "git_email": "e", "host": "h",
                     "verified": False, "ci": None}
    assert context.parent_id({"GITAUDIT_PARENT_ID": "p"}) == "p"
    assert context.parent_id({}) is None
    assert context.os_user({}, 0) == "root"
