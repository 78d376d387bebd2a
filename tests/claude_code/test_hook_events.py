"""`gitaudit claude-code-hook`: Claude Code hook payloads become claude.* events.

The payloads are the ones Claude Code sends (tests/claude_code/payloads.py);
they go through the real command (``python -m gitaudit claude-code-hook``, JSON
on stdin) to the spool and to a real daemon; the pure part
(:func:`events_from_payload`) is checked without I/O, and fuzzed.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitaudit import config, events
from gitaudit.claude import code_hook, ids
from gitaudit.jsonfast import loads
from gitaudit.pipeline import Pipeline
from tests.claude_code import payloads as p
from tests.daemon.daemon_harness import DaemonRun, Daemons, wait_for
from tests.gitfixtures import GitSandbox

GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
ANTHROPIC_KEY = "sk-ant-api03-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe_dc-ba"
HOOK = [sys.executable, "-m", "gitaudit", "claude-code-hook"]


def hook(sandbox: GitSandbox, payload: Any, *, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the hook command as Claude Code does: payload on stdin, from the project dir."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return subprocess.run(HOOK, input=data, cwd=cwd or sandbox.root, capture_output=True,
                          env=sandbox.environ(env), check=False, timeout=60)


def spooled(sandbox: GitSandbox, count: int) -> list[dict[str, Any]]:
    """The spooled events once there are ``count`` (a detached child delivers them)."""

    def enough() -> list[dict[str, Any]] | None:
        found = sandbox.events()
        return found if len(found) >= count else None

    found: list[dict[str, Any]] = wait_for(enough, f"{count} events spooled")
    return found


def quiet(result: subprocess.CompletedProcess[bytes]) -> None:
    """Exit 0, nothing on stdout, nothing on stderr."""
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def session_trail(cwd: str, command: str, prompt: str = "please commit") -> list[dict[str, Any]]:
    """Every hook payload of one session that ran one Bash command, in Claude Code's order."""
    return [
        p.session_start(cwd), p.prompt_submit(cwd, prompt), p.pre_tool_use(cwd, command),
        p.post_tool_use(cwd, command), p.post_tool_use_failure(cwd, "git push"),
        p.stop(cwd), p.session_end(cwd),
    ]


# --- ids --------------------------------------------------------------------------------------


@given(st.text(), st.text())
def test_anchor_ids_are_uuid5_of_the_documented_names(session: str, sub: str) -> None:
    namespace = uuid.UUID(ids.NAMESPACE)
    try:
        expected = uuid.uuid5(namespace, f"claude-code/prompt/{session}/{sub}")
    except UnicodeEncodeError:
        return  # uuid5 refuses lone surrogates; ids.py still names them (surrogatepass)
    assert ids.prompt_event_id(session, sub) == str(expected)
    assert ids.tool_use_event_id(session, sub) == str(
        uuid.uuid5(namespace, f"claude-code/tool_use/{session}/{sub}"))
    assert ids.session_event_id(session) == str(
        uuid.uuid5(namespace, f"claude-code/session/{session}/"))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_the_stdlib_free_json_reader_reads_what_json_reads(value: Any) -> None:
    text = json.dumps(value)
    assert loads(text) == json.loads(text)
    assert loads(f" \n{text}\t ") == json.loads(text)


@pytest.mark.parametrize("text", ["", "{", "NaN", "[1] 2", '{"a":1,}', "[Infinity]", "nul"])
def test_the_json_reader_refuses_what_is_not_one_json_value(text: str) -> None:
    with pytest.raises(ValueError):
        loads(text)


# --- the pure part: one payload, one event ------------------------------------------------------


def build(payload: Any, capture: bool = False, env: dict[str, str] | None = None
          ) -> list[dict[str, Any]]:
    settings_ = config.Settings({"capture_prompts": capture})
    return code_hook.events_from_payload(payload, env or {}, settings_,
                                         code_hook.Facts(now=1_700_000_000.0))


