"""`gitaudit claude-code install|uninstall|status` against real settings files.

The commands run as a user runs them (the console script, a subprocess) in a sandbox
HOME; one test drives the real Claude Code CLI against a fake API with a settings file
holding another tool's hooks and ours, and checks that both ran.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gitaudit.claude import settings_install as cc
from tests.claude_code.cli import (
    FakeClaudeAPI,
    OTLPCollector,
    claude_binary,
    claude_env,
    run_claude,
)
from tests.gitfixtures import GitSandbox, gitaudit_command

OURS = cc.hook_command(sys.executable)

# Another tool's hooks and settings, written by hand: tabs, a key order of its own.
FOREIGN = """{
\t"model": "opus",
\t"permissions": {"allow": ["Bash(npm test)"]},
\t"hooks": {
\t\t"PostToolUse": [
\t\t\t{"matcher": "Edit|Write", "hooks": [{"type": "command", "command": "prettier --write"}]}
\t\t],
\t\t"PreToolUse": [
\t\t\t{"matcher": "Bash", "hooks": [{"type": "command", "command": "guard.sh"}]}
\t\t]
\t},
\t"env": {"FOO": "bar"}
}
"""


@pytest.fixture
def sandbox(tmp_path: Path) -> GitSandbox:
    """An isolated HOME (and config, spool) for gitaudit and Claude Code."""
    return GitSandbox(tmp_path)


def gitaudit(sandbox: GitSandbox, *args: str, code: int = 0,
             **env: str) -> subprocess.CompletedProcess[str]:
    """``gitaudit ARGS`` in the sandbox; the exit code must be ``code``."""
    result = subprocess.run([*gitaudit_command(), *args], cwd=sandbox.root,
                            env=sandbox.environ(env), capture_output=True, text=True,
                            check=False)
    assert result.returncode == code, (result.stdout, result.stderr)
    return result


def settings(sandbox: GitSandbox) -> Path:
    return sandbox.home / ".claude" / "settings.json"


def write(path: Path, data: bytes | str, mode: int = 0o644) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    path.write_bytes(raw)
    path.chmod(mode)
    return raw


def ours_by_event(path: Path) -> dict[str, list[dict[str, Any]]]:
    return cc.find_ours(json.loads(path.read_bytes()))


def leftovers(path: Path) -> list[str]:
    return sorted(entry.name for entry in path.parent.iterdir()
                  if entry.name.startswith(path.name + ".") or entry.name.startswith("."))


# --- none, empty, invalid ------------------------------------------------------------------


def test_no_file_is_created_and_removed_again_with_its_directory(sandbox: GitSandbox) -> None:
    path = settings(sandbox)
    out = gitaudit(sandbox, "claude-code", "install").stdout
    document = json.loads(path.read_bytes())
    assert list(document) == ["hooks"]
    assert list(document["hooks"]) == list(cc.HOOK_EVENTS)
    for event, groups in document["hooks"].items():
        expected = {"hooks": [{"type": "command", "command": OURS, "timeout": 10}]}
        if event in {"SessionStart", "PostToolUse", "PostToolUseFailure", "SessionEnd"}:
            expected = {"matcher": "*", **expected}
        assert groups == [expected]
    assert path.read_text().startswith('{\n  "hooks": {\n')  # Claude Code's own layout
    assert "PostToolUseFailure" in out and "added" in out and OURS in out
    gitaudit(sandbox, "claude-code", "uninstall")
    assert not path.parent.exists()  # ~/.claude was created by the install: gone again
    assert sandbox.home.exists()


def test_empty_file_gets_the_hooks_and_comes_back_empty(sandbox: GitSandbox) -> None:
    path = settings(sandbox)
    write(path, b"", 0o600)
    gitaudit(sandbox, "claude-code", "install")
    assert set(ours_by_event(path)) == set(cc.HOOK_EVENTS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    gitaudit(sandbox, "claude-code", "uninstall")
    assert path.read_bytes() == b""
    assert leftovers(path) == []


@pytest.mark.parametrize(
    ("content", "where", "what"),
    [
        ('{\n  "model": "opus",\n  "hooks": {\n    "Stop": [}\n  }\n}\n', "line 4, column 14",
         "not valid JSON"),
        ('{\n  "model": "opus",\n}\n', "line 3, column 1", "not valid JSON"),
        ('[\n  {"hooks": {}}\n]\n', "line 1, column 1", "the top level is an array"),
        ('{\n  "hooks": [\n    {"Stop": []}\n  ]\n}\n', "line 2, column 12",
         '"hooks" is an array'),
        ('{\n  "hooks": {\n    "Stop": {"hooks": []}\n  }\n}\n', "line 3, column 13",
         '"hooks.Stop" is an object'),
        ('{"hooks": {"Stop": [],\n "PostToolUse": [{"matcher": "*",\n'
         '   "hooks": ["echo"]}]}}', "line 3, column 14",
         '"hooks.PostToolUse[0].hooks[0]" is a string'),
        ('{\n  "env": ["A=1"]\n}\n', "line 2, column 10", '"env" is an array'),
    ],
    ids=["broken", "trailing-comma", "array", "hooks-array", "event-object", "entry-string",
         "env-array"],
)
def test_unusable_file_is_refused_unchanged_with_line_and_column(
        sandbox: GitSandbox, content: str, where: str, what: str) -> None:
    path = settings(sandbox)
    raw = write(path, content)
    before = path.stat().st_mtime_ns
    for command in (["install"], ["install", "--telemetry"], ["uninstall"]):
        result = gitaudit(sandbox, "claude-code", *command, code=2,
                          GITAUDIT_OTLP_ADDRESS="127.0.0.1:4318")
        assert f"{path}: {where}: " in result.stderr
        assert what in result.stderr and "nothing was changed" in result.stderr
        assert "hint:" in result.stderr and "Traceback" not in result.stderr
    assert path.read_bytes() == raw
    assert path.stat().st_mtime_ns == before
    assert leftovers(path) == []


def test_status_reports_an_unusable_file(sandbox: GitSandbox) -> None:
    path = settings(sandbox)
    write(path, "{ nope")
    info = json.loads(gitaudit(sandbox, "claude-code", "status", "--format", "json").stdout)
    entry = info["files"][0]
    assert entry["state"] == "invalid"
    assert "line 1, column 3" in entry["error"]


# --- other tools' hooks, twice, uninstall --------------------------------------------------


def test_other_hooks_and_settings_are_kept_in_place(sandbox: GitSandbox) -> None:
    path = settings(sandbox)
    write(path, FOREIGN)
    original = json.loads(FOREIGN)
    gitaudit(sandbox, "claude-code", "install")
    text = path.read_text()
    document = json.loads(text)
    assert list(document) == ["model", "permissions", "hooks", "env"]  # key order kept
    assert text.startswith('{\n\t"model": "opus",\n\t"permissions": {\n\t\t"allow"')  # tabs
    assert document["model"] == "opus" and document["env"] == {"FOO": "bar"}
    assert document["permissions"] == original["permissions"]
    hooks = document["hooks"]
    assert hooks["PreToolUse"] == original["hooks"]["PreToolUse"]  # not ours to touch
    assert hooks["PostToolUse"][0] == original["hooks"]["PostToolUse"][0]  # first, unchanged
    assert hooks["PostToolUse"][1]["hooks"][0]["command"] == OURS
    assert list(hooks)[:2] == ["PostToolUse", "PreToolUse"]
    assert set(ours_by_event(path)) == set(cc.HOOK_EVENTS)


def test_install_twice_changes_nothing(sandbox: GitSandbox) -> None:
    path = settings(sandbox)
    write(path, FOREIGN)
    gitaudit(sandbox, "claude-code", "install")
    once = path.read_bytes()
    state = (path.parent / (path.name + cc.STATE_SUFFIX)).read_bytes()
    stamp = path.stat().st_mtime_ns
    out = gitaudit(sandbox, "claude-code", "install").stdout
    assert path.read_bytes() == once and path.stat().st_mtime_ns == stamp
    assert (path.parent / (path.name + cc.STATE_SUFFIX)).read_bytes() == state
    assert out.count("already installed") == len(cc.HOOK_EVENTS)
    assert all(len(entries) == 1 for entries in ours_by_event(path).values())
    gitaudit(sandbox, "claude-code", "uninstall")
    assert path.read_text() == FOREIGN


@pytest.mark.parametrize(
    "content",
    [FOREIGN, '{"model":"opus","hooks":{}}', FOREIGN.replace("\n", "\r\n"),
     '{\n    "hooks": {\n        "Stop": []\n    },\n    "x": "\\u00e9t\\u00e9"\n}'],
    ids=["tabs", "compact", "crlf", "escapes-no-final-newline"],
)
def test_uninstall_restores_the_bytes_and_mode(sandbox: GitSandbox, content: str) -> None:
    path = settings(sandbox)
    raw = write(path, content, 0o640)
    gitaudit(sandbox, "claude-code", "install")
    assert path.read_bytes() != raw
    backup = path.parent / (path.name + cc.BACKUP_SUFFIX)
    assert backup.read_bytes() == raw
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    out = gitaudit(sandbox, "claude-code", "uninstall").stdout
    assert "byte for byte" in out
    assert path.read_bytes() == raw
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert leftovers(path) == []
    out = gitaudit(sandbox, "claude-code", "uninstall").stdout  # again: nothing to do
    assert "nothing of gitaudit's there" in out and path.read_bytes() == raw


def test_user_edits_in_between_are_kept(sandbox: GitSandbox) -> None:
    path = settings(sandbox)
    write(path, FOREIGN)
    gitaudit(sandbox, "claude-code", "install")
    document = json.loads(path.read_bytes())
    document["theme"] = "dark"
    document["hooks"]["PostToolUse"].append(
        {"matcher": "Bash", "hooks": [{"type": "command", "command": "audit-bash"}]})
    document["hooks"]["Stop"][0]["hooks"].append({"type": "command", "command": "notify"})
    path.write_text(json.dumps(document, indent=2))
    out = gitaudit(sandbox, "claude-code", "uninstall").stdout
    assert "gitaudit's entries removed, the rest kept" in out
    after = json.loads(path.read_bytes())
    assert cc.find_ours(after) == {}
    expected = json.loads(FOREIGN)
    expected["theme"] = "dark"
    expected["hooks"]["PostToolUse"].append(
        {"matcher": "Bash", "hooks": [{"type": "command", "command": "audit-bash"}]})
    expected["hooks"]["Stop"] = [{"hooks": [{"type": "command", "command": "notify"}]}]
    assert after == expected
    assert list(after) == ["model", "permissions", "hooks", "env", "theme"]
    assert leftovers(path) == []


def test_reinstall_after_an_edit_restores_the_edited_file(sandbox: GitSandbox) -> None:
    """The user removed gitaudit's entries by hand and edited; installing again keeps that
    edited file (not the first original) as what uninstall restores."""
    path = settings(sandbox)
    write(path, FOREIGN)
    gitaudit(sandbox, "claude-code", "install")
    edited = write(path, FOREIGN.replace('"opus"', '"sonnet"'))
    gitaudit(sandbox, "claude-code", "install")
    gitaudit(sandbox, "claude-code", "uninstall")
    assert path.read_bytes() == edited


def test_an_outdated_interpreter_is_replaced_in_place(sandbox: GitSandbox) -> None:
    path = settings(sandbox)
    old = cc.hook_command("/gone/python3")
    document = json.loads(FOREIGN)
    document["hooks"]["PostToolUse"][0]["hooks"].append({"type": "command", "command": old})
    write(path, json.dumps(document, indent=2))
    out = gitaudit(sandbox, "claude-code", "install").stdout
    assert "updated" in out
    after = json.loads(path.read_bytes())
    group = after["hooks"]["PostToolUse"][0]
    assert group["matcher"] == "Edit|Write"
    assert [entry["command"] for entry in group["hooks"]] == ["prettier --write", OURS]
    assert len(after["hooks"]["PostToolUse"]) == 1


def test_a_file_that_already_held_our_hook_is_never_restored_with_it(
        sandbox: GitSandbox) -> None:
    """Copied from another machine (or its state file lost): there is no original without
    gitaudit's entries to go back to, so uninstall removes them from what is there."""
    path = settings(sandbox)
    document = json.loads(FOREIGN)
    document["hooks"]["Stop"] = [{"hooks": [{"type": "command",
                                             "command": cc.hook_command("/gone/python3")}]}]
    write(path, json.dumps(document, indent=2))
    gitaudit(sandbox, "claude-code", "install")
    assert not (path.parent / (path.name + cc.BACKUP_SUFFIX)).exists()
    gitaudit(sandbox, "claude-code", "uninstall")
    assert json.loads(path.read_bytes()) == json.loads(FOREIGN)


