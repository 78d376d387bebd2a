"""Detached delivery (hook_detach): git goes on at once, the event still arrives, nothing leaks.

A daemon socket that accepts connections but never answers makes a hook's
delivery slow on purpose (``socket_timeout`` seconds, then the spool): a hook
that waits for its delivery makes git wait as long, a detached one does not.
"""

from __future__ import annotations

import fcntl
import os
import pty
import socket
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitaudit import events
from tests.gitfixtures import REAL_GIT, GitSandbox
from tests.hooks.conftest import gitaudit, hook_events, sandbox_processes, settle
from tests.hooks.test_faults import failing_pre_push, pushable

SLOW = 4.0  # seconds a delivery to the silent daemon takes
PROMPT = 2.0  # a git command that did not wait for the delivery returns well within this


@pytest.fixture
def silent_daemon(tmp_path: Path) -> Iterator[Path]:
    """A runtime directory whose events.sock accepts connections and never answers."""
    folder = tmp_path / "run"
    folder.mkdir()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(folder / "events.sock"))
    server.listen(64)
    try:
        yield folder
    finally:
        server.close()


def slow_env(runtime: Path, mode: str, **extra: str) -> dict[str, str]:
    return {"GITAUDIT_RUNTIME_DIR": str(runtime), "GITAUDIT_SOCKET_TIMEOUT": str(SLOW),
            "GITAUDIT_HOOK_DETACH": mode, **extra}


def installed(sandbox: GitSandbox) -> Path:
    repo = sandbox.repo()
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    return repo


def timed_git(sandbox: GitSandbox, repo: Path, env: dict[str, str], *args: str,
              ) -> tuple[subprocess.CompletedProcess[bytes], float]:
    """Run git with stdout and stderr on pipes (capture_output): seconds until it returned."""
    start = time.monotonic()
    result = sandbox.git(*args, cwd=repo, env=env, check=False)
    return result, time.monotonic() - start


def test_detached_delivery_does_not_hold_gits_pipes(sandbox: GitSandbox,
                                                     silent_daemon: Path) -> None:
    repo = installed(sandbox)
    env = slow_env(silent_daemon, "always")
    result, seconds = timed_git(sandbox, repo, env, "commit", "-q", "--allow-empty", "-m", "d")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert seconds < PROMPT  # capture_output waited for EOF: no child kept the pipes open
    assert sandbox_processes(sandbox)  # ... while the detached child is still delivering
    (event,) = hook_events(sandbox, "post-commit")  # waits for it
    events.validate_event(event)
    assert event["details"]["commit"] == sandbox.out("rev-parse", "HEAD", cwd=repo)


def test_inline_delivery_makes_git_wait(sandbox: GitSandbox, silent_daemon: Path) -> None:
    repo = installed(sandbox)
    env = slow_env(silent_daemon, "never")
    result, seconds = timed_git(sandbox, repo, env, "commit", "-q", "--allow-empty", "-m", "i")
    assert result.returncode == 0
    assert seconds >= SLOW  # the measure above can tell the two apart
    assert len(hook_events(sandbox, "post-commit")) == 1


def test_auto_does_not_detach_in_ci(sandbox: GitSandbox, silent_daemon: Path) -> None:
    repo = installed(sandbox)
    env = slow_env(silent_daemon, "auto", GITLAB_CI="true", CI_JOB_ID="9")
    result, seconds = timed_git(sandbox, repo, env, "commit", "-q", "--allow-empty", "-m", "c")
    assert result.returncode == 0
    assert seconds >= SLOW
    (event,) = hook_events(sandbox, "post-commit")
    assert event["correlation_id"] == "gitlab:9"


def test_auto_detaches_on_a_developer_machine(sandbox: GitSandbox, silent_daemon: Path) -> None:
    repo = installed(sandbox)
    env = slow_env(silent_daemon, "auto")
    result, seconds = timed_git(sandbox, repo, env, "checkout", "-q", "-b", "topic")
    assert (result.returncode, result.stderr) == (0, b"")
    assert seconds < PROMPT
    (event,) = hook_events(sandbox, "post-checkout")
    assert event["details"]["branch"] == "topic"


def test_detached_event_equals_the_inline_one(sandbox: GitSandbox) -> None:
    repo = installed(sandbox)
    (repo / "a.txt").write_text("a\n")
    sandbox.git("add", "a.txt", cwd=repo)
    sandbox.git("commit", "-q", "-m", "one", cwd=repo, env={"GITAUDIT_HOOK_DETACH": "never"})
    sandbox.git("commit", "-q", "--amend", "-m", "one", cwd=repo,
                env={"GITAUDIT_HOOK_DETACH": "always"})
    inline, detached = hook_events(sandbox, "post-commit")
    for event in (inline, detached):
        events.validate_event(event)
    varying = {"id", "occurred_at", "correlation_id", "repo", "details"}
    assert {k: v for k, v in inline.items() if k not in varying} == {
        k: v for k, v in detached.items() if k not in varying}
    assert detached["details"]["files"] == inline["details"]["files"] == [  # type: ignore[index]
        {"path": "a.txt", "status": "A"}]
    assert detached["details"]["amend"] is True  # type: ignore[index]
    assert detached["repo"]["head_after"] == sandbox.out("rev-parse", "HEAD", cwd=repo)  # type: ignore[index]


