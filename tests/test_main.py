"""The ``gitaudit`` entry point: ``gitaudit git ...`` as a process of its own.

Such a process lives for one git command: it runs no cyclic garbage
collection and skips the interpreter's teardown, yet git's output, gitaudit's
own stderr line and git's exit status come out exactly as before, and the
event is in the spool when the process has ended.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.gitfixtures import PROJECT_ROOT, GitSandbox


@pytest.fixture
def sandbox(tmp_path: Path) -> GitSandbox:
    """A fresh, isolated git environment (HOME, config, identities, spool)."""
    return GitSandbox(tmp_path)

# The console script's own code (pip generates the same two lines), with probes
# around it: a line buffered in sys.stdout beforehand, a gc callback that notes
# every collection, an atexit handler that notes the interpreter's teardown.
ENTRY = """
import atexit, gc, os, sys
import gitaudit.__main__
print("buffered before git")
gc.callbacks.append(lambda phase, info: phase == "start" and os.write(2, b"[collection]\\n"))
atexit.register(lambda: os.write(2, b"[teardown]\\n"))
sys.argv = ["gitaudit", *sys.argv[1:]]
sys.exit(gitaudit.__main__.main())
"""


def run_entry(sandbox: GitSandbox, *args: str, env: dict[str, str] | None = None,
              code: str = ENTRY) -> subprocess.CompletedProcess[bytes]:
    repo = sandbox.root / "work"
    if not repo.exists():
        sandbox.repo()
    return subprocess.run(
        [sys.executable, "-c", code, "git", *args], cwd=repo, capture_output=True,
        env=sandbox.environ({"PYTHONPATH": str(PROJECT_ROOT), **(env or {})}), check=False,
    )


def test_git_path_collects_no_garbage_and_skips_teardown(sandbox: GitSandbox) -> None:
    result = run_entry(sandbox, "rev-parse", "HEAD")
    assert result.returncode == 0, result.stderr
    assert b"[collection]" not in result.stderr  # gc is off before the wrapper is imported
    assert b"[teardown]" not in result.stderr  # the process ends right after git's status
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "buffered before git"  # Python's buffers are still flushed
    assert len(lines[1]) == 40  # git's own output
    assert sandbox.last_event()["details"]["subcommand"] == "rev-parse"


def test_git_path_keeps_gits_status_and_gitaudits_one_line(sandbox: GitSandbox) -> None:
    failed = run_entry(sandbox, "rev-parse", "--verify", "-q", "no-such-ref")
    assert failed.returncode == 1
    assert b"[teardown]" not in failed.stderr
    assert sandbox.last_event()["outcome"] == "failure"
    warned = run_entry(sandbox, "status", "--short", env={"GITAUDIT_SAMPLE_RATE": "x"})
    assert warned.returncode == 0
    stderr = warned.stderr.decode()
    assert stderr.count("gitaudit: ") == 1  # the flushed warning, once
    assert stderr.startswith("gitaudit: ") and stderr.endswith("\n")
    assert sandbox.last_event()["details"]["subcommand"] == "status"


LIBRARY_CALL = """
import atexit, os, sys
from gitaudit.__main__ import main
atexit.register(lambda: os.write(2, b"[teardown]\\n"))
print("returned", main(sys.argv[1:]))
"""


def test_called_with_argv_the_git_path_returns(sandbox: GitSandbox) -> None:
    result = run_entry(sandbox, "rev-parse", "HEAD", code=LIBRARY_CALL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines()[-1] == "returned 0"
    assert b"[teardown]" in result.stderr  # a library call leaves the process to its caller


# os.fsync and os.fork replaced by probes that note which process called them
FSYNC_PROBE = """
import os, sys
log, real_fsync, real_fork = sys.argv.pop(1), os.fsync, os.fork
def note(what):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, f"{what} {os.getpid()}\\n".encode())
    os.close(fd)
def fsync(fd):
    real_fsync(fd)
    note("fsync")
def fork():
    if os.environ.get("PROBE_NO_FORK"):
        raise OSError(11, "Resource temporarily unavailable")
    return real_fork()
os.fsync, os.fork = fsync, fork
note("wrapper")
import gitaudit.__main__
sys.argv = ["gitaudit", *sys.argv[1:]]
sys.exit(gitaudit.__main__.main())
"""


def fsync_callers(sandbox: GitSandbox, env: dict[str, str] | None = None) -> dict[str, int]:
    log = sandbox.root / "probe.log"
    log.unlink(missing_ok=True)
    repo = sandbox.root / "work"
    if not repo.exists():
        sandbox.repo()
    before = len(sandbox.events())
    result = subprocess.run(
        [sys.executable, "-c", FSYNC_PROBE, str(log), "git", "status"], cwd=repo,
        capture_output=True, env=sandbox.environ({"PYTHONPATH": str(PROJECT_ROOT), **(env or {})}),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(sandbox.events()) == before + 1  # written before the wrapper ended
    deadline = time.monotonic() + 20
    while "fsync" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)  # the detached child may still be at it
    return dict(line.split() for line in log.read_text().split("\n") if line)


def test_the_spool_fsync_is_left_to_a_child(sandbox: GitSandbox) -> None:
    callers = fsync_callers(sandbox)
    assert callers["fsync"] != callers["wrapper"]  # the wrapper did not wait for the disk


def test_without_fork_the_wrapper_fsyncs_itself(sandbox: GitSandbox) -> None:
    callers = fsync_callers(sandbox, {"PROBE_NO_FORK": "1"})
    assert callers["fsync"] == callers["wrapper"]
