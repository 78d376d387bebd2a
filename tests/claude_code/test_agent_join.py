"""The agent as actor of git operations (issue 11, part 4): joined by id, never by time alone.

A stand-in Claude Code process (``standin_agent.py``, exec'd through a symlink
named ``claude``) runs the hook command with Claude Code's payloads and its Bash
tool calls as its own children, with the environment Claude Code sets; the git
it runs is real (plain git reporting trace2 to a real daemon, and the wrapper).
The daemon proves each claim from ``/proc`` ancestry and the session the hooks
bound to that process (``gitaudit.daemon.agents``).

Plain git through trace2 is proven from the ancestry the daemon reads when git
connects; a git that already ended by then cannot be proven. The plain
commits here run a ``post-commit`` hook that waits a little so that the
process is surely there when the daemon looks (what is asserted is the
outcome, not a duration).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gitaudit.capture import agent
from gitaudit.claude import ids
from gitaudit.daemon import agents
from tests.daemon.daemon_harness import DaemonRun, Daemons, send_trace2_to, wait_for
from tests.gitfixtures import GitSandbox, branched, gitaudit_command

HERE = Path(__file__).resolve().parent
SESSION = "0c1ceea0-202e-49c2-a0d4-39b78f7cacc0"
OTHER_SESSION = "9f9f9f9f-0000-4000-8000-000000000000"
GA = " ".join(shlex.quote(part) for part in gitaudit_command()) + " git"
PROMPT = [
    {"kind": "hook", "payload": {"hook_event_name": "SessionStart", "source": "startup"}},
    {"kind": "hook", "payload": {"hook_event_name": "UserPromptSubmit", "prompt_id": "prompt-1",
                                 "prompt": "commit and push", "permission_mode": "default"}},
]


def hook_command() -> str:
    """The installed hook command when this build has it, else the contract's stand-in."""
    if importlib.util.find_spec("gitaudit.claude.code_hook") is not None:
        return f"{shlex.quote(sys.executable)} -m gitaudit claude-code-hook"
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(HERE / 'hookstub.py'))}"