def test_a_lost_backup_falls_back_to_removing_our_entries(sandbox: GitSandbox) -> None:
    path = settings(sandbox)
    write(path, FOREIGN)
    gitaudit(sandbox, "claude-code", "install")
    (path.parent / (path.name + cc.BACKUP_SUFFIX)).unlink()
    gitaudit(sandbox, "claude-code", "uninstall")
    assert json.loads(path.read_bytes()) == json.loads(FOREIGN)
    assert leftovers(path) == []


def test_a_symlinked_settings_file_stays_a_link(sandbox: GitSandbox) -> None:
    dotfiles = sandbox.root / "dotfiles" / "claude-settings.json"
    raw = write(dotfiles, FOREIGN)
    path = settings(sandbox)
    path.parent.mkdir(parents=True)
    path.symlink_to(dotfiles)
    gitaudit(sandbox, "claude-code", "install")
    assert path.is_symlink() and set(ours_by_event(dotfiles)) == set(cc.HOOK_EVENTS)
    gitaudit(sandbox, "claude-code", "uninstall")
    assert path.is_symlink() and dotfiles.read_bytes() == raw
    assert leftovers(dotfiles) == []


def test_project_scope_and_status(sandbox: GitSandbox) -> None:
    repo = sandbox.repo("work")
    path = repo / ".claude" / "settings.json"
    out = gitaudit(sandbox, "claude-code", "install", "--project", str(repo)).stdout
    assert f"(project): {path}" in out and "usually committed" in out
    assert not settings(sandbox).exists()
    assert set(ours_by_event(path)) == set(cc.HOOK_EVENTS)
    result = subprocess.run([*gitaudit_command(), "claude-code", "status", "--format", "json"],
                            cwd=repo / ".git", env=sandbox.environ(), capture_output=True,
                            text=True, check=True)  # inside the repository: its project too
    files = json.loads(result.stdout)["files"]
    assert [(entry["scope"], entry["path"], entry["state"]) for entry in files] == [
        ("user", str(settings(sandbox)), "not-installed"), ("project", str(path), "installed")]
    gitaudit(sandbox, "claude-code", "uninstall", "--project", str(repo))
    assert not (repo / ".claude").exists()
    result = gitaudit(sandbox, "claude-code", "install", "--user", "--project", str(repo),
                      code=2)
    assert "either --user or --project" in result.stderr
    result = gitaudit(sandbox, "claude-code", "install", "--project", str(repo / "nope"), code=2)
    assert "is not a directory" in result.stderr