def only(payload: Any, **kwargs: Any) -> dict[str, Any]:
    found = build(payload, **kwargs)
    assert len(found) == 1
    events.validate_event(found[0])
    return found[0]


def test_every_hook_event_maps_to_its_claude_event_with_linked_ids() -> None:
    cwd = "/work/repo"
    anchor = ids.session_event_id(p.SESSION)
    prompt = ids.prompt_event_id(p.SESSION, p.PROMPT_ID)
    tool = ids.tool_use_event_id(p.SESSION, p.TOOL_USE_ID)
    start = only(p.session_start(cwd))
    assert (start["operation"], start["id"], start["parent_id"]) == ("claude.session", anchor, None)
    assert start["details"] | {"hook_event": "SessionStart", "phase": "start",
                               "start_source": "startup", "cwd": cwd} == start["details"]
    submitted = only(p.prompt_submit(cwd, "please commit"))
    assert (submitted["operation"], submitted["id"], submitted["parent_id"]) == (
        "claude.prompt", prompt, anchor)
    assert submitted["details"]["length"] == len("please commit")
    assert submitted["details"]["prompt_sha256"] == hashlib.sha256(b"please commit").hexdigest()
    assert "text" not in submitted["details"]
    assert build(p.pre_tool_use(cwd, "git status")) == []  # not installed, not recorded
    used = only(p.post_tool_use(cwd, "git commit -qm x"))
    assert (used["operation"], used["id"], used["parent_id"]) == ("claude.tool_use", tool, prompt)
    assert used["details"]["input"] == {"command": "git commit -qm x", "description": "run git"}
    assert used["details"] | {"tool": "Bash", "tool_use_id": p.TOOL_USE_ID, "phase": "result",
                              "success": True, "interrupted": False, "stdout_bytes": 20,
                              "stderr_bytes": 0, "permission_mode": "default"} == used["details"]
    assert used["duration_ms"] == 32.0
    assert used["occurred_at"] < build(p.stop(cwd))[0]["occurred_at"]  # when the tool started
    failed = only(p.post_tool_use_failure(cwd, "git push"))
    assert (failed["outcome"], failed["result"]["exit_code"]) == ("failure", 1)
    assert failed["details"]["success"] is False
    assert failed["result"]["error"] == "Bash failed (exit code 1)"  # not the tool's output
    assert "failed to push" not in json.dumps(failed)
    stopped = only(p.stop(cwd, "done"))
    assert (stopped["operation"], stopped["details"]["phase"], stopped["parent_id"]) == (
        "claude.prompt", "stop", prompt)
    assert stopped["details"]["response_length"] == 4
    assert stopped["id"] != prompt
    ended = only(p.session_end(cwd, "logout"))
    assert (ended["details"]["phase"], ended["details"]["end_reason"], ended["parent_id"]) == (
        "end", "logout", anchor)
    for event in (start, submitted, used, failed, stopped, ended):
        assert (event["source"], event["correlation_id"]) == ("claude_code", p.SESSION)


def test_a_resumed_session_points_at_its_start_instead_of_taking_its_id() -> None:
    resumed = only(p.session_start("/w", source="resume"))
    assert resumed["id"] != ids.session_event_id(p.SESSION)
    assert resumed["parent_id"] == ids.session_event_id(p.SESSION)
    assert resumed["details"]["start_source"] == "resume"


def test_prompt_text_only_with_capture_prompts() -> None:
    assert "text" not in only(p.prompt_submit("/w", "hello"))["details"]
    assert only(p.prompt_submit("/w", "hello"), capture=True)["details"]["text"] == "hello"
    assert only(p.stop("/w", "bye"), capture=True)["details"]["response_text"] == "bye"


