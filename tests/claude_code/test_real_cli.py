"""The real Claude Code CLI, driven with ``-p`` against a fake API, leaves a full trail.

Claude Code (installed from npm, see tests/claude_code/cli.py) runs in a
repository whose ``.claude/settings.json`` names gitaudit's hook command for
every event; the fake endpoint (tests/claude_code/fake_stream.py) answers with
one Bash ``tool_use`` that commits and pushes to a local bare repository
through the gitaudit shim. A real daemon stores everything. The test then reads
the stored trail (:func:`stored_trail`) and checks the session's start and
end, the prompt (hashed, no text), the tool call (command redacted), the API
requests with their tokens (Claude Code's OTLP log events, received by the
daemon), and the commit and push with the agent proven as their actor
(``actor.agent``: the session, the tool call, ``verified`` from the process tree).

Skipped, with the reason, when the CLI cannot be installed or started here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from gitaudit.claude import ids
from gitaudit.claude.settings_install import hook_command
from gitaudit.cli.shim import shim_install
from tests.claude_code.cli import claude_binary, claude_env
from tests.claude_code.fake_stream import FakeStream
from tests.daemon.daemon_harness import DaemonRun, Daemons, free_port, wait_for
from tests.gitfixtures import GitSandbox

HOOK_COMMAND = hook_command()  # exactly what `gitaudit claude-code install` writes
# The events gitaudit's hook is installed for (claude-code install does the same).
HOOK_EVENTS = ("SessionStart", "UserPromptSubmit", "PostToolUse", "PostToolUseFailure", "Stop",
               "SessionEnd")
MATCHED = frozenset({"PostToolUse", "PostToolUseFailure"})
TOKEN = "ghp_" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8"
PROMPT = f"commit the change and push it (the remote token is {TOKEN})"


def project_settings(repo: Path) -> None:
    """``.claude/settings.json`` with gitaudit's hook command for each event."""
    entry = {"type": "command", "command": HOOK_COMMAND}
    hooks = {
        event: [{"matcher": "*", "hooks": [entry]} if event in MATCHED else {"hooks": [entry]}]
        for event in HOOK_EVENTS
    }
    folder = repo / ".claude"
    folder.mkdir()
    (folder / "settings.json").write_text(json.dumps({"hooks": hooks}, indent=2))


def stored_trail(run: DaemonRun, repo: Path) -> list[dict[str, Any]]:
    """What the store holds about the Claude Code session(s) that worked in ``repo``: every
    event of their correlation id, and every event recorded for the repository, in time
    order (extend the assertions on this, e.g. ``actor.agent`` once git events carry it)."""
    stored = run.stored()
    sessions = {event["correlation_id"] for event in stored
                if event["operation"] == "claude.session"}
    path = str(repo.resolve())
    trail = [event for event in stored if event["correlation_id"] in sessions
             or (event.get("repo") or {}).get("path") == path]
    return sorted(trail, key=lambda event: event["occurred_at"])


def test_a_claude_code_session_commits_and_pushes_on_record(
    sandbox: GitSandbox, daemons: Daemons
) -> None:
    claude = claude_binary()
    remote = sandbox.bare_remote()
    repo = sandbox.repo(remote=remote)
    sandbox.push(repo)
    project_settings(repo)
    shims = sandbox.root / "shims"
    shim_install(shims)
    port = free_port()
    run = daemons(config={"otlp_address": f"127.0.0.1:{port}"}).start()
    telemetry = {  # what `gitaudit claude-code install --telemetry` writes
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"http://127.0.0.1:{port}/v1/logs",
        "OTEL_LOGS_EXPORT_INTERVAL": "500",
    }
    command = ("echo change >> README && git commit -qam 'agent change'"
               f" && GH_TOKEN={TOKEN} git push -q origin main")
    with FakeStream(command) as api:
        env = sandbox.environ({
            **claude_env(sandbox.home, f"http://127.0.0.1:{api.port}", base={}, **telemetry),
            "PATH": f"{shims}:{sandbox.env['PATH']}",
            "GITAUDIT_RUNTIME_DIR": str(run.runtime),
            "GITAUDIT_SOCKET_TIMEOUT": "30",  # a busy machine: still to the daemon, not spooled
        })
        done = subprocess.run(
            [str(claude), "-p", PROMPT, "--allowedTools", "Bash", "--output-format", "json"],
            cwd=repo, env=env, capture_output=True, text=True, check=False, timeout=300,
        )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    session = json.loads(done.stdout)["session_id"]
    assert api.tool_uses == 1  # the CLI ran the tool call the fake asked for
    assert sandbox.out("rev-parse", "main", cwd=remote) == sandbox.out("rev-parse", "HEAD",
                                                                       cwd=repo)

    def complete() -> list[dict[str, Any]] | None:
        trail = stored_trail(run, repo)
        seen = {(e["operation"], e["details"].get("phase")) for e in trail}
        wanted = {("claude.session", "end"), ("git.push", None), ("git.commit", None),
                  ("claude.request", None)}
        return trail if wanted <= seen else None

    trail: list[dict[str, Any]] = wait_for(complete, "the session's trail stored")
    claude_events = [event for event in trail if event["source"] == "claude_code"]
    assert {event["correlation_id"] for event in claude_events} == {session}
    by_kind = {(e["operation"], e["details"].get("phase")): e for e in claude_events}
    start = by_kind[("claude.session", "start")]
    assert start["id"] == ids.session_event_id(session)
    assert start["details"]["start_source"] == "startup"
    assert by_kind[("claude.session", "end")]["parent_id"] == start["id"]
    prompt = by_kind[("claude.prompt", "submit")]
    assert prompt["details"]["length"] == len(PROMPT)
    assert "text" not in prompt["details"]
    assert prompt["parent_id"] == start["id"]
    tool = by_kind[("claude.tool_use", "result")]
    assert tool["details"]["tool"] == "Bash"
    assert tool["details"]["input"]["command"] == command.replace(
        TOKEN, "[REDACTED:github-token]")
    assert tool["details"]["success"] is True
    assert tool["parent_id"] == prompt["id"]
    assert tool["id"] == ids.tool_use_event_id(session, tool["details"]["tool_use_id"])
    assert ("claude.prompt", "stop") in by_kind
    git_ops = [event["operation"] for event in trail if event["source"] != "claude_code"]
    assert "git.commit" in git_ops and "git.push" in git_ops
    pushed = next(event for event in trail if event["operation"] == "git.push")
    assert pushed["outcome"] == "success"
    for operation in ("git.commit", "git.push"):  # the agent ran them: proven, not guessed
        done_by = next(e for e in trail if e["operation"] == operation)
        agent = done_by["actor"]["agent"]
        assert (agent["tool"], agent["session_id"], agent["verified"]) == (
            "claude-code", session, True), done_by
        assert done_by["correlation_id"] == session
    requests = [e for e in trail if e["operation"] == "claude.request"]
    assert {e["correlation_id"] for e in requests} == {session}
    assert all(e["details"]["input_tokens"] > 0 and e["details"]["output_tokens"] > 0
               and e["details"]["cost_source"] == "claude_code" for e in requests)
    run.stop()
    for path in run.root.rglob("*"):  # the token is nowhere on disk in clear
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert all(TOKEN not in json.dumps(event) for event in trail)