def test_status_json(sandbox: GitSandbox) -> None:
    path = settings(sandbox)
    write(path, FOREIGN)
    gitaudit(sandbox, "claude-code", "install", "--telemetry",
             GITAUDIT_OTLP_ADDRESS="127.0.0.1:4318")
    document = json.loads(path.read_bytes())
    gone = cc.hook_command("/gone/python3")
    document["hooks"]["Stop"][0]["hooks"][0]["command"] = gone
    del document["hooks"]["SessionEnd"]
    path.write_text(json.dumps(document))
    info = json.loads(gitaudit(sandbox, "claude-code", "status", "--format", "json",
                               GITAUDIT_OTLP_ADDRESS="127.0.0.1:4318").stdout)
    assert info["hook_command"] == OURS and info["otlp_address"] == "127.0.0.1:4318"
    [entry] = info["files"]  # the sandbox root is no repository: the user file only
    assert entry["scope"] == "user" and entry["path"] == str(path)
    assert entry["exists"] is True and entry["error"] is None
    assert entry["state"] == "partial" and entry["missing"] == ["SessionEnd"]
    assert entry["events"]["SessionStart"] == {
        "command": OURS, "interpreter": sys.executable, "interpreter_exists": True,
        "current": True}
    assert entry["events"]["Stop"] == {
        "command": gone, "interpreter": "/gone/python3", "interpreter_exists": False,
        "current": False}
    assert entry["telemetry"]["set"] is True and entry["telemetry"]["points_at_gitaudit"]
    assert entry["telemetry"]["env"]["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"] == (
        "http://127.0.0.1:4318/v1/logs")
    table = gitaudit(sandbox, "claude-code", "status").stdout
    assert "/gone/python3 does not exist" in table and "repair: gitaudit claude-code install" \
        in table