@pytest.mark.parametrize(
    ("tool", "tool_input", "expected"),
    [
        ("Edit", {"file_path": "/w/a.py", "old_string": "é", "new_string": "abc"},
         {"file_path": "/w/a.py", "old_size": 2, "new_size": 3}),
        ("Write", {"file_path": "/w/b.txt", "content": "x" * 10},
         {"file_path": "/w/b.txt", "content_size": 10}),
        ("MultiEdit", {"file_path": "/w/c", "edits": [{"old_string": "a", "new_string": "bb"},
                                                      {"old_string": "c", "new_string": "d"}]},
         {"file_path": "/w/c", "edits": 2, "old_size": 2, "new_size": 3}),
        ("NotebookEdit", {"notebook_path": "/w/n.ipynb", "new_source": "print(1)",
                          "cell_id": "c1", "edit_mode": "replace"},
         {"file_path": "/w/n.ipynb", "new_size": 8, "cell_id": "c1", "edit_mode": "replace"}),
        ("Read", {"file_path": "/w/a.py", "limit": 10, "offset": None},
         {"file_path": "/w/a.py", "limit": 10, "offset": None}),
        ("mcp__x__y", {"query": "q" * 300, "nested": {"a": 1}, "items": [1, 2]},
         {"query": "q" * 256 + "…[300 bytes]", "nested": "[object: 1 keys]",
          "items": "[list: 2 items]"}),
    ],
)
def test_tool_inputs_keep_paths_and_sizes_never_contents(
    tool: str, tool_input: dict[str, Any], expected: dict[str, Any]
) -> None:
    event = only(p.post_tool_use_of("/w", tool, tool_input, {"ok": True}, "toolu_x"))
    assert event["details"]["input"] == expected
    assert event["details"]["response_bytes"] == len('{"ok":true}')
    assert event["category"] == ("read" if tool == "Read" else "update")


def test_edit_contents_are_kept_only_with_capture_prompts() -> None:
    payload = p.post_tool_use_of("/w", "Write", {"file_path": "/w/b", "content": "body"}, {},
                                 "toolu_w")
    assert only(payload, capture=True)["details"]["input"]["content"] == "body"
    assert "content" not in only(payload)["details"]["input"]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ([1, 2], "payload is a list, not a JSON object"),
        ({"hook_event_name": 5, "session_id": p.SESSION}, "hook_event_name is a number"),
        ({"hook_event_name": "PostToolUse", "session_id": p.SESSION, "tool_input": "x"},
         "tool_input is a string, not an object"),
        ({"hook_event_name": "UserPromptSubmit", "session_id": p.SESSION, "prompt": "x"},
         "no prompt_id"),
        ({"hook_event_name": "SessionStart"}, "no session_id"),
        ({"session_id": p.SESSION, "cwd": "/w"}, "no hook_event_name"),
    ],
)
def test_a_malformed_payload_is_recorded_with_what_could_be_read(payload: Any, problem: str
                                                                ) -> None:
    event = only(payload, env={"CLAUDE_CODE_SESSION_ID": "env-session"})
    assert event["details"]["malformed"] is True
    assert any(text.startswith(problem) for text in event["details"]["problems"])
    if isinstance(payload, dict) and "session_id" in payload:
        assert event["correlation_id"] == p.SESSION
    else:  # the session Claude Code names in the hook's environment
        assert event["correlation_id"] == "env-session"
        assert event["details"]["session_from_env"] is True


def test_deeply_nested_values_never_reach_the_event() -> None:
    deep: Any = "x"
    for _ in range(200):
        deep = [deep]
    payload = p.post_tool_use("/w", "git status")
    payload["tool_input"] = {"command": deep, "description": {"a": deep}}
    payload["tool_response"] = deep
    event = only(payload)
    assert event["details"]["input"] == {"command": "[list: 1 items]",
                                         "description": "[object: 1 keys]"}
    editing = p.post_tool_use_of("/w", "MultiEdit", {"file_path": "/w/a", "edits": [deep]},
                                 deep, "toolu_e")
    assert only(editing, capture=True)["details"]["input"]["edits_text"] == []


PAYLOAD_KEYS = ["session_id", "transcript_path", "cwd", "hook_event_name", "source", "reason",
                "prompt_id", "prompt", "permission_mode", "tool_name", "tool_input",
                "tool_response", "tool_use_id", "duration_ms", "error", "is_interrupt",
                "stop_hook_active", "last_assistant_message", "model"]
