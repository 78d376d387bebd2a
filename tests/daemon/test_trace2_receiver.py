"""The trace2 receiver with REAL git writing to a REAL Unix socket.

Each test starts a :class:`LiveReceiver` (the receiver on its own asyncio loop,
a collecting intake) and runs git 2.39 with ``GIT_TRACE2_EVENT`` pointing at
its socket, in an isolated sandbox.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from gitaudit.capture import context
from gitaudit.config import Settings
from tests.daemon.trace2_harness import LiveReceiver
from tests.gitfixtures import REAL_GIT, GitSandbox


@pytest.fixture
def live() -> Any:
    with LiveReceiver() as receiver:
        yield receiver


def trace_env(live: LiveReceiver, **extra: str) -> dict[str, str]:
    """What `gitaudit trace2 enable` configures, as environment variables (tests only)."""
    return {
        "GIT_TRACE2_EVENT": live.target,
        "GIT_TRACE2_EVENT_BRIEF": "1",
        "GIT_TRACE2_ENV_VARS": ",".join(context.TRACE2_ENV_VARS),
        "GIT_TRACE2_CONFIG_PARAMS": "user.name,user.email,remote.*.url",
        **extra,
    }


def write_hook(repo: Path, name: str, body: str) -> None:
    hook = repo / ".git" / "hooks" / name
    hook.write_text("#!/bin/sh\n" + body)
    hook.chmod(0o755)


def by_subcommand(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {event["details"]["subcommand"]: event for event in events}


def test_everyday_commands_one_record_each(sandbox: GitSandbox, live: LiveReceiver) -> None:
    remote = sandbox.bare_remote()
    repo = sandbox.repo(remote=remote)
    write_hook(repo, "pre-commit", "git rev-parse HEAD >/dev/null\n")
    sandbox.git("config", "alias.st", "status", cwd=repo)
    env = trace_env(live)
    sandbox.git("status", cwd=repo, env=env)
    (repo / "a.txt").write_text("a\n")
    sandbox.git("add", "a.txt", cwd=repo)  # untraced: not in the records
    sandbox.git("commit", "-q", "-m", "add a", cwd=repo, env=env)
    sandbox.git("push", "-q", "origin", "main", cwd=repo, env=env)
    sandbox.git("st", cwd=repo, env=env)
    failed = sandbox.git("checkout", "no-such-branch", cwd=repo, env=env, check=False)
    assert failed.returncode == 1

    events = live.wait_events(5)
    time.sleep(0.6)  # nothing more arrives: nested processes were folded
    assert len(live.intake.snapshot()) == 5
    assert [event["details"]["subcommand"] for event in events] == [
        "status", "commit", "push", "status", "checkout"]
    found = by_subcommand(events[:3])
    for event in events:
        assert event["source"] == "trace2"
        assert event["duration_ms"] > 0
        assert event["repo"]["path"] == str(repo)
        assert event["actor"]["verified"] is True
        assert event["actor"]["uid"] == os.getuid()
        assert event["actor"]["git_name"] == "Carl Committer"  # GIT_COMMITTER_NAME via envVars
        assert event["correlation_id"] == event["details"]["trace2_sid"]  # the root sid

    commit = found["commit"]
    assert commit["operation"] == "git.commit"
    assert commit["outcome"] == "success" and commit["result"]["exit_code"] == 0
    assert commit["details"]["hooks"] == [{"name": "pre-commit", "exit_code": 0}]
    nested = [process["command"] for process in commit["details"]["nested"]]
    assert "rev-parse" in nested  # the hook's git, folded into the commit
    head = sandbox.out("rev-parse", "HEAD", cwd=repo)
    assert commit["repo"]["head_after"] == head and commit["details"]["commit"] == head
    assert commit["repo"]["branch"] == "main"

    push = found["push"]
    assert push["operation"] == "git.push"
    assert push["details"]["remote"] == "origin"
    assert push["details"]["url"] == str(remote)
    assert push["repo"]["remote"] == str(remote)
    assert any(process["command"] in {"receive-pack", "send-pack"}
               for process in push["details"]["nested"])

    alias = events[3]
    assert (alias["operation"], alias["details"]["alias"]) == ("git.other", "st")
    assert alias["category"] == "read"

    checkout = events[4]
    assert checkout["operation"] == "git.checkout"
    assert checkout["outcome"] == "failure"
    assert checkout["result"]["exit_code"] == 1
    assert "no-such-branch" in checkout["result"]["error"]


def test_correlation_from_env_and_ci_variables(sandbox: GitSandbox, live: LiveReceiver) -> None:
    repo = sandbox.repo()
    sandbox.git("status", cwd=repo, env=trace_env(live, GITAUDIT_CORRELATION_ID="job-corr-1"))
    github = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "555", "GITHUB_RUN_ATTEMPT": "2",
              "GITHUB_JOB": "build", "GITHUB_REPOSITORY": "team/app",
              "GITHUB_SERVER_URL": "https://github.com"}
    sandbox.git("log", "-1", cwd=repo, env=trace_env(live, **github))
    first, second = live.wait_events(2)
    assert first["correlation_id"] == "job-corr-1"
    assert second["correlation_id"] == "github:555:2:build"
    assert second["actor"]["ci"]["provider"] == "github"
    assert second["actor"]["ci"]["url"] == "https://github.com/team/app/actions/runs/555/attempts/2"


def test_git_killed_mid_run_is_recorded_as_failed(sandbox: GitSandbox,
                                                   live: LiveReceiver) -> None:
    repo = sandbox.repo()
    marker = sandbox.root / "hook-started"
    write_hook(repo, "pre-commit", f"touch {marker}\nsleep 60\n")
    git = subprocess.Popen(
        [REAL_GIT, "commit", "-q", "--allow-empty", "-m", "never"], cwd=repo,
        env=sandbox.environ(trace_env(live)), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists()
    os.killpg(git.pid, signal.SIGKILL)  # git, the hook and its sleep
    assert git.wait(10) == -signal.SIGKILL
    (event,) = live.wait_events(1)
    assert event["operation"] == "git.commit"
    assert event["outcome"] == "failure"
    assert event["result"]["exit_code"] is None
    assert event["details"]["killed"] is True
    assert event["duration_ms"] > 0


def test_stream_cut_mid_line_is_a_failed_record(live: LiveReceiver) -> None:
    sid = "20261122T060000.000000Z-H0a7c9cdf-P00001234"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(live.socket))
        client.sendall(
            b'{"event":"version","sid":"' + sid.encode() + b'","evt":"3","exe":"2.39.5"}\n'
            b'{"event":"start","sid":"' + sid.encode() + b'","t_abs":0.001,'
            b'"argv":["git","fetch","origin"]}\n'
            b'{"event":"cmd_name","sid":"' + sid.encode() + b'","name":"fetch"}\n'
            b'{"event":"exit","sid":"' + sid.encode() + b'","t_ab'
        )
    (event,) = live.wait_events(1)
    assert event["operation"] == "git.fetch"
    assert event["outcome"] == "failure"
    assert event["details"]["killed"] is True
    assert event["details"]["trace2_sid"] == sid


def _status(sandbox: GitSandbox, repo: Path, env: dict[str, str] | None) -> tuple[int, bytes]:
    done = sandbox.git("status", "--porcelain=v1", "-b", cwd=repo, env=env, check=False)
    return done.returncode, done.stdout


def test_git_works_normally_when_no_receiver_listens(sandbox: GitSandbox, tmp_path: Path) -> None:
    repo = sandbox.repo()
    (repo / "new.txt").write_text("x\n")
    expected = _status(sandbox, repo, None)
    absent = {"GIT_TRACE2_EVENT": f"af_unix:stream:{tmp_path}/absent.sock"}
    assert _status(sandbox, repo, absent) == expected
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(stale))  # the file exists; nothing will ever accept
    assert stale.exists()
    assert _status(sandbox, repo, {"GIT_TRACE2_EVENT": f"af_unix:stream:{stale}"}) == expected
    failing = sandbox.git("checkout", "nope", cwd=repo, check=False,
                          env={"GIT_TRACE2_EVENT": f"af_unix:stream:{stale}"})
    assert failing.returncode == 1


def test_a_stalled_intake_never_stalls_git(sandbox: GitSandbox, live: LiveReceiver) -> None:
    repo = sandbox.repo()
    live.stall_intake()
    env = trace_env(live)
    results = [sandbox.git("-c", "trace2.eventNesting=10", "status", cwd=repo, env=env)
               for _ in range(20)]
    assert all(result.returncode == 0 for result in results)  # all 20 ran to completion
    time.sleep(0.8)
    stats = live.stats()
    assert stats["connections"] == 0  # every connection was drained and closed
    assert stats["backlog"] + live.intake.calls >= 19  # records queued behind the stall
    assert stats["max_line_buffer"] < live.settings.trace2_max_bytes
    assert live.intake.snapshot() == []
    live.release_intake()
    events = live.wait_events(20)
    assert len(events) == 20
    assert {event["details"]["subcommand"] for event in events} == {"status"}


def test_chatty_git_past_the_byte_bound_drops_detail_not_the_record(sandbox: GitSandbox) -> None:
    settings = Settings({"trace2_max_bytes": 1500})
    with LiveReceiver(settings) as live:
        repo = sandbox.repo()
        for number in range(30):
            (repo / f"f{number}.txt").write_text(f"{number}\n")
        write_hook(repo, "pre-commit", "exit 0\n")
        sandbox.git("add", ".", cwd=repo)
        sandbox.git("-c", "trace2.eventNesting=100", "commit", "-q", "-m", "many", cwd=repo,
                    env=trace_env(live))
        (event,) = live.wait_events(1)
        dropped = live.metrics.registry.get_sample_value("gitaudit_trace2_detail_dropped_total")
    assert dropped is not None and dropped >= 1
    assert event["operation"] == "git.commit"
    assert event["outcome"] == "success" and event["result"]["exit_code"] == 0
    assert event["details"]["detail_dropped"] is True


def test_trace2_enable_global_sends_plain_git_to_the_receiver(sandbox: GitSandbox,
                                                              live: LiveReceiver) -> None:
    from tests.gitfixtures import gitaudit_command

    repo = sandbox.repo()
    enabled = subprocess.run(
        [*gitaudit_command(), "trace2", "enable", "--global", "--socket", str(live.socket)],
        env=sandbox.environ(), capture_output=True, check=False,
    )
    assert enabled.returncode == 0, enabled.stderr
    sandbox.git("commit", "-q", "--allow-empty", "-m", "via config", cwd=repo,
                env={"GITAUDIT_CORRELATION_ID": "from-config"})
    (event,) = live.wait_events(1)
    assert event["operation"] == "git.commit"
    assert event["correlation_id"] == "from-config"  # trace2.envVars from the global config
    assert event["repo"]["path"] == str(repo)
