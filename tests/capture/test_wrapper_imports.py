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

from gitaudit.cli.shim import shim_install
from tests.gitfixtures import GitSandbox, gitaudit_command

# every gitaudit module a recorded command loads (no daemon: the spool takes the event);
# a new one here costs ~0.1 ms per git command: measure it (bench/bench_wrapper.py)
HOT_PATH = frozenset({
    "gitaudit", "gitaudit.__main__", "gitaudit.capture", "gitaudit.capture.context",
    "gitaudit.capture.details", "gitaudit.capture.gitcmd", "gitaudit.capture.gitstate",
    "gitaudit.capture.record", "gitaudit.capture.trace2", "gitaudit.capture.wrapper",
    "gitaudit.catalog", "gitaudit.config", "gitaudit.errors", "gitaudit.jsonfast",
    "gitaudit.paths", "gitaudit.pipeline", "gitaudit.policy", "gitaudit.sanitize",
    "gitaudit.transport", "gitaudit.transport.spool",
    # measured with -X importtime (self time): limits 0.16 ms (size caps, issue 8), messages
    # 0.12 ms (commit messages hidden), sanitize_rules 0.28 ms and sanitize_keyed 0.15 ms
    # (the rule table, split out of sanitize: no added cost)
    "gitaudit.limits", "gitaudit.capture.messages", "gitaudit.sanitize_rules",
    "gitaudit.sanitize_keyed",
    # the AI agent's environment claim (issue 11): no imports of its own
    "gitaudit.capture.agent",
})  # fmt: skip
# stdlib beyond a bare start: C modules (plus the tiny __future__), each well under 0.2 ms;
# _sha256 (_sha2 on 3.12+) hashes a hidden commit message
STDLIB = frozenset({"__future__", "_json", "fcntl", "gc", "pwd", "_sha256", "_sha2"})
# what the wrapper path must never import (each costs milliseconds, or far more)
HEAVY = frozenset({
    "typing", "dataclasses", "json", "re", "enum", "pathlib", "contextlib", "uuid", "datetime",
    "hashlib", "socket", "signal", "subprocess", "collections", "functools", "tomllib",
    "pygit2", "pydantic", "typer", "rich", "sqlalchemy",
})  # fmt: skip


def unlisted(added: set[str]) -> set[str]:
    """Modules beyond the lists: each must be listed deliberately, once its cost is measured."""
    return added - HOT_PATH - STDLIB


def imported(argv: list[str], sandbox: GitSandbox, cwd: object) -> set[str]:
    """Names of the modules a Python command imports (``python -X importtime``)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], cwd=cwd, env=sandbox.environ(),
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
    if command[0] == sys.executable:
        command = command[1:]
    bare = imported(["-c", "pass"], sandbox, repo)
    (repo / "f.txt").write_text("x\n")
    sandbox.git("add", "f.txt", cwd=repo)
    for args in (["status"], ["commit", "-q", "-m", "one"], ["rev-parse", "HEAD"]):
        added = imported([*command, "git", *args], sandbox, repo) - bare
        assert "gitaudit.capture.wrapper" in added  # the probe saw the wrapper run
        assert added & HEAVY == set(), args
        assert unlisted(added) == set(), args
    assert [event["details"]["subcommand"] for event in sandbox.events()] == [
        "status", "commit", "rev-parse",
    ]


def test_the_shim_imports_no_site(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    shim_install(sandbox.root / "shims")
    shim = str(sandbox.root / "shims" / "git")
    bare = imported(["-I", "-c", "pass"], sandbox, repo)  # the yardstick: a start with site
    modules = imported(["-IS", shim, "status"], sandbox, repo)  # as the shim's #! line says
    assert "site" not in modules  # no site-packages scan on the common path
    added = modules - bare
    assert "gitaudit.capture.wrapper" in added
    assert unlisted(added) == set()
    assert sandbox.last_event()["details"]["subcommand"] == "status"
