"""`gitaudit git ...` is invisible: same bytes, exit codes, stdin, TTY and signals as git."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from gitaudit import events
from tests.gitfixtures import REAL_GIT, GitSandbox, gitaudit_command


def validated(event: dict[str, Any]) -> dict[str, Any]:
    events.validate_event(event)  # raises on any schema problem
    return event


def test_commit_is_recorded_with_actor_repo_and_details(sandbox: GitSandbox) -> None:
    remote = sandbox.bare_remote()
    repo = sandbox.repo(remote=remote)
    sandbox.git("remote", "set-url", "origin", "https://bob:s3cr3t@example.com/team/app.git",
                cwd=repo)
    before = sandbox.out("rev-parse", "HEAD", cwd=repo)
    (repo / "new.txt").write_text("x\n")
    sandbox.git("add", "new.txt", cwd=repo)
    result = sandbox.audited("commit", "-q", "-m", "add new", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    event = validated(sandbox.last_event())
    after = sandbox.out("rev-parse", "HEAD", cwd=repo)
    assert event["operation"] == "git.commit"
    assert event["category"] == "create"
    assert event["outcome"] == "success"
    assert event["source"] == "wrapper"
    assert event["parent_id"] is None
    assert event["result"] == {"exit_code": 0, "error": None}
    assert event["repo"] == {
        "path": str(repo),
        "remote": "https://example.com/team/app.git",
        "name": "app",
        "branch": "main",
        "head_before": before,
        "head_after": after,
    }
    actor = event["actor"]
    assert isinstance(actor, dict)
    assert actor["git_name"] == "Carl Committer"  # GIT_COMMITTER_NAME beats user.name
    assert actor["uid"] == os.getuid()
    assert actor["verified"] is False
    assert actor["ci"] is None
    details = event["details"]
    assert isinstance(details, dict)
    assert details["subcommand"] == "commit"
    assert details["commit"] == after
    assert details["trace2_sid"]
    assert isinstance(event["duration_ms"], float)
    assert "s3cr3t" not in str(event)


def test_identity_comes_from_git_config_via_trace2(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    sandbox.git("config", "user.name", "Local Person", cwd=repo)
    sandbox.audited("-c", "user.email=cli@example.com", "status", cwd=repo,
                    drop=["GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"])
    actor = sandbox.last_event()["actor"]
    assert (actor["git_name"], actor["git_email"]) == ("Local Person", "cli@example.com")


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["log", "--oneline", "--decorate"],
        ["checkout", "nope"],
        ["nosuch"],
        ["rev-parse", "--verify", "missing"],
        ["-C", "does-not-exist", "status"],
        ["commit", "-m", "nothing to commit"],
    ],
)
def test_output_and_exit_code_are_byte_identical(sandbox: GitSandbox, args: list[str]) -> None:
    repo = sandbox.repo()
    plain = sandbox.git(*args, cwd=repo, check=False)
    wrapped = sandbox.audited(*args, cwd=repo)
    assert (wrapped.returncode, wrapped.stdout, wrapped.stderr) == (
        plain.returncode, plain.stdout, plain.stderr
    )
    event = validated(sandbox.last_event())
    assert event["result"]["exit_code"] == plain.returncode
    assert event["outcome"] == ("success" if plain.returncode == 0 else "failure")


def test_failures_carry_git_error_text(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    sandbox.audited("checkout", "nope", cwd=repo)
    event = validated(sandbox.last_event())
    assert event["operation"] == "git.checkout"
    assert event["result"]["error"] == "pathspec 'nope' did not match any file(s) known to git"
    sandbox.audited("nosuch", cwd=repo)
    other = validated(sandbox.last_event())
    assert (other["operation"], other["outcome"]) == ("git.other", "failure")
    assert other["details"]["subcommand"] == "nosuch"


def test_stdin_is_passed_through(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    data = b"some content\n" * 1000
    plain = sandbox.git("hash-object", "--stdin", cwd=repo, input=data)
    wrapped = sandbox.audited("hash-object", "--stdin", cwd=repo, input=data)
    assert wrapped.returncode == 0
    assert wrapped.stdout == plain.stdout


def run_in_pty(argv: list[str], cwd: Path, env: dict[str, str]) -> bytes:
    """Run a command with stdin/stdout/stderr on a new pseudo-terminal; return what it wrote."""
    main_fd, child_fd = pty.openpty()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=child_fd, stdout=child_fd,
                               stderr=child_fd, close_fds=True)
    os.close(child_fd)
    output = b""
    while True:
        ready, _, _ = select.select([main_fd], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not chunk:
            break
        output += chunk
    os.close(main_fd)
    assert process.wait(timeout=30) == 0
    return output


def test_terminal_is_inherited(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    (repo / "untracked.txt").write_text("x")
    env = sandbox.environ({"TERM": "xterm", "GIT_PAGER": "cat", "PAGER": "cat"})
    args = ["-c", "color.ui=auto", "status", "--short", "--branch"]
    plain = run_in_pty([REAL_GIT, *args], repo, env)
    wrapped = run_in_pty([*gitaudit_command(), "git", *args], repo, env)
    assert b"\x1b[" in plain  # git saw a terminal and coloured its output
    assert wrapped == plain
    piped = sandbox.audited(*args, cwd=repo)
    assert b"\x1b[" not in piped.stdout  # and with a pipe, no colours: git saw the pipe


def wait_for_child(pid: int, name: bytes) -> int:
    """The pid of ``pid``'s child process whose command line starts with ``name``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == pid and name in cmdline.split(b"\0")[0]:
                return int(entry.name)
        time.sleep(0.02)
    raise AssertionError(f"process {pid} never started {name!r}")