def test_gating_hook_still_decides_when_detached(sandbox: GitSandbox) -> None:
    repo = pushable(sandbox)
    failing_pre_push(repo)
    before = sandbox.git("push", "origin", "main", cwd=repo, check=False)
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    after = sandbox.git("push", "origin", "main", cwd=repo, check=False,
                        env={"GITAUDIT_HOOK_DETACH": "always"})
    assert before.returncode != 0
    assert (after.returncode, after.stdout, after.stderr) == (
        before.returncode, before.stdout, before.stderr)
    (event,) = hook_events(sandbox, "pre-push")
    assert event["outcome"] == "failure"
    assert event["details"]["chained_hook"]["exit_code"] == 3  # type: ignore[index]


def test_detached_child_leaves_the_terminal_alone(sandbox: GitSandbox,
                                                  silent_daemon: Path) -> None:
    """git on a terminal: the child has no controlling terminal, no tty descriptor, own session."""
    repo = installed(sandbox)
    env = sandbox.environ(slow_env(silent_daemon, "always"))
    leader, follower = pty.openpty()
    try:
        tty = os.ttyname(follower)
        start = time.monotonic()
        result = subprocess.run(
            [REAL_GIT, "commit", "-q", "--allow-empty", "-m", "tty"], cwd=repo, env=env,
            stdin=follower, stdout=follower, stderr=follower, check=False,
            start_new_session=True,  # git's own session, with the pty as its terminal
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        assert result.returncode == 0
        assert time.monotonic() - start < PROMPT
        children = sandbox_processes(sandbox)
        assert children
        leaders = 0
        for pid in children:  # the detached process, and the git queries it started
            try:
                fds = Path(f"/proc/{pid}/fd").iterdir()
                targets = {int(fd.name): os.readlink(fd) for fd in fds}
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile (a git query, quick)
            assert tty not in targets.values()
            session, tty_nr = int(stat[3]), int(stat[4])
            assert tty_nr == 0  # no controlling terminal
            assert session != os.getsid(0)
            if session == pid:  # the detached process itself leads its own session
                leaders += 1
                assert all(targets.get(fd) == os.devnull for fd in (0, 1, 2)), targets
        assert leaders <= 1
        os.set_blocking(leader, False)
        try:
            written = os.read(leader, 4096)
        except BlockingIOError:
            written = b""
        assert written == b""  # nothing printed on the terminal
    finally:
        os.close(follower)
        os.close(leader)
    assert len(hook_events(sandbox, "post-commit")) == 1


def test_detached_child_that_cannot_spool_uses_the_emergency_spool(
    sandbox: GitSandbox,
) -> None:
    repo = installed(sandbox)
    blocker = sandbox.root / "not-a-directory"
    blocker.write_text("")
    env = {"GITAUDIT_SPOOL_DIR": str(blocker / "spool"), "GITAUDIT_HOOK_DETACH": "always"}
    result = sandbox.git("commit", "-q", "--allow-empty", "-m", "e", cwd=repo, env=env)
    assert result.stderr == b""  # the detached child has no stderr to warn on
    settle(sandbox)
    emergency = sandbox.tmp / f"gitaudit-{os.getuid()}" / "spool"
    found = [e for e in sandbox.events(emergency) if e["source"] == "hook"]
    assert [e["details"]["hook"] for e in found] == ["post-commit"]  # type: ignore[index]


def test_auto_stays_inline_when_the_spool_cannot_be_written(sandbox: GitSandbox) -> None:
    repo = installed(sandbox)
    blocker = sandbox.root / "not-a-directory"
    blocker.write_text("")
    env = {"GITAUDIT_SPOOL_DIR": str(blocker / "spool")}
    result = sandbox.git("commit", "-q", "--allow-empty", "-m", "w", cwd=repo, env=env)
    warnings = result.stderr.decode().splitlines()
    assert len(warnings) == 1
    assert warnings[0].startswith("gitaudit: ")
    assert "emergency spool" in warnings[0]


def test_wait_for_exit_returns_when_the_process_exits_or_at_the_timeout() -> None:
    from gitaudit.capture.hookrun import wait_for_exit

    short = subprocess.Popen(["sleep", "0.3"])
    start = time.monotonic()
    wait_for_exit(short.pid, 10.0)
    assert 0.2 < time.monotonic() - start < 5.0
    short.wait()
    endless = subprocess.Popen(["sleep", "30"])
    try:
        start = time.monotonic()
        wait_for_exit(endless.pid, 0.3)
        assert 0.25 < time.monotonic() - start < 5.0
    finally:
        endless.kill()
        endless.wait()
    start = time.monotonic()
    wait_for_exit(short.pid, 10.0)  # long gone
    assert time.monotonic() - start < 1.0