# --- telemetry -----------------------------------------------------------------------------


def test_telemetry_env_is_written_and_removed_exactly(sandbox: GitSandbox) -> None:
    path = settings(sandbox)
    write(path, FOREIGN)
    out = gitaudit(sandbox, "claude-code", "install", "--telemetry", "--otlp-protocol",
                   "http/json", GITAUDIT_OTLP_ADDRESS="127.0.0.1:4318").stdout
    assert "in the settings' env block" in out
    env = json.loads(path.read_bytes())["env"]
    assert env == {
        "FOO": "bar",
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/json",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://127.0.0.1:4318/v1/logs",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORT_INTERVAL": "1000",
    }
    # The receiver moved: installing again changes the endpoint gitaudit wrote.
    gitaudit(sandbox, "claude-code", "install", "--telemetry", "--otlp-protocol", "http/json",
             GITAUDIT_OTLP_ADDRESS="127.0.0.1:4319")
    document = json.loads(path.read_bytes())
    assert document["env"]["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"] == "http://127.0.0.1:4319/v1/logs"
    # The user changes one value gitaudit added and adds one of their own: both stay.
    document["env"]["OTEL_LOGS_EXPORT_INTERVAL"] = "5000"
    document["env"]["BAR"] = "baz"
    path.write_text(json.dumps(document, indent="\t"))
    gitaudit(sandbox, "claude-code", "uninstall")
    after = json.loads(path.read_bytes())
    assert after["env"] == {"FOO": "bar", "OTEL_LOGS_EXPORT_INTERVAL": "5000", "BAR": "baz"}
    assert cc.find_ours(after) == {}