def blocked_hash_object(sandbox: GitSandbox, repo: Path, wrapped: bool,
                        new_session: bool = False) -> subprocess.Popen[bytes]:
    """`git hash-object --stdin` waiting on a pipe that never closes."""
    prefix = [*gitaudit_command(), "git"] if wrapped else [REAL_GIT]
    return subprocess.Popen(
        [*prefix, "hash-object", "--stdin"], cwd=repo, env=sandbox.environ(),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=new_session,
    )


def test_sigterm_is_forwarded_and_the_wrapper_dies_like_git(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    process = blocked_hash_object(sandbox, repo, wrapped=True)
    git_pid = wait_for_child(process.pid, b"git")
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)  # stdin stays open: git can only end by the forwarded signal
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGTERM
    with pytest.raises(ProcessLookupError):
        os.kill(git_pid, 0)
    event = validated(sandbox.last_event())
    assert event["outcome"] == "failure"
    assert event["result"]["exit_code"] == 128 + signal.SIGTERM
    assert event["details"]["signal"] == "SIGTERM"


def test_sigint_to_the_process_group_ends_git_and_wrapper_alike(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    codes = []
    for wrapped in (False, True):
        process = blocked_hash_object(sandbox, repo, wrapped=wrapped, new_session=True)
        if wrapped:
            wait_for_child(process.pid, b"git")
        else:
            time.sleep(0.2)  # give plain git time to block on stdin (not a timing assertion)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        process.wait(timeout=60)  # before communicate(), which would close git's stdin
        process.communicate(timeout=60)
        codes.append(process.returncode)
    assert codes == [-signal.SIGINT, -signal.SIGINT]
    event = validated(sandbox.last_event())
    assert event["details"]["signal"] == "SIGINT"
    assert event["result"]["exit_code"] == 128 + signal.SIGINT


def test_correlation_id_is_exported_to_hooks(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    seen = sandbox.root / "seen"
    hook = repo / ".git/hooks/post-commit"
    hook.write_text(f'#!/bin/sh\necho "$GITAUDIT_CORRELATION_ID $GITAUDIT_PARENT_ID" > {seen}\n')
    hook.chmod(0o755)
    sandbox.audited("commit", "-q", "--allow-empty", "-m", "hooked", cwd=repo)
    event = validated(sandbox.last_event())
    correlation, parent = seen.read_text().split()
    assert correlation == event["correlation_id"]
    assert parent == event["id"]
    assert event["details"]["hooks"] == [{"name": "post-commit", "exit_code": 0}]

    sandbox.audited("status", cwd=repo, env={"GITAUDIT_CORRELATION_ID": "job-42"})
    assert sandbox.last_event()["correlation_id"] == "job-42"


def test_ci_job_sets_correlation_and_actor(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    ci = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "9", "GITHUB_RUN_ATTEMPT": "1",
          "GITHUB_JOB": "test"}
    sandbox.audited("status", cwd=repo, env=ci)
    event = validated(sandbox.last_event())
    assert event["correlation_id"] == "github:9:1:test"
    assert event["actor"]["ci"]["provider"] == "github"


def test_alias_is_recorded_as_the_command_it_runs(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    result = sandbox.audited("-c", "alias.co=checkout", "co", "-q", "-b", "feature", cwd=repo)
    assert result.returncode == 0, result.stderr
    event = validated(sandbox.last_event())
    assert event["operation"] == "git.checkout"
    assert event["details"]["alias"] == "co"
    assert event["details"]["create"] == "feature"
    assert event["repo"]["branch"] == "feature"
