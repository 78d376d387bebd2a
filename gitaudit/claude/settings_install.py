"""Installing gitaudit's hook into Claude Code's settings (``gitaudit claude-code ...``).

Claude Code reads hooks from ``~/.claude/settings.json`` (user; ``$CLAUDE_CONFIG_DIR``
when set) and ``<project>/.claude/settings.json``: ``{"hooks": {EVENT: [{"matcher":
"*", "hooks": [{"type": "command", "command": ...}]}]}}``. gitaudit adds one matcher
group per event of :data:`HOOK_EVENTS`, each running :func:`hook_command` (``<python> -I -S -c
<code>`` that runs :mod:`gitaudit.claude.code_hook`, like ``<python> -m gitaudit
claude-code-hook`` but faster; recognised as ours by :data:`HOOK_MARK` in either form,
whatever the interpreter); every other hook, matcher group and setting stays as it is, in its
place. ``--telemetry`` also writes the variables that point Claude Code's OTLP log
exporter at the daemon into the settings' ``env`` block (:func:`telemetry_env`).

Byte-exact uninstall: the first install keeps the file's original bytes next to it
(``settings.json.gitaudit-backup``; none when there was no file) and a state file
(``settings.json.gitaudit-state``: the SHA-256 of what gitaudit wrote, the
directories it created, the ``env`` values it added). Uninstall puts the original
back when the file is still exactly what gitaudit wrote; when someone edited it
since, it removes exactly gitaudit's entries (and ``env`` values still as gitaudit
set them) and keeps the rest. A file (and directories) gitaudit created go again.

A file that is not valid JSON, whose top level is not an object, or whose ``hooks``
/ ``env`` have the wrong shape is refused with its line and column; nothing is
written then. Writes are atomic (temporary file, rename) and keep the file mode;
a symlinked settings file is written through to its target. The JSON is rewritten
with the indentation, line ends and key order it had (Claude Code's own layout,
two spaces, for a new file).

Planning is pure (:func:`add_hooks`, :func:`remove_hooks`, :func:`add_env`,
:func:`remove_env` act on parsed JSON) and tested without files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import stat
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitaudit import paths
from gitaudit.errors import GitauditError

__all__ = [
    "HOOK_EVENTS", "HOOK_MARK", "ClaudeSettingsError", "Outcome", "Target", "add_env",
    "add_hooks", "file_status", "find_ours", "hook_command", "install", "parse_settings",
    "project_target", "remove_env", "remove_hooks", "telemetry_env", "uninstall",
    "user_target",
]  # fmt: skip

HOOK_MARK = "gitaudit claude-code-hook"  # a command holding this is ours (old `-m` form too)
# What the hook command runs: ``python -I -S -c`` with gitaudit's package root on sys.path, as
# the git hooks do (no site import, no runpy: ~1.4x a bare interpreter start against ~1.8x for
# ``python -m gitaudit claude-code-hook``; bench/bench_claude_code_hook.py). The hot path
# imports only the standard library and gitaudit. gitaudit uninstalled: exit 0, silently.
_HOOK_CODE = """import sys
sys.path.append({root!r})
try:
    from gitaudit.__main__ import run_alone
except ImportError:
    sys.exit(0)