def test_telemetry_refuses_to_replace_the_users_exporter(sandbox: GitSandbox) -> None:
    path = settings(sandbox)
    document = json.loads(FOREIGN)
    document["env"].update(OTEL_EXPORTER_OTLP_LOGS_ENDPOINT="https://collector:4318/v1/logs",
                           OTEL_METRICS_EXPORTER="otlp", OTEL_LOGS_EXPORTER="console,otlp")
    raw = write(path, json.dumps(document, indent=2))
    result = gitaudit(sandbox, "claude-code", "install", "--telemetry", code=2,
                      GITAUDIT_OTLP_ADDRESS="127.0.0.1:4318")
    assert "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=https://collector:4318/v1/logs" in result.stderr
    assert "OTEL_METRICS_EXPORTER" not in result.stderr  # the user's own choice: kept
    assert "OTEL_LOGS_EXPORTER" not in result.stderr  # otlp is among its exporters
    assert path.read_bytes() == raw and leftovers(path) == []


def test_telemetry_needs_the_receiver_address(sandbox: GitSandbox) -> None:
    path = settings(sandbox)
    raw = write(path, FOREIGN)
    result = gitaudit(sandbox, "claude-code", "install", "--telemetry", code=2)
    assert "GITAUDIT_OTLP_ADDRESS is not set" in result.stderr
    assert path.read_bytes() == raw and leftovers(path) == []
    out = gitaudit(sandbox, "claude-code", "install").stdout  # without: printed, with a note
    assert "GITAUDIT_OTLP_ADDRESS is not set" in out
    assert "export OTEL_EXPORTER_OTLP_LOGS_ENDPOINT='http://<GITAUDIT_OTLP_ADDRESS>/v1/logs'" \
        in out
    out = gitaudit(sandbox, "claude-code", "install", GITAUDIT_OTLP_ADDRESS="0.0.0.0:4318").stdout
    for line in ("export CLAUDE_CODE_ENABLE_TELEMETRY=1", "export OTEL_LOGS_EXPORTER=otlp",
                 "export OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/protobuf",
                 "export OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=http://127.0.0.1:4318/v1/logs",
                 "export OTEL_METRICS_EXPORTER=none", "export OTEL_LOGS_EXPORT_INTERVAL=1000"):
        assert line in out
    assert "env" not in json.loads(path.read_bytes()) or json.loads(
        path.read_bytes())["env"] == {"FOO": "bar"}


