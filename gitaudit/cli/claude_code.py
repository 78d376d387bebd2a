"""``gitaudit claude-code install|uninstall|status``: thin commands over
:mod:`gitaudit.claude.settings_install`."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from gitaudit import config
from gitaudit.claude import settings_install as cc
from gitaudit.cli.common import SummaryFormat, SummaryFormatOption, load_settings
from gitaudit.errors import UsageError

claude_code_app = typer.Typer(
    help="Record Claude Code sessions: gitaudit's hook in Claude Code's settings.",
    no_args_is_help=True,
)

UserOption = Annotated[
    bool, typer.Option("--user", help="~/.claude/settings.json (the default).")
]
ProjectOption = Annotated[
    Path | None,
    typer.Option("--project", metavar="PATH",
                 help="PATH/.claude/settings.json: one project (repository) only."),
]


class Protocol(StrEnum):
    """OTLP/HTTP encodings gitaudit's receiver takes."""

    protobuf = "http/protobuf"
    json = "http/json"


_DONE = {
    cc.ADDED: "added",
    cc.UPDATED: "updated (other interpreter or timeout)",
    cc.UNCHANGED: "already installed",
    cc.REMOVED: "removed",
    cc.KEPT: "kept (not as gitaudit set it)",
}
_PLACEHOLDER = "<GITAUDIT_OTLP_ADDRESS>"


def _target(user: bool, project: Path | None) -> cc.Target:
    if user and project is not None:
        raise UsageError("use either --user or --project PATH, not both",
                         "--user (the default) changes ~/.claude/settings.json")
    return cc.project_target(project) if project is not None else cc.user_target(os.environ)


def otlp_address() -> str | None:
    """The daemon's OTLP receiver (``host:port``), or None while it is off."""
    if "otlp_address" in config.FIELDS_BY_NAME:
        value = getattr(load_settings(), "otlp_address", None)
    else:  # the setting comes with the OTLP receiver; until then its variable is read here
        load_settings()  # the other settings still have to be valid
        value = os.environ.get("GITAUDIT_OTLP_ADDRESS")
    return str(value).strip() if value else None


def _variables(address: str | None, protocol: Protocol) -> dict[str, str]:
    if address is not None:
        return cc.telemetry_env(address, protocol.value)
    env = cc.telemetry_env("127.0.0.1:4318", protocol.value)
    env["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"] = f"http://{_PLACEHOLDER}{cc.LOGS_PATH}"
    return env


def _print_head(target: cc.Target) -> None:
    typer.echo(f"Claude Code settings ({target.scope}): {target.path}")


def _print_actions(actions: Mapping[str, str], prefix: str = "") -> None:
    for name, action in actions.items():
        typer.echo(f"  {prefix}{name:32s} {_DONE.get(action, action)}")


def install_command(
    user: UserOption = False,
    project: ProjectOption = None,
    telemetry: Annotated[
        bool,
        typer.Option("--telemetry",
                     help="Also write the OTLP variables into the settings' env block."),
    ] = False,
    protocol: Annotated[
        Protocol,
        typer.Option("--otlp-protocol", help="Encoding Claude Code sends its log events in."),
    ] = Protocol.protobuf,
) -> None:
    """Add gitaudit's hook to Claude Code's settings; every other hook and setting is kept."""
    target = _target(user, project)
    address = otlp_address()
    if telemetry and address is None:
        raise cc.ClaudeSettingsError(
            "--telemetry needs the daemon's OTLP receiver, and GITAUDIT_OTLP_ADDRESS is not "
            "set (the receiver is off); nothing was changed",
            "set GITAUDIT_OTLP_ADDRESS=127.0.0.1:4318 (environment or config file), restart "
            "the daemon, then run this again",
        )
    variables = _variables(address, protocol)
    command = cc.hook_command()
    outcome = cc.install(target, command, variables if telemetry else None)
    _print_head(target)
    _print_actions(outcome.hooks)
    typer.echo(f"hook command: {command}")
    if outcome.env:
        typer.echo("telemetry, in the settings' env block:")
        _print_actions(outcome.env)
    else:
        if address is None:
            typer.echo(
                "note: GITAUDIT_OTLP_ADDRESS is not set, so the daemon's OTLP receiver is "
                "off: Claude Code's API requests (tokens, cost) and permission decisions are "
                "not recorded; the hook still records sessions, prompts and tool calls. Set "
                "it (e.g. 127.0.0.1:4318), restart the daemon, then run `gitaudit claude-code "
                "install --telemetry` or set these where Claude Code starts:"
            )
        else:
            typer.echo("telemetry: set these where Claude Code starts (or run again with "
                       "--telemetry to write them into the settings' env block):")
        for key, value in variables.items():
            typer.echo(f"  export {key}={shlex.quote(value)}")
    notes = list(outcome.notes)
    if target.scope == "project":
        notes.append("a project's .claude/settings.json is usually committed: the hook "
                     "command names this machine's interpreter")
    for note in notes:
        typer.echo(f"note: {note}")