HOOK_NAMES = st.sampled_from([*code_hook.HOOK_EVENTS, "PreToolUse", "Notification"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from(PAYLOAD_KEYS), JSON | HOOK_NAMES, max_size=12)
       | JSON, st.booleans())
def test_no_payload_breaks_the_pure_part_and_every_event_is_storable(payload: Any,
                                                                      capture: bool) -> None:
    pipeline = Pipeline(config.Settings({"capture_prompts": capture}))
    for event in build(payload, capture=capture):
        events.validate_event(pipeline.sanitize(event))


# --- the command, to the spool -------------------------------------------------------------------


def test_a_session_through_the_hook_command_lands_in_the_spool(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    for payload in session_trail(str(repo), "git commit -qm change && git push origin main"):
        quiet(hook(sandbox, payload, cwd=repo))
    trail = spooled(sandbox, 6)
    # as a set: a tool call is dated at its start (the hook's time less its duration_ms),
    # which these back-to-back payloads may put before the prompt's own hook run
    assert sorted((e["operation"], e["details"].get("phase")) for e in trail) == sorted([
        ("claude.session", "start"), ("claude.prompt", "submit"), ("claude.tool_use", "result"),
        ("claude.tool_use", "result"), ("claude.prompt", "stop"), ("claude.session", "end"),
    ])
    for event in trail:
        events.validate_event(event)
        assert event["correlation_id"] == p.SESSION
        assert event["repo"]["path"] == str(repo.resolve())
        assert event["repo"]["branch"] == "main"
        assert event["actor"]["git_email"] == "carl@example.com"  # the committer env wins
        assert event["actor"]["uid"] is not None
    by_id = {event["id"]: event for event in trail}
    assert all(e["parent_id"] is None or e["parent_id"] in by_id for e in trail)


def test_secrets_in_a_prompt_and_a_command_land_nowhere_in_clear(
    sandbox: GitSandbox, daemons: Daemons, tmp_path: Path
) -> None:
    repo = sandbox.repo()
    prompt = f"push with token {GITHUB_TOKEN} please"
    command = f"ANTHROPIC_API_KEY={ANTHROPIC_KEY} git push https://x:{GITHUB_TOKEN}@h/r main"
    trail = session_trail(str(repo), command, prompt)
    for payload in trail:  # to the spool, text capture on: the sanitizer still redacts
        quiet(hook(sandbox, payload, cwd=repo, env={"GITAUDIT_CAPTURE_PROMPTS": "true"}))
    submitted = next(e for e in spooled(sandbox, 6) if e["operation"] == "claude.prompt"
                     and e["details"]["phase"] == "submit")
    assert "[REDACTED:github-token]" in submitted["details"]["text"]
    run = daemons().start()
    daemon_env = {"GITAUDIT_RUNTIME_DIR": str(run.runtime), "GITAUDIT_CAPTURE_PROMPTS": "true",
                  "GITAUDIT_SOCKET_TIMEOUT": "30"}
    for payload in trail:
        quiet(hook(sandbox, payload, cwd=repo, env=daemon_env))
    stored = stored_session(run, 6)
    used = next(e for e in stored if e["id"] == ids.tool_use_event_id(p.SESSION, p.TOOL_USE_ID))
    assert "[REDACTED:anthropic-key]" in used["details"]["input"]["command"]
    run.stop()
    for folder in (sandbox.root, run.root):
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert GITHUB_TOKEN.encode() not in data, path
                assert ANTHROPIC_KEY.encode() not in data, path


def stored_session(run: DaemonRun, count: int) -> list[dict[str, Any]]:
    """The session's events once ``count`` of them are in the daemon's store."""

    def enough() -> list[dict[str, Any]] | None:
        found = [event for event in run.stored() if event["correlation_id"] == p.SESSION]
        return found if len(found) >= count else None

    found: list[dict[str, Any]] = wait_for(enough, f"{count} events of the session stored")
    return found


def test_the_hook_delivers_to_a_running_daemon(sandbox: GitSandbox, daemons: Daemons) -> None:
    repo = sandbox.repo()
    run = daemons().start()
    # a busy machine must not make the client give up on the daemon and spool instead
    env = {"GITAUDIT_RUNTIME_DIR": str(run.runtime), "GITAUDIT_SOCKET_TIMEOUT": "30"}
    for payload in session_trail(str(repo), "git status"):
        quiet(hook(sandbox, payload, cwd=repo, env=env))
    mine = stored_session(run, 6)
    assert all(event["source"] == "claude_code" for event in mine)
    assert all(event["actor"]["verified"] for event in mine)  # the daemon vouched for the uid
    assert not sandbox.spool.exists()  # nothing had to be spooled


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"{not json", "payload is not JSON"),
        (b'{"session_id": "s1", "hook_event_name": "UserPromptSubmit", "prompt": 12}',
         "prompt is a number"),
        (b"\xff\xfe{}", "payload is not UTF-8"),
        (b"[]", "payload is a list"),
    ],
)
def test_a_broken_payload_exits_0_says_one_line_and_is_still_recorded(
    sandbox: GitSandbox, data: bytes, problem: str
) -> None:
    result = hook(sandbox, data)
    assert (result.returncode, result.stdout) == (0, b"")
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gitaudit: Claude Code hook payload: "), lines
    assert problem in lines[0] and "Traceback" not in lines[0]
    event = spooled(sandbox, 1)[0]
    assert event["details"]["malformed"] is True
    assert event["operation"] in {"claude.session", "claude.prompt"}