run_alone("gitaudit.claude.code_hook", [], sync_spool=False)  # gitaudit claude-code-hook
"""
# Every event the hook records (cc-shared contract); PreToolUse is not installed: the
# PostToolUse/PostToolUseFailure payload carries the same input plus the outcome.
HOOK_EVENTS = (
    "SessionStart", "UserPromptSubmit", "PostToolUse", "PostToolUseFailure", "Stop",
    "SessionEnd",
)  # fmt: skip
# Events that take a matcher (tool name, session source, end reason): ``*`` matches all.
MATCHER_EVENTS = frozenset({"SessionStart", "PostToolUse", "PostToolUseFailure", "SessionEnd"})
HOOK_TIMEOUT = 10  # seconds Claude Code waits at most for our hook (it never takes that long)
BACKUP_SUFFIX = ".gitaudit-backup"
STATE_SUFFIX = ".gitaudit-state"
SETTINGS_NAME = "settings.json"
LOGS_PATH = "/v1/logs"
PROTOCOLS = ("http/protobuf", "http/json")
LOGS_EXPORT_INTERVAL_MS = "1000"  # Claude Code's default is 5000: events reach the trail sooner
# Telemetry variables a user may already have chosen otherwise: left as they are then.
_SOFT_ENV = frozenset({"OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORT_INTERVAL"})

ADDED = "added"
UPDATED = "updated"  # ours, with another interpreter or timeout: rewritten in place
UNCHANGED = "unchanged"
REMOVED = "removed"
ABSENT = "absent"
KEPT = "kept"  # an env value someone else set (or changed since): left alone


class ClaudeSettingsError(GitauditError):
    """A Claude Code settings file cannot be read, changed or restored as asked."""


# --- where ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One Claude Code settings file: its scope and the path as named."""

    scope: str  # "user" or "project"
    path: Path

    @property
    def real(self) -> Path:
        """The file written (a symlink's target, so the link stays a link)."""
        return Path(os.path.realpath(self.path))

    @property
    def backup(self) -> Path:
        """The original bytes, kept by the first install."""
        return self.real.with_name(self.real.name + BACKUP_SUFFIX)

    @property
    def state(self) -> Path:
        """What gitaudit wrote and added (JSON)."""
        return self.real.with_name(self.real.name + STATE_SUFFIX)


def user_target(environ: Mapping[str, str]) -> Target:
    """``$CLAUDE_CONFIG_DIR/settings.json``, else ``~/.claude/settings.json``."""
    folder = environ.get("CLAUDE_CONFIG_DIR")
    if not folder:
        home = environ.get("HOME") or os.path.expanduser("~")
        folder = os.path.join(home, ".claude")
    return Target("user", Path(os.path.expanduser(folder)) / SETTINGS_NAME)


def project_target(project: str | Path) -> Target:
    """``<project>/.claude/settings.json``; the project directory must exist."""
    folder = Path(project).expanduser()
    if not folder.is_dir():
        raise ClaudeSettingsError(
            f"{project} is not a directory",
            "pass --project PATH naming the project (repository) directory Claude Code runs in",
        )
    return Target("project", folder.absolute() / ".claude" / SETTINGS_NAME)


def find_project(start: str) -> Path | None:
    """The repository around ``start`` (the nearest directory holding ``.git``), if any."""
    current = Path(start).absolute()
    for folder in (current, *current.parents):
        if (folder / ".git").exists():
            return folder
    return None


def hook_command(python: str | None = None) -> str:
    """The command every installed hook runs (this interpreter unless ``python``)."""
    from gitaudit.hookinstall import package_root

    code = _HOOK_CODE.format(root=package_root())
    return f"{shlex.quote(python or sys.executable)} -I -S -c {shlex.quote(code)}"


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """How a settings file was written, to write it back the same way."""

    indent: str | None = "  "  # None: all on one line
    separators: tuple[str, str] = (",", ": ")
    crlf: bool = False
    final_newline: bool = True

    @classmethod
    def of(cls, text: str) -> Layout:
        """The layout of ``text`` (Claude Code's own for an empty file)."""
        body = text.strip()
        if not body or re.fullmatch(r"\{\s*\}", body):  # nothing to learn from
            return cls()
        crlf = "\r\n" in text
        final_newline = text.endswith("\n")
        found = re.search(r"\n([ \t]+)\S", body)
        if "\n" in body:
            return cls(found.group(1) if found else "  ", (",", ": "), crlf, final_newline)
        colon = ": " if re.search(r'"\s*:\s', body) else ":"
        comma = ", " if re.search(r",\s", body) else ","
        return cls(None, (comma, colon), crlf, final_newline)

    def dump(self, document: Mapping[str, Any]) -> bytes:
        """``document`` as this layout writes it."""
        text = json.dumps(document, indent=self.indent, separators=self.separators,
                          ensure_ascii=False)
        if self.final_newline:
            text += "\n"
        if self.crlf:
            text = text.replace("\n", "\r\n")
        return text.encode("utf-8")


