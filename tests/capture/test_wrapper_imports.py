"""What `gitaudit git ...` imports: the wrapper's cost guarded by its module set, not by timing.

A bare interpreter start is the yardstick of the wrapper's budget
(``bench/bench_wrapper.py``); every module the wrapper path adds on top of it
is listed here. A change that pulls in another module (``typing``, ``re``,
``json``, ``pathlib``, a new gitaudit module...) fails this test and has to be
listed deliberately, with its cost measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gitaudit.cli.shim import shim_install
from tests.daemon.daemon_harness import wait_for
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


def imported(argv: list[str], sandbox: GitSandbox, cwd: object, stdin: str | None = None,
             env: dict[str, str] | None = None) -> set[str]:
    """Names of the modules a Python command imports (``python -X importtime``)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], cwd=cwd, env=sandbox.environ(env),
        capture_output=True, text=True, check=True, input=stdin,
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


# `python -m gitaudit claude-code-hook` (every Claude Code hook event): beyond what a bare
# `python -m` loads, the lean modules above plus these; measured with -X importtime (self
# time): code_hook 0.35 ms, hooks 0.3 ms and hookrun 0.3 ms (the repository and settings
# readers the git hooks use), ids 0.07 ms, _sha1 (C) 0.1 ms
CLAUDE_CODE_HOOK = frozenset({
    "gitaudit.claude", "gitaudit.claude.code_hook", "gitaudit.claude.ids",
    "gitaudit.capture.hooks", "gitaudit.capture.hookrun", "_sha1", "errno",
})  # fmt: skip
NEVER_ON_THE_HOOK = frozenset({
    "re", "json", "typing", "uuid", "hashlib", "pydantic", "typer", "rich", "sqlalchemy",
    "anthropic", "pygit2", "socket",
})  # fmt: skip


INLINE = {"GITAUDIT_HOOK_DETACH": "never"}  # the whole path in one process (no detached child)


def test_the_claude_code_hook_imports_only_the_listed_modules(
    sandbox: GitSandbox, tmp_path: Path
) -> None:
    from tests.claude_code import payloads as p

    repo = sandbox.repo()
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "empty_module.py").write_text("")
    bare = imported(["-m", "empty_module"], sandbox, probe)  # runpy's share of `-m`
    command = "git commit -qm change && git push origin main"
    cwd = str(repo)
    for payload in (
        p.session_start(cwd), p.prompt_submit(cwd, "please commit the change"),
        p.post_tool_use(cwd, command), p.post_tool_use_failure(cwd, "git push"), p.stop(cwd),
        p.session_end(cwd),
    ):
        modules = imported(["-m", "gitaudit", "claude-code-hook"], sandbox, repo,
                           stdin=json.dumps(payload), env=INLINE)
        added = modules - bare
        assert "gitaudit.claude.code_hook" in added  # the probe saw the hook run
        assert modules & NEVER_ON_THE_HOOK == set(), payload["hook_event_name"]
        assert added - HOT_PATH - STDLIB - CLAUDE_CODE_HOOK == set(), payload["hook_event_name"]
    assert len(sandbox.events()) == 6


def test_a_detached_claude_code_hook_leaves_the_pipeline_to_its_child(
    sandbox: GitSandbox,
) -> None:
    from tests.claude_code import payloads as p

    repo = sandbox.repo()
    sandbox.spool.mkdir(mode=0o700)  # a writable spool: hook_detach=auto detaches
    payload = p.post_tool_use(str(repo), "git commit -qm change")
    modules = imported(["-m", "gitaudit", "claude-code-hook"], sandbox, repo,
                       stdin=json.dumps(payload))
    assert "gitaudit.claude.code_hook" in modules
    # what Claude Code waits for: the event built and HEAD read, nothing more
    assert {"gitaudit.pipeline", "gitaudit.sanitize", "gitaudit.capture.hooks",
            "gitaudit.transport"} & modules == set()
    wait_for(lambda: sandbox.events() or None, "the detached child's event")
    assert sandbox.events()[0]["repo"]["branch"] == "main"