# --- pure ----------------------------------------------------------------------------------


def test_locate_finds_values_by_key_path() -> None:
    text = '{"a": [1, {"b": 2}], "c": {"d": [true, "x", null]}, "a": {"e": 3}}'
    assert text[cc.locate(text, ["c", "d", 2]):].startswith("null")
    assert text[cc.locate(text, ["a", "e"]):].startswith("3}")  # the last "a" counts
    assert text[cc.locate(text, ["c"]):].startswith('{"d"')
    assert cc.locate(text, []) == 0


def test_add_and_remove_are_inverse_on_parsed_settings() -> None:
    document = json.loads(FOREIGN)
    before = json.loads(FOREIGN)
    assert set(cc.add_hooks(document, OURS).values()) == {cc.ADDED}
    assert set(cc.add_hooks(document, OURS).values()) == {cc.UNCHANGED}
    assert cc.remove_hooks(document) == dict.fromkeys(cc.HOOK_EVENTS, cc.REMOVED)
    assert document == before


# --- the real Claude Code CLI --------------------------------------------------------------


def test_real_claude_code_runs_the_other_tools_hooks_and_ours(sandbox: GitSandbox) -> None:
    """Claude Code 2.x, driven with -p against a fake API that has it run two Bash commands
    (one fails): another tool's hooks and gitaudit's entry all run, for every event.

    gitaudit's entry runs a stand-in interpreter that notes each event it is given (the
    hook entry point itself is cc-hooks' part; the next test runs it when it is there).
    """
    binary = claude_binary()
    path = settings(sandbox)
    foreign_log, ours_log = sandbox.root / "foreign.log", sandbox.root / "ours.log"
    document: dict[str, Any] = {"permissions": {"allow": ["Bash(true)"]}, "hooks": {}}
    for event in cc.HOOK_EVENTS:
        entry = {"type": "command", "command": f"cat >/dev/null; echo {event} >> {foreign_log}"}
        document["hooks"][event] = [{"matcher": "*", "hooks": [entry]}]
    write(path, json.dumps(document, indent=2) + "\n")
    standin = sandbox.root / "bin" / "python"
    write(standin, f"""#!/bin/sh
test "$1 $2 $3" = "-I -S -c" || exit 1
case $4 in *"gitaudit claude-code-hook"*) ;; *) exit 1;; esac
exec {sys.executable} -c 'import json, sys; print(json.load(sys.stdin)["hook_event_name"])' \\
  >> {ours_log}
""", 0o755)
    cc.install(cc.user_target(sandbox.environ()), cc.hook_command(str(standin)))
    repo = sandbox.repo("work")
    with FakeClaudeAPI("echo from-the-agent", "exit 3") as api:
        result = run_claude(binary, repo, claude_env(sandbox.home, api.url, sandbox.environ()),
                            "say hello")
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
    assert api.tool_uses == 2
    expected = ["SessionStart", "UserPromptSubmit", "PostToolUse", "PostToolUseFailure", "Stop",
                "SessionEnd"]
    assert foreign_log.read_text().split() == expected
    assert ours_log.read_text().split() == expected