def test_an_unparsable_payload_keeps_the_ids_it_can_find(sandbox: GitSandbox) -> None:
    data = json.dumps(p.post_tool_use("/w", "git push")).encode()[:-1]  # cut short
    assert hook(sandbox, data).returncode == 0
    event = spooled(sandbox, 1)[0]
    assert (event["operation"], event["details"]["tool_use_id"]) == ("claude.tool_use",
                                                                     p.TOOL_USE_ID)
    assert event["id"] == ids.tool_use_event_id(p.SESSION, p.TOOL_USE_ID)


def test_an_oversized_payload_is_cut_hashed_and_still_recorded(sandbox: GitSandbox) -> None:
    payload = p.post_tool_use("/w", "cat big", stdout="x" * (3 * 1024 * 1024))
    data = json.dumps(payload).encode()
    result = hook(sandbox, data)
    assert (result.returncode, result.stdout) == (0, b"")
    event = spooled(sandbox, 1)[0]
    assert event["id"] == ids.tool_use_event_id(p.SESSION, p.TOOL_USE_ID)  # id from the tail
    assert event["details"]["truncated"] == [{
        "field": "stdin", "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }]
    assert event["details"]["malformed"] is True


def test_a_payload_that_never_ends_is_recorded_after_the_read_timeout(
    sandbox: GitSandbox,
) -> None:
    data = json.dumps(p.session_start("/w")).encode()
    process = subprocess.Popen(HOOK, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=sandbox.environ(), cwd=sandbox.root)
    assert process.stdin is not None
    process.stdin.write(data)
    process.stdin.flush()  # and never closed: the writer hangs
    try:
        process.wait(timeout=120)  # not communicate(): it would close stdin
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    finally:
        process.stdin.close()
    assert process.stdout is not None
    out = process.stdout.read()
    process.stdout.close()
    if process.stderr is not None:
        process.stderr.close()
    event = spooled(sandbox, 1)[0]
    assert (process.returncode, out) == (0, b"")
    assert event["details"]["problems"] == ["payload incomplete (stdin not closed in time)"]
    assert event["id"] == ids.session_event_id(p.SESSION)  # what came was read


def test_no_payload_records_nothing_and_says_so(sandbox: GitSandbox) -> None:
    result = hook(sandbox, b"")
    assert (result.returncode, result.stdout) == (0, b"")
    assert result.stderr.decode().startswith("gitaudit: no Claude Code hook payload")
    assert sandbox.events() == []


def test_an_unwritable_spool_and_broken_settings_still_exit_0(sandbox: GitSandbox) -> None:
    blocker = sandbox.root / "file"
    blocker.write_text("")
    result = hook(sandbox, p.session_start("/w"), env={
        "GITAUDIT_SPOOL_DIR": str(blocker / "spool"), "GITAUDIT_LEVEL": "nonsense"})
    assert (result.returncode, result.stdout) == (0, b"")
    assert len(result.stderr.decode().splitlines()) == 1
    assert "Traceback" not in result.stderr.decode()


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.function_scoped_fixture],
          deadline=None)
