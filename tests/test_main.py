"""The ``gitaudit`` entry point: ``gitaudit git ...`` as a process of its own.

Such a process lives for one git command: it runs no cyclic garbage
collection and skips the interpreter's teardown, yet git's output, gitaudit's
own stderr line and git's exit status come out exactly as before, and the
event is in the spool when the process has ended.
"""

from __future__ import annotations

import subprocess
import sys
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