_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _skip(text: str, index: int) -> int:
    found = _WHITESPACE.match(text, index)
    return found.end() if found else index


def locate(text: str, where: Sequence[str | int]) -> int:
    """Offset in valid JSON ``text`` of the value at ``where`` (keys and list indexes).

    Of a key given twice, the last one (the one JSON parsers keep).
    """
    decoder = json.JSONDecoder()
    index = _skip(text, 0)
    for step in where:
        if isinstance(step, int):
            index = _skip(text, index + 1)
            for _ in range(step):
                _, index = decoder.raw_decode(text, index)
                index = _skip(text, _skip(text, index) + 1)
            continue
        found, index = None, _skip(text, index + 1)
        while index < len(text) and text[index] == '"':
            key, index = decoder.raw_decode(text, index)
            index = _skip(text, _skip(text, index) + 1)
            if key == step:
                found = index
            _, index = decoder.raw_decode(text, index)
            index = _skip(text, index)
            if text[index : index + 1] == ",":
                index = _skip(text, index + 1)
        if found is None:
            return index
        index = found
    return index


def _position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"line {line}, column {offset - text.rfind(chr(10), 0, offset)}"


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _refuse(path: Path, text: str, where: Sequence[str | int], what: str) -> ClaudeSettingsError:
    spot = _position(text, locate(text, where))
    return ClaudeSettingsError(
        f"{path}: {spot}: {what}; nothing was changed",
        "fix that place in the file (Claude Code cannot use it as it is either), or move the "
        "file away, then run the command again",
    )


def parse_settings(path: Path, raw: bytes | None) -> tuple[dict[str, Any], Layout]:
    """The settings object in ``raw`` (None or blank: an empty one) and its layout.

    Raises :class:`ClaudeSettingsError` naming the line and column of what is wrong.
    """
    if raw is None:
        return {}, Layout()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ClaudeSettingsError(
            f"{path}: byte {exc.start + 1} is not UTF-8; nothing was changed",
            "save the file as UTF-8 JSON, then run the command again",
        ) from exc
    if not text.strip():
        return {}, Layout.of(text)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClaudeSettingsError(
            f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}); "
            "nothing was changed",
            "fix the file (Claude Code cannot read it either: it ignores these settings), or "
            "move it away, then run the command again",
        ) from exc
    if not isinstance(document, dict):
        raise _refuse(path, text, [], f"the top level is {_kind(document)}, Claude Code's "
                                      "settings are a JSON object ({...})")
    _check_shape(path, text, document)
    return document, Layout.of(text)


def _check_shape(path: Path, text: str, document: Mapping[str, Any]) -> None:
    """``hooks``: {event: [{"hooks": [{...}]}]}; ``env``: an object (else refused)."""
    env = document.get("env")
    if env is not None and not isinstance(env, dict):
        raise _refuse(path, text, ["env"], f'"env" is {_kind(env)}, expected an object')
    hooks = document.get("hooks")
    if hooks is None:
        return
    if not isinstance(hooks, dict):
        raise _refuse(path, text, ["hooks"], f'"hooks" is {_kind(hooks)}, expected an object '
                                             "of events")
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            raise _refuse(path, text, ["hooks", event], f'"hooks.{event}" is {_kind(groups)}, '
                                                        "expected an array of matcher groups")
        for number, group in enumerate(groups):
            where: list[str | int] = ["hooks", event, number]
            if not isinstance(group, dict):
                raise _refuse(path, text, where, f'"hooks.{event}[{number}]" is '
                                                 f'{_kind(group)}, expected an object '
                                                 '({"matcher": ..., "hooks": [...]})')
            entries = group.get("hooks")
            if entries is None:
                continue
            if not isinstance(entries, list):
                raise _refuse(path, text, [*where, "hooks"],
                              f'"hooks.{event}[{number}].hooks" is {_kind(entries)}, '
                              "expected an array of hooks")
            for place, entry in enumerate(entries):
                if not isinstance(entry, dict):
                    raise _refuse(path, text, [*where, "hooks", place],
                                  f'"hooks.{event}[{number}].hooks[{place}]" is '
                                  f'{_kind(entry)}, expected an object '
                                  '({"type": "command", "command": ...})')