@given(st.binary(max_size=300) | JSON.map(lambda value: json.dumps(value).encode()))
def test_fuzzed_stdin_never_breaks_the_entry_and_a_canary_still_lands(
    tmp_path: Path, data: bytes
) -> None:
    spool = tmp_path / "spool"
    settings_ = config.Settings({"spool_dir": str(spool), "runtime_dir": str(tmp_path / "run"),
                                 "hook_detach": "never"})  # no fork inside pytest
    stdin = code_hook.Stdin(data, len(data))
    code_hook.record(stdin, {}, settings_)  # must not raise
    canary = json.dumps(p.session_start("/w", session="canary")).encode()
    assert code_hook.record(code_hook.Stdin(canary, len(canary)), {}, settings_) == []
    lines = (spool / "active.jsonl").read_text().splitlines()
    for line in lines:
        events.validate_event(json.loads(line))
    assert json.loads(lines[-1])["correlation_id"] == "canary"


@settings(max_examples=15, suppress_health_check=[HealthCheck.too_slow,
                                                  HealthCheck.function_scoped_fixture],
          deadline=None)
@given(st.binary(max_size=200)
       | st.dictionaries(st.sampled_from(PAYLOAD_KEYS), JSON | HOOK_NAMES, max_size=8).map(
           lambda value: json.dumps(value).encode()))
def test_fuzzed_payloads_through_the_command_exit_0_quietly(sandbox: GitSandbox,
                                                            data: bytes) -> None:
    result = hook(sandbox, data, env={"GITAUDIT_HOOK_DETACH": "never"})
    assert (result.returncode, result.stdout) == (0, b"")
    assert len(result.stderr.splitlines()) <= 1
    assert b"Traceback" not in result.stderr
    canary = p.session_start("/w", session=f"canary-{len(sandbox.events())}")
    quiet(hook(sandbox, canary, env={"GITAUDIT_HOOK_DETACH": "never"}))
    assert sandbox.events()[-1]["correlation_id"] == canary["session_id"]


def test_nul_characters_in_a_payload_are_replaced_and_the_event_is_storable() -> None:
    # found by the fuzz above: a NUL in a key of tool_input (or in any string) made the
    # event unstorable; it is recorded, the NUL shown as U+FFFD and the payload malformed
    payload = {**p.post_tool_use("/tmp", "ls"), "session_id": "s\x00",
               "tool_name": "mcp__x", "tool_input": {"a\x00b": "x\x00y"}}
    pipeline = Pipeline(config.Settings({}))
    [event] = build(payload)
    events.validate_event(pipeline.sanitize(event))
    assert event["details"]["input"] == {"a\ufffdb": "x\ufffdy"}
    assert event["details"]["malformed"] is True
    assert "NUL characters replaced by U+FFFD" in event["details"]["problems"]


def test_a_duration_longer_than_the_clock_dates_the_call_at_the_hook() -> None:
    # found by the fuzz: duration_ms beyond the epoch put occurred_at before 1970
    payload = {**p.post_tool_use("/tmp", "ls"), "duration_ms": 1_700_000_000_001.0}
    [event] = build(payload)
    events.validate_event(Pipeline(config.Settings({})).sanitize(event))
    assert event["occurred_at"].startswith("2023-11-14T22:13:20")  # Facts(now=1.7e9)
    assert event["duration_ms"] == 1_700_000_000_001.0
