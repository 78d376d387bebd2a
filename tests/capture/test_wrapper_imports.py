"""What `gitaudit git ...` imports: the wrapper's cost guarded by its module set, not by timing.

A bare interpreter start is the yardstick of the wrapper's budget
(``bench/bench_wrapper.py``); every module the wrapper path adds on top of it
is listed here. A change that pulls in another module (``typing``, ``re``,
``json``, ``pathlib``, a new gitaudit module...) fails this test and has to be
listed deliberately, with its cost measured.
"""

from __future__ import annotations

import subprocess
import sys

from tests.gitfixtures import GitSandbox, gitaudit_command

# every gitaudit module a recorded command loads (no daemon: the spool takes the event)
HOT_PATH = frozenset({
    "gitaudit", "gitaudit.__main__", "gitaudit.capture", "gitaudit.capture.context",
    "gitaudit.capture.details", "gitaudit.capture.gitcmd", "gitaudit.capture.gitstate",
    "gitaudit.capture.record", "gitaudit.capture.trace2", "gitaudit.capture.wrapper",
    "gitaudit.catalog", "gitaudit.config", "gitaudit.errors", "gitaudit.jsonfast",
    "gitaudit.paths", "gitaudit.pipeline", "gitaudit.policy", "gitaudit.sanitize",
    "gitaudit.transport", "gitaudit.transport.spool",
})  # fmt: skip
# stdlib beyond a bare start: C modules (plus the tiny __future__), each well under 0.2 ms
STDLIB = frozenset({"__future__", "_json", "fcntl", "gc", "pwd"})
# what the wrapper path must never import (each costs milliseconds, or far more)
HEAVY = frozenset({
    "typing", "dataclasses", "json", "re", "enum", "pathlib", "contextlib", "uuid", "datetime",
    "hashlib", "socket", "signal", "subprocess", "collections", "functools", "tomllib",
    "pygit2", "pydantic", "typer", "rich", "sqlalchemy",
})  # fmt: skip


def imported(argv: list[str], sandbox: GitSandbox, cwd: object) -> set[str]:
    """Names of the modules a Python command imports (``python -X importtime``)."""
    result = subprocess.run(
        argv, cwd=cwd, env=sandbox.environ({"PYTHONPROFILEIMPORTTIME": "1"}),
        capture_output=True, text=True, check=True,
    )
    return {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "cumulative" not in line
    }


def test_recorded_commands_import_only_the_listed_modules(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    command = gitaudit_command()
    if command[0] != sys.executable:  # the console script: run its code with this Python
        command = [sys.executable, *command]
    bare = imported([sys.executable, "-c", "pass"], sandbox, repo)
    (repo / "f.txt").write_text("x\n")
    sandbox.git("add", "f.txt", cwd=repo)
    for args in (["status"], ["commit", "-q", "-m", "one"], ["rev-parse", "HEAD"]):
        added = imported([*command, "git", *args], sandbox, repo) - bare
        assert "gitaudit.capture.wrapper" in added  # the probe saw the wrapper run
        assert added & HEAVY == set(), args
        assert added - HOT_PATH - STDLIB == set(), args
    assert [event["details"]["subcommand"] for event in sandbox.events()] == [
        "status", "commit", "rev-parse",
    ]