# --- planning (pure) -----------------------------------------------------------------------


def is_ours(entry: Any) -> bool:
    """A hook entry that runs gitaudit's hook command."""
    return isinstance(entry, dict) and HOOK_MARK in str(entry.get("command", ""))


def find_ours(document: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """gitaudit's hook entries by event (any event, any matcher group)."""
    found: dict[str, list[dict[str, Any]]] = {}
    hooks = document.get("hooks")
    for event, groups in (hooks.items() if isinstance(hooks, dict) else ()):
        for group in groups if isinstance(groups, list) else ():
            entries = group.get("hooks") if isinstance(group, dict) else None
            for entry in entries if isinstance(entries, list) else ():
                if is_ours(entry):
                    found.setdefault(event, []).append(entry)
    return found


def _entry(command: str) -> dict[str, Any]:
    return {"type": "command", "command": command, "timeout": HOOK_TIMEOUT}


def add_hooks(document: dict[str, Any], command: str,
              events: Sequence[str] = HOOK_EVENTS) -> dict[str, str]:
    """Put our hook on each of ``events`` in ``document`` (in place): {event: action}.

    An entry of ours already there is kept in its place (rewritten if its command or
    timeout differ); a second one of ours on the same event is dropped. A new one
    comes as a matcher group of its own at the end of the event's list.
    """
    actions: dict[str, str] = {}
    if document.get("hooks") is None:
        document["hooks"] = {}
    hooks = document["hooks"]
    for event in events:
        groups = hooks.setdefault(event, [])
        ours = [entry for group in groups for entry in group.get("hooks", ()) if is_ours(entry)]
        if not ours:
            group: dict[str, Any] = {"matcher": "*"} if event in MATCHER_EVENTS else {}
            group["hooks"] = [_entry(command)]
            groups.append(group)
            actions[event] = ADDED
            continue
        first, extra = ours[0], ours[1:]
        wanted = _entry(command)
        action = UNCHANGED
        if any(first.get(key) != value for key, value in wanted.items()) or extra:
            first.update(wanted)
            action = UPDATED
        if extra:
            _drop_entries(hooks, event, _among(extra))
        actions[event] = action
    return actions


def _among(entries: Sequence[Any]) -> Callable[[Any], bool]:
    """Picks exactly these objects (not equal copies of them)."""
    chosen = {id(entry) for entry in entries}
    return lambda entry: id(entry) in chosen


def _drop_entries(hooks: dict[str, Any], event: str, drop: Callable[[Any], bool]) -> bool:
    """Remove the entries ``drop`` picks from ``hooks[event]``, and what that empties."""
    groups = hooks[event]
    changed = False
    for group in list(groups):
        entries = group.get("hooks")
        if not isinstance(entries, list):
            continue
        kept = [entry for entry in entries if not drop(entry)]
        if len(kept) == len(entries):
            continue
        changed = True
        if kept:
            group["hooks"] = kept
        else:
            groups.remove(group)
    if changed and not groups:
        del hooks[event]
    return changed


def remove_hooks(document: dict[str, Any]) -> dict[str, str]:
    """Remove every entry of ours from ``document`` (in place): {event: "removed"}.

    A matcher group, event list or ``hooks`` object that the removal leaves empty
    goes too.
    """
    hooks = document.get("hooks")
    if not isinstance(hooks, dict):
        return {}
    actions = {event: REMOVED for event in list(hooks) if _drop_entries(hooks, event, is_ours)}
    if actions and not hooks:
        del document["hooks"]
    return actions


def telemetry_env(address: str, protocol: str = PROTOCOLS[0]) -> dict[str, str]:
    """The variables that send Claude Code's OTLP log events to gitaudit's receiver.

    ``address``: the receiver's ``host:port`` (``GITAUDIT_OTLP_ADDRESS``).
    """
    host, _, port = address.strip().rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ClaudeSettingsError(
            f"the OTLP receiver address {address!r} is not host:port",
            "set GITAUDIT_OTLP_ADDRESS to e.g. 127.0.0.1:4318 (the daemon's OTLP/HTTP port)",
        )
    host = host.strip("[]")
    if host in {"", "0.0.0.0", "::"}:  # noqa: S104 - a listen-on-all address: connect locally
        host = "127.0.0.1" if host != "::" else "::1"
    shown = f"[{host}]" if ":" in host else host
    return {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"http://{shown}:{port}{LOGS_PATH}",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORT_INTERVAL": LOGS_EXPORT_INTERVAL_MS,
    }


TELEMETRY_KEYS = tuple(telemetry_env("127.0.0.1:4318"))


def _agrees(key: str, have: Any, want: str) -> bool:
    """An env value that already does what gitaudit needs."""
    if key == "OTEL_LOGS_EXPORTER":  # a list of exporters: otlp among them suffices
        return "otlp" in [part.strip() for part in str(have).split(",")]
    return str(have) == want


def add_env(document: dict[str, Any], wanted: Mapping[str, str],
            ours: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Set ``wanted`` in ``document["env"]`` (in place): ({key: action}, conflicts).

    ``ours``: the values an earlier install added (those may be changed). A value the
    user set otherwise is a conflict, except for :data:`_SOFT_ENV` (kept as it is).
    Nothing is changed when there is a conflict.
    """
    env = document.get("env")
    env = env if isinstance(env, dict) else {}
    actions: dict[str, str] = {}
    conflicts: list[str] = []
    for key, value in wanted.items():
        if key not in env:
            actions[key] = ADDED
        elif _agrees(key, env[key], value):
            actions[key] = UNCHANGED
        elif key in ours and str(env[key]) == ours[key]:
            actions[key] = UPDATED
        elif key in _SOFT_ENV:
            actions[key] = KEPT
        else:
            conflicts.append(f"{key}={env[key]}")
    if conflicts:
        return actions, conflicts
    if any(action in {ADDED, UPDATED} for action in actions.values()):
        document["env"] = env
        for key, action in actions.items():
            if action in {ADDED, UPDATED}:
                env[key] = wanted[key]
    return actions, []


def remove_env(document: dict[str, Any], ours: Mapping[str, str]) -> dict[str, str]:
    """Remove the env values in ``ours`` still as gitaudit set them (in place)."""
    env = document.get("env")
    if not isinstance(env, dict):
        return {}
    actions = {}
    for key, value in ours.items():
        if key in env and str(env[key]) == value:
            del env[key]
            actions[key] = REMOVED
        elif key in env:
            actions[key] = KEPT
    if actions and not env and REMOVED in actions.values():
        del document["env"]
    return actions


# --- state ---------------------------------------------------------------------------------


@dataclass
class State:
    """What gitaudit did to one settings file (``settings.json.gitaudit-state``)."""

    written_sha256: str = ""
    had_file: bool = True  # False: gitaudit created the file (no backup then)
    backup: bool = False  # the backup holds the bytes to restore
    created_dirs: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # env values gitaudit added

    @classmethod
    def load(cls, path: Path) -> State | None:
        """The state file's content (None: none, or unreadable: then nothing is restored)."""
        try:
            data = json.loads(path.read_bytes())
            return cls(str(data["written_sha256"]), bool(data["had_file"]),
                       bool(data["backup"]), [str(item) for item in data["created_dirs"]],
                       {str(key): str(value) for key, value in data["env"].items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def dump(self) -> bytes:
        """The state file's content."""
        note = ("gitaudit claude-code install: what it wrote into the settings file next to "
                "this one; `gitaudit claude-code uninstall` reads it")
        data = {"note": note, "version": 1, "written_sha256": self.written_sha256,
                "had_file": self.had_file, "backup": self.backup,
                "created_dirs": self.created_dirs, "env": self.env}
        return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the operations ------------------------------------------------------------------------


@dataclass
class Outcome:
    """What an install or uninstall did, for the CLI to print."""

    target: Target
    hooks: dict[str, str] = field(default_factory=dict)  # event -> action
    env: dict[str, str] = field(default_factory=dict)  # variable -> action
    written: bool = False
    restored: bool = False  # the original bytes were put back (or the created file removed)
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _reported(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise ClaudeSettingsError(f"{what}: {exc.strerror or exc}{where}",
                                  "check the permissions of the file and its directory") from exc


def _read(target: Target) -> bytes | None:
    """The settings file's bytes (None: there is none); refuses what is not a file."""
    path = target.path
    if path.is_symlink() and not path.exists():
        raise ClaudeSettingsError(
            f"{path} is a symlink to {os.readlink(path)}, which does not exist",
            "create the file it points to (or remove the link), then run the command again",
        )
    if path.exists() and not path.is_file():
        raise ClaudeSettingsError(f"{path} is not a regular file",
                                  "move it away, then run the command again")
    with _reported(f"cannot read {path}"):
        try:
            return target.real.read_bytes()
        except FileNotFoundError:
            return None


def _file_mode(path: Path) -> int:
    """An existing file's mode; a new file gets what the umask leaves of 0666."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def _make_dirs(folder: Path) -> list[str]:
    """Create ``folder`` and missing parents; the ones created, outermost first."""
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    for item in reversed(missing):
        item.mkdir()
    return [str(item) for item in reversed(missing)]


def _remove_dirs(created: Sequence[str]) -> None:
    """Remove the directories gitaudit created, innermost first, where still empty."""
    for folder in reversed(created):
        with contextlib.suppress(OSError):  # something else is in it now: it stays
            os.rmdir(folder)


def install(target: Target, command: str, telemetry: Mapping[str, str] | None = None
            ) -> Outcome:
    """Add our hook to every event (and with ``telemetry`` those env values)."""
    raw = _read(target)
    document, layout = parse_settings(target.path, raw)
    state = State.load(target.state)
    outcome = Outcome(target)
    had_ours = bool(find_ours(document))
    outcome.hooks = add_hooks(document, command)
    if telemetry is not None:
        outcome.env, conflicts = add_env(document, telemetry, state.env if state else {})
        if conflicts:
            raise ClaudeSettingsError(
                f"{target.path}: env already sets {', '.join(conflicts)}, which gitaudit's "
                "telemetry would replace; nothing was changed",
                "remove those values from the file's env block (or install without "
                "--telemetry and point Claude Code's OTLP log exporter at gitaudit yourself)",
            )
    if document.get("disableAllHooks") is True:
        outcome.notes.append(f'{target.path} sets "disableAllHooks": true: Claude Code runs '
                             "no hooks, gitaudit's included, until that is removed")
    data = layout.dump(document)
    if data == raw:
        return outcome
    env = document.get("env") or {}
    added = {key: str(env[key]) for key, action in outcome.env.items()
             if action in {ADDED, UPDATED}}
    _write_installed(target, raw, data, state, had_ours, added)
    outcome.written = True
    return outcome


def _write_installed(target: Target, raw: bytes | None, data: bytes, state: State | None,
                     had_ours: bool, added_env: Mapping[str, str]) -> None:
    """Write ``data`` over ``raw``; keep the original (first time) and the state first."""
    real = target.real
    previous_state = state
    mode = _file_mode(real)
    with _reported(f"cannot write {target.path}"):
        if state is None:
            state = State(had_file=raw is not None)
            state.created_dirs = _make_dirs(real.parent)
            if raw is not None and not had_ours:  # else it would restore our entries
                paths.replace_file(str(target.backup), raw, mode)
                state.backup = True
        elif raw is None or _sha256(raw) != state.written_sha256:
            # Edited since gitaudit wrote it: the kept original would undo those edits.
            # The file as it is now is the one to restore, if none of ours is in it yet.
            state.had_file = raw is not None
            state.backup = raw is not None and not had_ours
            if raw is not None and state.backup:
                paths.replace_file(str(target.backup), raw, mode)
            else:
                target.backup.unlink(missing_ok=True)
        state.written_sha256 = _sha256(data)
        state.env.update(added_env)
        paths.replace_file(str(target.state), state.dump(), 0o600)
        try:
            paths.replace_file(str(real), data, mode)
        except BaseException:
            if previous_state is None:
                target.state.unlink(missing_ok=True)
                target.backup.unlink(missing_ok=True)
                _remove_dirs(state.created_dirs)
            else:
                paths.replace_file(str(target.state), previous_state.dump(), 0o600)
            raise


def uninstall(target: Target) -> Outcome:
    """Remove our hooks (and env values); restore the original bytes when nothing else changed."""
    outcome = Outcome(target)
    state = State.load(target.state)
    raw = _read(target)
    if raw is None:
        if state is not None and state.backup:
            outcome.notes.append(f"{target.path} is gone; the original gitaudit kept is left "
                                 f"at {target.backup}")
        with _reported(f"cannot remove {target.state}"):
            target.state.unlink(missing_ok=True)
        return outcome
    document, layout = parse_settings(target.path, raw)
    outcome.hooks = remove_hooks(document)
    outcome.env = remove_env(document, state.env if state else {})
    created = False  # the file is gitaudit's own, and nothing of anyone else's is in it
    with _reported(f"cannot restore {target.path}"):
        if (state is not None and _sha256(raw) == state.written_sha256 and state.backup
                and target.backup.is_file()):
            original = target.backup.read_bytes()
            paths.replace_file(str(target.real), original, _file_mode(target.real))
            outcome.restored = outcome.written = True
        elif state is not None and not state.had_file and (
                _sha256(raw) == state.written_sha256 or not document):
            target.real.unlink()
            outcome.restored = outcome.written = created = True
        elif outcome.hooks or REMOVED in outcome.env.values():
            paths.replace_file(str(target.real), layout.dump(document), _file_mode(target.real))
            outcome.written = True
        target.state.unlink(missing_ok=True)
        target.backup.unlink(missing_ok=True)
        if created and state is not None:
            _remove_dirs(state.created_dirs)
    return outcome


# --- status --------------------------------------------------------------------------------


def _interpreter(command: str) -> str | None:
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    return words[0] if words else None


def file_status(target: Target, command: str, telemetry: Mapping[str, str] | None
                ) -> dict[str, Any]:
    """One settings file: which events have our hook, its interpreter, the telemetry env."""
    info: dict[str, Any] = {
        "scope": target.scope, "path": str(target.path), "exists": False, "error": None,
        "state": "not-installed", "events": {}, "missing": list(HOOK_EVENTS),
        "telemetry": {"set": False, "points_at_gitaudit": None, "env": {}},
        "hooks_disabled": False,
        "backup": str(target.backup) if target.backup.exists() else None,
    }
    try:
        raw = _read(target)
        document, _ = parse_settings(target.path, raw)
    except ClaudeSettingsError as exc:
        info.update(exists=target.path.exists(), error=exc.message, state="invalid")
        return info
    info["exists"] = raw is not None
    ours = find_ours(document)
    for event in sorted(ours, key=lambda name: (name not in HOOK_EVENTS, name)):
        found = str(ours[event][0].get("command", ""))
        interpreter = _interpreter(found)
        info["events"][event] = {
            "command": found,
            "interpreter": interpreter,
            "interpreter_exists": bool(interpreter) and os.access(str(interpreter), os.X_OK),
            "current": found == command,
        }
    info["missing"] = [event for event in HOOK_EVENTS if event not in ours]
    if ours:
        info["state"] = "partial" if info["missing"] else "installed"
    info["hooks_disabled"] = document.get("disableAllHooks") is True
    info["telemetry"] = _telemetry_status(document.get("env") or {}, telemetry)
    return info


def _telemetry_status(env: Mapping[str, Any], wanted: Mapping[str, str] | None
                      ) -> dict[str, Any]:
    shown = {key: (str(env[key]) if key in env else None) for key in TELEMETRY_KEYS}
    endpoint = shown["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"]
    enabled = (shown["CLAUDE_CODE_ENABLE_TELEMETRY"] not in {None, "", "0", "false"}
               and _agrees("OTEL_LOGS_EXPORTER", shown["OTEL_LOGS_EXPORTER"] or "", "otlp")
               and bool(endpoint))
    points = None if wanted is None else (
        enabled and endpoint == wanted["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"])
    return {"set": enabled, "points_at_gitaudit": points, "env": shown}