def test_real_claude_code_records_through_the_installed_hook(sandbox: GitSandbox) -> None:
    """`gitaudit claude-code install` as a user runs it, then a session: its events are on
    record under the session's id (needs the hook entry point, cc-hooks' part)."""
    pytest.importorskip("gitaudit.claude.code_hook",
                        reason="the hook entry point is not there yet (cc-hooks' part)")
    binary = claude_binary()
    path = settings(sandbox)
    ran = sandbox.root / "foreign.log"
    raw = write(path, json.dumps({"hooks": {"Stop": [{"hooks": [
        {"type": "command", "command": f"cat >/dev/null; echo Stop >> {ran}"}]}]}}))
    gitaudit(sandbox, "claude-code", "install")
    repo = sandbox.repo("work")
    with FakeClaudeAPI("echo from-the-agent") as api:
        result = run_claude(binary, repo, claude_env(sandbox.home, api.url, sandbox.environ()),
                            "say hello")
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
    session = json.loads(result.stdout)["session_id"]
    assert ran.read_text().split() == ["Stop"]
    assert session in {event.get("correlation_id") for event in sandbox.events()}
    gitaudit(sandbox, "claude-code", "uninstall")
    assert cc.find_ours(json.loads(path.read_bytes())) == {}
    assert path.read_bytes() == raw or json.loads(path.read_bytes()) == json.loads(raw)


def test_real_claude_code_exports_to_the_telemetry_endpoint(sandbox: GitSandbox) -> None:
    """With --telemetry, Claude Code itself (no variable in its environment) sends its log
    events to GITAUDIT_OTLP_ADDRESS, protobuf-encoded, tagged with its session id."""
    binary = claude_binary()
    with OTLPCollector() as collector, FakeClaudeAPI("echo from-the-agent") as api:
        gitaudit(sandbox, "claude-code", "install", "--telemetry",
                 GITAUDIT_OTLP_ADDRESS=collector.address)
        env = claude_env(sandbox.home, api.url, sandbox.environ())
        assert not any(name.startswith("OTEL_") for name in env)
        result = run_claude(binary, sandbox.root, env, "hi")
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
    session = json.loads(result.stdout)["session_id"]
    logs = [(kind, body) for where, kind, body in collector.received if where == "/v1/logs"]
    assert logs, collector.received
    assert {kind for kind, _ in logs} == {"application/x-protobuf"}
    assert any(session.encode() in body and b"claude_code." in body for _, body in logs)


def test_a_second_entry_of_ours_is_dropped() -> None:
    document = json.loads(FOREIGN)
    twice = [{"hooks": [{"type": "command", "command": OURS, "timeout": 10}]},
             {"matcher": "*", "hooks": [{"type": "command", "command": "notify"},
                                        {"type": "command", "command": OURS, "timeout": 10}]}]
    document["hooks"]["Stop"] = twice
    assert cc.add_hooks(document, OURS)["Stop"] == cc.UPDATED
    assert document["hooks"]["Stop"] == [
        {"hooks": [{"type": "command", "command": OURS, "timeout": 10}]},
        {"matcher": "*", "hooks": [{"type": "command", "command": "notify"}]}]


def test_without_npm_the_cli_tests_skip_saying_why(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.claude_code import cli

    monkeypatch.setattr(cli, "_cache", lambda: tmp_path)
    monkeypatch.setattr(cli, "_FOUND", [])
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    with pytest.raises(pytest.skip.Exception, match="npm/node are not installed"):
        cli.claude_binary()


def test_claude_config_dir_moves_the_user_file(sandbox: GitSandbox) -> None:
    """As for Claude Code itself (2.1.197 reads $CLAUDE_CONFIG_DIR/settings.json)."""
    folder = sandbox.root / "claude-config"
    out = gitaudit(sandbox, "claude-code", "install", CLAUDE_CONFIG_DIR=str(folder)).stdout
    assert f"(user): {folder / 'settings.json'}" in out
    assert set(ours_by_event(folder / "settings.json")) == set(cc.HOOK_EVENTS)
    assert not settings(sandbox).exists()
    gitaudit(sandbox, "claude-code", "uninstall", CLAUDE_CONFIG_DIR=str(folder))
    assert not folder.exists()