def run_agent(sandbox: GitSandbox, cwd: Path, steps: list[dict[str, Any]],
              **plan: Any) -> dict[str, Any]:
    """Run the stand-in Claude Code process through ``steps``; what it reports."""
    link = sandbox.root / "bin" / "claude"
    if not link.exists():
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(sys.executable)
    plan_file = sandbox.root / f"plan-{len(list(sandbox.root.glob('plan-*')))}.json"
    plan_file.write_text(json.dumps({"session": SESSION, "cwd": str(cwd), "hook": hook_command(),
                                     "steps": steps, **plan}))
    done = subprocess.run([str(link), str(HERE / "standin_agent.py"), str(plan_file)],
                          env=sandbox.environ(), capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert all(tool["exit_code"] == 0 for tool in report["tools"]), (report, done.stderr)
    return report


def slow_post_commit(sandbox: GitSandbox, repo: Path) -> None:
    """A post-commit hook that keeps plain `git commit` running a moment (see module doc)."""
    hook = repo / ".git" / "hooks" / "post-commit"
    hook.write_text("#!/bin/sh\nsleep 0.5\n")
    hook.chmod(0o755)


MESSAGES = ("agent plain", "agent wrapped", "claims another session", "no claim", "forged",
            "reused pid", "a", "b")


def message_of(event: dict[str, Any]) -> str | None:
    """Which of :data:`MESSAGES` a stored commit had (messages are kept only as hashes)."""
    argv = " ".join(event["details"].get("argv") or [])
    for message in MESSAGES:
        if hashlib.sha256(message.encode()).hexdigest() in argv:
            return message
    return None


def joins(run: DaemonRun, result: str) -> float:
    return run.metric_sum(f'gitaudit_agent_joins_total{{result="{result}"}}')


def tool_uses(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["details"]["tool_use_id"]: e for e in found if e["operation"] == "claude.tool_use"}


def linked_tool(event: dict[str, Any], found: list[dict[str, Any]]) -> str | None:
    """The tool call a git event is joined to: on the git event, or listed by the call."""
    named = event["actor"]["agent"].get("tool_use_id")
    listing = [key for key, call in tool_uses(found).items()
               if event["id"] in call["details"].get("git_event_ids", [])]
    assert len(listing) <= 1, listing
    if named is not None and listing:
        assert listing == [named]
    return named or (listing[0] if listing else None)


@pytest.fixture
def daemon(sandbox: GitSandbox, daemons: Daemons) -> DaemonRun:
    return send_trace2_to(daemons().start(), sandbox)


def test_git_run_by_the_agent_carries_the_verified_session_and_tool_call(
    sandbox: GitSandbox, daemon: DaemonRun
) -> None:
    repo = sandbox.repo(remote=sandbox.bare_remote())
    slow_post_commit(sandbox, repo)
    run_agent(sandbox, repo, [
        *PROMPT,
        {"kind": "bash", "tool_use_id": "toolu_plain",
         "command": "echo one >> f.txt && git add f.txt && git commit -qm 'agent plain'"},
        {"kind": "pause", "seconds": 0.3},
        {"kind": "bash", "tool_use_id": "toolu_wrapped",
         "command": f"echo two >> f.txt && {GA} commit -qam 'agent wrapped' --no-verify"
                    f" && {GA} push -q origin main"},
    ])

    def settled() -> list[dict[str, Any]] | None:
        found = daemon.stored()
        pushes = [e for e in found if e["operation"] == "git.push"]
        return found if len(agent_commits(found)) == 2 and pushes and len(
            tool_uses(found)) == 2 else None

    def agent_commits(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in found if e["operation"] == "git.commit"
                and message_of(e) in {"agent plain", "agent wrapped"}]

    found = wait_for(settled, "both commits, the push and both tool calls")
    commits = {e["source"]: e for e in agent_commits(found)}
    [push] = [e for e in found if e["operation"] == "git.push"]
    assert set(commits) == {"trace2", "wrapper"}
    for event in (*commits.values(), push):
        assert event["actor"]["agent"] == {
            "tool": "claude-code", "session_id": SESSION, "version": "2.1.197",
            "verified": True, "proof": "ancestry",
            **({"tool_use_id": event["actor"]["agent"]["tool_use_id"]}
               if "tool_use_id" in event["actor"]["agent"] else {}),
        }
        assert event["correlation_id"] == SESSION
        assert event["actor"]["verified"] is True  # the uid, from SO_PEERCRED as before
    assert linked_tool(commits["trace2"], found) == "toolu_plain"
    assert linked_tool(commits["wrapper"], found) == "toolu_wrapped"
    assert linked_tool(push, found) == "toolu_wrapped"
    for event in (*commits.values(), push):
        tool = event["actor"]["agent"].get("tool_use_id")
        expected = (ids.tool_use_event_id(SESSION, tool) if tool
                    else ids.session_event_id(SESSION))
        assert event["parent_id"] == expected
    # no git event of the session is left unproven; the calls' own events are stored
    session_git = [e for e in found if e["operation"].startswith("git.")
                   and (e["actor"].get("agent") or {}).get("session_id") == SESSION]
    assert all(e["actor"]["agent"]["verified"] for e in session_git
               if e["operation"] in {"git.commit", "git.push"})
    assert joins(daemon, "mismatch") == 0
    assert joins(daemon, "tool_use") >= 2


def test_a_claim_the_process_tree_does_not_back_stays_a_claim(
    sandbox: GitSandbox, daemon: DaemonRun
) -> None:
    repo = sandbox.repo()
    report = run_agent(sandbox, repo, [
        *PROMPT,
        {"kind": "bash", "tool_use_id": "toolu_other", "env": {
            "CLAUDE_CODE_SESSION_ID": OTHER_SESSION},
         "command": f"{GA} commit -q --allow-empty -m 'claims another session'"},
        {"kind": "bash", "tool_use_id": "toolu_unset",
         "command": f"env -u CLAUDE_CODE_SESSION_ID {GA} commit -q --allow-empty -m 'no claim'"},
    ])
    # forged: the same claim from a process that is no child of the agent
    forged = sandbox.audited("commit", "-q", "--allow-empty", "-m", "forged", cwd=repo,
                             env={"CLAUDECODE": "1", "CLAUDE_CODE_SESSION_ID": SESSION,
                                  "AI_AGENT": "claude-code_2-1-197_agent"})
    assert forged.returncode == 0, forged.stderr
    # a pid reused: a new process gets the (ended) agent's pid and runs git with its claim
    reused = _with_pid(report["pid"], sandbox, repo,
                       f"{GA} commit -q --allow-empty -m 'reused pid'; true")

    messages = {"claims another session", "no claim", "forged",
                *(["reused pid"] if reused else [])}

    def settled() -> dict[str | None, dict[str, Any]] | None:
        found = {message_of(e): e for e in daemon.stored() if e["operation"] == "git.commit"}
        return found if messages <= set(found) else None

    commits = wait_for(settled, "the commits")
    other = commits["claims another session"]["actor"]["agent"]
    assert other == {"tool": "claude-code", "session_id": OTHER_SESSION,
                     "version": "2.1.197", "verified": False, "proof": "env"}
    assert commits["claims another session"]["correlation_id"] != SESSION
    assert joins(daemon, "mismatch") == 1
    # no claim at all, but run under the agent: the agent comes from the ancestry
    unclaimed = commits["no claim"]
    assert {key: unclaimed["actor"]["agent"][key] for key in ("session_id", "verified", "proof")
            } == {"session_id": SESSION, "verified": True, "proof": "ancestry"}
    assert unclaimed["correlation_id"] == SESSION
    assert joins(daemon, "ancestry") == 1
    for message in ("forged", "reused pid") if reused else ("forged",):
        event = commits[message]
        assert event["actor"]["agent"]["verified"] is False, message
        assert event["actor"]["agent"]["proof"] == "env"
        assert event["correlation_id"] != SESSION
        assert event["parent_id"] is None
    assert joins(daemon, "claim_unproven") >= (2 if reused else 1)
    if not reused:
        pytest.skip("could not give a new process the agent's old pid (ns_last_pid)")


def _with_pid(pid: int, sandbox: GitSandbox, repo: Path, command: str) -> bool:
    """Run ``sh -c command`` as process ``pid`` (the kernel's ns_last_pid); False if it
    could not be arranged (not root, or another process took the pid first)."""
    env = sandbox.environ({"CLAUDECODE": "1", "CLAUDE_CODE_SESSION_ID": SESSION,
                           "AI_AGENT": "claude-code_2-1-197_agent"})
    for _ in range(20):
        try:
            with open("/proc/sys/kernel/ns_last_pid", "w") as handle:
                handle.write(str(pid - 1))
        except OSError:
            return False
        shell = subprocess.Popen(["/bin/sh", "-c", f"read go && {command}"], env=env, cwd=repo,
                                 stdin=subprocess.PIPE)
        assert shell.stdin is not None
        if shell.pid == pid:
            shell.stdin.write(b"go\n")
            shell.stdin.close()
            assert shell.wait(120) == 0
            return True
        shell.stdin.close()
        shell.wait(120)
    return False


def test_overlapping_tool_calls_leave_the_tool_call_out(
    sandbox: GitSandbox, daemon: DaemonRun
) -> None:
    first, second = sandbox.repo("first"), sandbox.repo("second")
    run_agent(sandbox, first, [
        *PROMPT,
        {"kind": "parallel", "calls": [
            {"tool_use_id": "toolu_a", "command": f"{GA} -C {first} commit -q --allow-empty -m a"},
            {"tool_use_id": "toolu_b",
             "command": f"{GA} -C {second} commit -q --allow-empty -m b"},
        ]},
    ])

    def agent_commits(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in found if e["operation"] == "git.commit" and message_of(e) in {"a", "b"}]

    def settled() -> list[dict[str, Any]] | None:
        found = daemon.stored()
        return found if len(agent_commits(found)) == 2 and len(tool_uses(found)) == 2 else None

    found = wait_for(settled, "both commits and both tool calls")
    for event in agent_commits(found):
        assert event["actor"]["agent"]["verified"] is True
        assert event["actor"]["agent"]["session_id"] == SESSION
        assert linked_tool(event, found) is None
        assert event["parent_id"] == ids.session_event_id(SESSION)
    assert joins(daemon, "ambiguous") >= 1
    assert joins(daemon, "tool_use") == 0


def test_a_conflict_the_agent_resolved_ends_resolved_by_claude(
    sandbox: GitSandbox, daemon: DaemonRun
) -> None:
    repo = branched(sandbox, {"a.txt": "base\n"}, topic=[("topic a", {"a.txt": "topic\n"})],
                    main=[("main a", {"a.txt": "main\n"})], on="topic")
    run_agent(sandbox, repo, [
        *PROMPT,
        {"kind": "bash", "tool_use_id": "toolu_rebase", "command": f"{GA} rebase -q main; true"},
        {"kind": "edit", "tool_use_id": "toolu_edit", "path": "a.txt",
         "content": "main and topic, merged by the agent\n"},
        {"kind": "bash", "tool_use_id": "toolu_continue",
         "command": f"{GA} add a.txt && GIT_EDITOR=true {GA} rebase --continue"},
    ])
    resolved = wait_for(lambda: [e for e in daemon.stored()
                                 if e["operation"] == "conflict.resolved"], "the resolution")
    [event] = resolved
    assert event["details"]["files"][0]["path"] == "a.txt"
    assert event["details"]["files"][0]["resolution"] == "claude"
    assert event["details"]["session_id"] == SESSION
    assert event["actor"]["agent"]["verified"] is True
    assert event["correlation_id"] == SESSION


def test_without_the_daemon_the_wrapper_records_the_claim_unverified(
    sandbox: GitSandbox,
) -> None:
    repo = sandbox.repo()
    done = sandbox.audited("commit", "-q", "--allow-empty", "-m", "spooled", cwd=repo,
                           env={"CLAUDECODE": "1", "CLAUDE_CODE_SESSION_ID": SESSION,
                                "AI_AGENT": "claude-code_2-1-197_agent", "CLAUDE_PID": "4242"})
    assert done.returncode == 0, done.stderr
    event = sandbox.last_event("git.commit")
    assert event["actor"]["agent"] == {
        "tool": "claude-code", "session_id": SESSION, "version": "2.1.197",
        "claude_pid": 4242, "verified": False, "proof": "env",
    }


# --- pieces -------------------------------------------------------------------------------


def test_claims_are_read_from_the_environment_claude_code_sets() -> None:
    assert agent.claim({}) is None
    assert agent.claim({"CLAUDECODE": "1"}) is None
    assert agent.claim({"CLAUDE_CODE_SESSION_ID": "s", "AI_AGENT": "claude-code_2-1-197_agent",
                        "CLAUDE_PID": "12"}) == {
        "tool": "claude-code", "session_id": "s", "version": "2.1.197", "claude_pid": 12,
        "verified": False, "proof": "env"}
    assert agent.version_of("something-else") == "something-else"
    assert agent.version_of(None) is None
    assert set(agent.ENV_VARS) <= set(__import__("gitaudit.capture.context").capture.context
                                      .TRACE2_ENV_VARS)


def test_ids_are_the_contracts_uuid5() -> None:
    import uuid

    space = uuid.UUID("6f1d3c2e-8a4b-5c6d-9e0f-1a2b3c4d5e6f")
    assert ids.session_event_id("s") == str(uuid.uuid5(space, "claude-code/session/s/"))
    assert ids.prompt_event_id("s", "p") == str(uuid.uuid5(space, "claude-code/prompt/s/p"))
    assert ids.tool_use_event_id("s", "t") == str(uuid.uuid5(space, "claude-code/tool_use/s/t"))


def test_ancestry_keeps_start_times_and_recognises_claude_code(tmp_path: Path) -> None:
    link = tmp_path / "claude"
    link.symlink_to(sys.executable)
    script = "import sys; print(1, flush=True); sys.stdin.read()"
    child = subprocess.Popen([str(link), "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        assert child.stdout.readline()  # it runs (exec'd), not only forked
        chain = agents.lineage(child.pid)
        assert chain[0][0] == child.pid and chain[1][0] == os.getpid()
        assert agents.alive(chain[0])
        assert not agents.alive((child.pid, chain[0][1] + 1))  # same pid, other start: not it
        assert agents.is_claude_code(child.pid)
        assert not agents.is_claude_code(os.getpid())
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()
    assert not agents.alive(chain[0])


def test_git_hooks_under_the_agent_deliver_a_verified_agent(
    sandbox: GitSandbox, daemons: Daemons
) -> None:
    daemon = daemons().start()
    sandbox.env["GITAUDIT_RUNTIME_DIR"] = str(daemon.runtime)  # hooks only, no trace2
    repo = sandbox.repo()
    installed = subprocess.run([*gitaudit_command(), "hooks", "install", "--repo", str(repo)],
                               env=sandbox.environ(), capture_output=True, check=False)
    assert installed.returncode == 0, installed.stderr
    run_agent(sandbox, repo, [
        *PROMPT,
        {"kind": "bash", "tool_use_id": "toolu_hooked",
         "command": "git commit -q --allow-empty -m 'agent plain'"},
    ])

    def settled() -> list[dict[str, Any]] | None:
        found = daemon.stored()
        hooked = [e for e in found if e["source"] == "hook" and e["operation"] == "git.commit"]
        return found if hooked and tool_uses(found) else None

    found = wait_for(settled, "the post-commit hook's event and the tool call")
    [commit] = [e for e in found if e["source"] == "hook" and e["operation"] == "git.commit"]
    agent_seen = commit["actor"]["agent"]
    assert {key: agent_seen[key] for key in ("session_id", "verified", "proof", "version")} == {
        "session_id": SESSION, "verified": True, "proof": "ancestry", "version": "2.1.197"}
    assert commit["correlation_id"] == SESSION
    assert linked_tool(commit, found) == "toolu_hooked"


def test_what_git_add_staged_is_read_from_its_arguments() -> None:
    staged = agents._staged_paths
    assert staged(["add", "a.txt", "-v", "dir/"]) == {"a.txt", "dir"}
    assert staged(["add", "--", "-odd"]) == {"-odd"}
    assert staged(["add", "-A"]) == {agents.ALL_PATHS}
    assert staged(["add"]) == {agents.ALL_PATHS}
    assert agents._staged("dir/a.txt", {"dir"})
    assert agents._staged("dir/a.txt", {"a.txt"})
    assert not agents._staged("b.txt", {"a.txt"})


def test_the_real_claude_code_cli_is_recognised_and_its_git_verified(
    sandbox: GitSandbox, daemon: DaemonRun
) -> None:
    """The real CLI (npm, offline against a fake API): its hooks bind the session, the
    commit its Bash tool runs through the wrapper carries the verified agent."""
    from tests.claude_code.cli import FakeClaudeAPI, claude_binary, claude_env, run_claude

    binary = claude_binary()
    repo = sandbox.repo()
    home = sandbox.root / "claude-home"
    (home / ".claude").mkdir(parents=True)
    entry = [{"hooks": [{"type": "command", "command": hook_command()}]}]
    (home / ".claude" / "settings.json").write_text(json.dumps({"hooks": {
        "SessionStart": entry, "UserPromptSubmit": entry,
        "PostToolUse": [{"matcher": "*", **entry[0]}]}}))
    with FakeClaudeAPI(f"{GA} commit -q --allow-empty -m 'real agent'") as api:
        result = run_claude(binary, repo, claude_env(home, api.url, sandbox.environ()),
                            "commit please")
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
    session = json.loads(result.stdout)["session_id"]

    def settled() -> list[dict[str, Any]] | None:
        found = daemon.stored()
        ready = any(e["operation"] == "git.commit" and e["source"] == "wrapper"
                    for e in found) and tool_uses(found)
        return found if ready else None

    found = wait_for(settled, "the agent's commit and its tool call")
    [commit] = [e for e in found if e["operation"] == "git.commit" and e["source"] == "wrapper"]
    seen = commit["actor"]["agent"]
    assert (seen["session_id"], seen["verified"], seen["proof"]) == (session, True, "ancestry")
    assert seen["version"][0].isdigit()
    assert commit["correlation_id"] == session
    assert linked_tool(commit, found) == "toolu_fake0001"