def uninstall_command(user: UserOption = False, project: ProjectOption = None) -> None:
    """Remove gitaudit's hook (and telemetry env); the original file comes back byte for byte."""
    target = _target(user, project)
    outcome = cc.uninstall(target)
    _print_head(target)
    if outcome.restored:
        typer.echo("  restored as it was before gitaudit (byte for byte)")
    elif outcome.written:
        typer.echo("  changed since gitaudit wrote it: gitaudit's entries removed, the rest kept")
    else:
        typer.echo("  nothing of gitaudit's there; left as it is")
    _print_actions(outcome.hooks)
    _print_actions(outcome.env, "env ")
    for note in outcome.notes:
        typer.echo(f"note: {note}")


def status_command(
    project: ProjectOption = None,
    fmt: SummaryFormatOption = SummaryFormat.table,
) -> None:
    """Which Claude Code settings files run gitaudit's hook, for which events, with telemetry."""
    targets = [cc.user_target(os.environ)]
    found = project if project is not None else cc.find_project(os.getcwd())
    if found is not None:
        targets.append(cc.project_target(found))
    address = otlp_address()
    command = cc.hook_command()
    wanted = cc.telemetry_env(address) if address is not None else None
    info = {
        "hook_command": command,
        "otlp_address": address,
        "files": [cc.file_status(target, command, wanted) for target in targets],
    }
    if fmt is SummaryFormat.json:
        typer.echo(json.dumps(info, indent=2))
    else:
        typer.echo(format_status(info))


def _notes(entry: Mapping[str, Any]) -> list[str]:
    repair = "gitaudit claude-code install" + (
        f" --project {shlex.quote(str(Path(entry['path']).parent.parent))}"
        if entry["scope"] == "project" else "")
    notes = []
    if entry["error"]:
        notes.append(entry["error"])
    if entry["hooks_disabled"]:
        notes.append(f"{entry['path']} sets disableAllHooks: Claude Code runs no hooks")
    gone = sorted({row["interpreter"] for row in entry["events"].values()
                   if not row["interpreter_exists"]}, key=str)
    notes += [f"the hook's interpreter {name} does not exist (any more): the hook fails"
              for name in gone]
    if entry["state"] == "partial" or gone:
        notes.append(f"repair: {repair}")
    return notes


def format_status(info: Mapping[str, Any]) -> str:
    """The status as short text tables, one per settings file."""
    lines = [f"hook command: {info['hook_command']}",
             f"OTLP receiver: {info['otlp_address'] or 'off (GITAUDIT_OTLP_ADDRESS not set)'}"]
    for entry in info["files"]:
        state = entry["state"] if entry["exists"] or entry["error"] else "no file"
        lines.append(f"{entry['scope']}: {entry['path']} ({state})")
        for event in [*cc.HOOK_EVENTS, *(e for e in entry["events"] if e not in cc.HOOK_EVENTS)]:
            row = entry["events"].get(event)
            if row is None:
                lines.append(f"  {event:20s} -")
                continue
            exists = "" if row["interpreter_exists"] else " (missing)"
            other = "" if row["current"] else ", not this gitaudit's"
            lines.append(f"  {event:20s} installed: {row['interpreter']}{exists}{other}")
        telemetry = entry["telemetry"]
        text = "set" if telemetry["set"] else "not set"
        if telemetry["points_at_gitaudit"] is False:
            text += ", not pointing at gitaudit's receiver"
        lines.append(f"  telemetry env: {text}")
        lines += [f"note: {note}" for note in _notes(entry)]
    return "\n".join(lines)


claude_code_app.command("install")(install_command)
claude_code_app.command("uninstall")(uninstall_command)
claude_code_app.command("status")(status_command)
