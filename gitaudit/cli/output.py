"""Rendering events for readers: table, json, jsonl, csv.

Every writer takes an iterable and writes each event as it arrives: ``log``
pipes the store's cursor straight through, so output of any size takes
constant memory (the JSON array is written element by element, the table line
by line with fixed columns instead of a measured rich table).
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Final, TextIO

from gitaudit.cli.common import OutputFormat

CSV_COLUMNS = (
    "id",
    "occurred_at",
    "operation",
    "category",
    "outcome",
    "severity",
    "source",
    "duration_ms",
    "correlation_id",
    "parent_id",
    "actor.user",
    "actor.uid",
    "actor.git_email",
    "actor.host",
    "repo.name",
    "repo.path",
    "repo.branch",
    "repo.remote",
    "repo.head_before",
    "repo.head_after",
    "result.exit_code",
    "result.error",
    "details",
    "chain_id",
    "seq",
    "hash",
)


# Python's csv reader refuses a field over csv.field_size_limit() (131,072
# characters by default): a longer cell (a large `details`) is cut to this many
# characters and marked; `--format jsonl` carries the event whole.
CSV_CELL_MAX = 100_000


def _get(event: dict[str, Any], dotted: str) -> Any:
    value: Any = event
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def write_json(events: Iterable[dict[str, Any]], out: TextIO) -> None:
    """A JSON array of event objects, written one element at a time (constant memory)."""
    first = True
    for event in events:
        text = json.dumps(event, indent=2, sort_keys=True, ensure_ascii=False)
        out.write(("[\n  " if first else ",\n  ") + text.replace("\n", "\n  "))
        first = False
    out.write("[]\n" if first else "\n]\n")


def write_jsonl(events: Iterable[dict[str, Any]], out: TextIO) -> None:
    """One event object per line."""
    for event in events:
        out.write(json.dumps(event, sort_keys=True, ensure_ascii=False) + "\n")


def _capped(cell: str) -> str:
    if len(cell) <= CSV_CELL_MAX:
        return cell
    return f"{cell[:CSV_CELL_MAX]}…[{len(cell) - CSV_CELL_MAX} more characters: see --format jsonl]"


def csv_row(event: dict[str, Any]) -> list[str]:
    """One event's cells under CSV_COLUMNS, each at most about :data:`CSV_CELL_MAX` long."""
    return [_capped(_cell(_get(event, column))) for column in CSV_COLUMNS]


def write_csv(events: Iterable[dict[str, Any]], out: TextIO) -> None:
    """Flattened columns (CSV_COLUMNS); nested values as JSON."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_row(event) for event in events)


def _items(details: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The objects listed under ``details[key]`` (anything else there is skipped)."""
    items = details.get(key) if isinstance(details, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _push_marks(details: dict[str, Any]) -> str:
    marks = []
    for ref in _items(details, "refs"):
        flag = "+" if ref.get("forced") else "-" if ref.get("deleted") else (
            "*" if ref.get("created") else "")
        marks.append(f"{flag}{ref.get('ref')}")
    return " ".join(marks)


def _argv(details: dict[str, Any]) -> str:
    """The (redacted) command line without the leading ``git``."""
    argv = details.get("argv")
    if not isinstance(argv, list) or not argv:
        return ""
    words = [str(word) for word in argv]
    return " ".join(words[1:] if words[0].rsplit("/", 1)[-1] == "git" else words)


def _first(details: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = details.get(key)
        if value not in (None, "", [], {}):
            return " ".join(map(str, value)) if isinstance(value, list) else str(value)
    return ""


def _claude_code(operation: str, details: dict[str, Any]) -> str:
    if operation == "claude.tool_use":
        tool_input = details.get("tool_input")
        tool_input = tool_input if isinstance(tool_input, dict) else {}
        what = _first(tool_input, "command", "file_path", "path", "pattern", "url")
        return f"{_cell(details.get('tool_name'))} {what}".strip()
    if operation == "claude.prompt":
        length = details.get("prompt_length", details.get("length"))
        return f"prompt {_first(details, 'prompt_id')} ({length} chars)".replace(" ()", "")
    return " ".join(part for part in (
        _first(details, "phase", "hook_event_name"), _first(details, "source", "reason"),
        _first(details, "model"), _first(details, "session_id")) if part)  # fmt: skip


def summary(event: dict[str, Any]) -> str:
    """One line saying what the event did, whatever its operation (the table's last column)."""
    details = event.get("details")
    details = details if isinstance(details, dict) else {}
    operation = str(event.get("operation", ""))
    if operation == "git.push":
        text = _push_marks(details) or _argv(details)
    elif operation == "claude.request":
        model, tokens, cost = claude_cells(event)
        text = f"{model} {tokens} ${cost}" if cost else f"{model} {tokens}"
    elif operation.startswith("conflict."):
        text = " ".join(
            f"{item.get('path')}" + (f" ({item['resolution']})" if item.get("resolution") else "")
            for item in _items(details, "files")
        )
    elif operation.startswith("claude."):
        text = _claude_code(operation, details)
    elif operation == "ref.update":
        old, new = _first(details, "old"), _first(details, "new")
        text = f"{_first(details, 'ref')} {old[:10] or '(none)'}→{new[:10] or '(none)'}"
    elif operation.startswith("git."):
        text = _argv(details) or _first(details, "url", "remote", "upstream", "target", "names")
    else:
        text = _first(details, "reason", "message", "summary", "kind", "stage")
    error = _get(event, "result.error")
    if error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        text = f"{text}: {first_line}" if text else first_line
    return " ".join(text.split())



TABLE_COLUMNS = (
    "time (UTC)", "operation", "outcome", "sev", "actor", "repo", "branch", "ms", "summary",
)  # fmt: skip


def actor_cell(event: dict[str, Any]) -> str:
    """Who: the OS user the kernel vouched for, the git identity beside it.

    ``alice (Alice A)``; an OS user nobody verified (spooled, embedded store) is
    marked ``alice?``; with no OS user at all, the git identity alone, in brackets.
    """
    user, git_name = _get(event, "actor.user"), _get(event, "actor.git_name")
    who = _cell(user or _get(event, "actor.uid"))
    if who and _get(event, "actor.verified") is not True:
        who += "?"
    if not git_name or git_name == user:
        return who
    return f"{who} ({_cell(git_name)})" if who else f"({_cell(git_name)})"


def table_row(event: dict[str, Any]) -> tuple[str, ...]:
    """The cells of one event under TABLE_COLUMNS (also `tail -f`'s line format)."""
    duration = event.get("duration_ms")
    return (
        str(event.get("occurred_at", ""))[:19].replace("T", " "),
        str(event.get("operation", "")),
        str(event.get("outcome", "")),
        str(event.get("severity", "")),
        actor_cell(event),
        _cell(_get(event, "repo.name")),
        _cell(_get(event, "repo.branch")),
        "" if duration is None else f"{duration:.0f}",
        summary(event),
    )


def _count(value: Any) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "-"


def claude_cells(event: dict[str, Any]) -> tuple[str, str, str]:
    """(model, ``input→output`` tokens, cost in USD or "") of a ``claude.request`` event."""
    details = event.get("details")
    details = details if isinstance(details, dict) else {}
    model = _cell(details.get("response_model") or details.get("model"))
    tokens = f"{_count(details.get('input_tokens'))}→{_count(details.get('output_tokens'))}"
    cost = details.get("cost_usd")
    priced = isinstance(cost, int | float) and not isinstance(cost, bool)
    return model, tokens, f"{cost:.4f}" if priced else ""


CLAUDE_TABLE_COLUMNS = (
    "time (UTC)", "outcome", "actor", "repo", "model", "in", "out", "cache r/w", "cost $", "ms",
    "error",
)  # fmt: skip


def claude_row(event: dict[str, Any]) -> tuple[str, ...]:
    """The cells of one ``claude.request`` under CLAUDE_TABLE_COLUMNS."""
    details = event.get("details")
    details = details if isinstance(details, dict) else {}
    model, _, cost = claude_cells(event)
    duration = event.get("duration_ms")
    cache = (
        f"{_count(details.get('cache_read_input_tokens'))}/"
        f"{_count(details.get('cache_creation_input_tokens'))}"
    )
    error = _get(event, "result.error")
    return (
        str(event.get("occurred_at", ""))[:19].replace("T", " "),
        str(event.get("outcome", "")),
        actor_cell(event),
        _cell(_get(event, "repo.name")),
        model,
        _count(details.get("input_tokens")),
        _count(details.get("output_tokens")),
        cache,
        cost,
        "" if duration is None else f"{duration:.0f}",
        str(error).splitlines()[0][:60] if error else "",
    )


# The streamed table: one line per event, fixed columns (width, right-aligned?) cut at a
# word boundary with "…" (never wrapped mid-word). Below WIDE columns the summary (and the
# branch and severity) go on an indented second line.
WIDE = 120
_FIXED: Final = {"time (UTC)": 19, "operation": 17, "outcome": 7, "sev": 6, "actor": 14,
                 "repo": 16, "branch": 14, "ms": 7, "model": 28, "in": 8, "out": 8,
                 "cache r/w": 13, "cost $": 9}  # fmt: skip
_RIGHT: Final = frozenset({"ms", "in", "out", "cost $", "cache r/w"})
_NARROW: Final = ("time (UTC)", "operation", "outcome", "ms", "actor", "repo")


def fit(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters: whole, or cut after a word with ``…``."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = text[: width - 1]
    cut = max(head.rfind(sep) for sep in " /,;:")
    return (head[: cut + 1] if cut >= width // 3 else head).rstrip() + "…"


def _line(cells: dict[str, str], names: Sequence[str], width: int) -> str:
    parts = []
    used = 0
    for index, name in enumerate(names):
        last = index == len(names) - 1
        size = max(width - used, 4) if last or name not in _FIXED else _FIXED[name]
        text = fit(cells.get(name, ""), size)
        parts.append(text if last else (text.rjust(size) if name in _RIGHT else text.ljust(size)))
        used += size + 1
    return " ".join(parts).rstrip()


class TableWriter:
    """Writes events as table lines as they stream in (constant memory), then a count.

    ``claude`` (``log --op claude.request``): model, token and cost columns instead of
    branch and summary.
    """

    def __init__(self, out: TextIO, *, width: int | None = None, claude: bool = False) -> None:
        self.out = out
        self.width = width or (shutil.get_terminal_size().columns if out.isatty() else 160)
        self.claude = claude
        self.count = 0
        if claude:
            self.names: tuple[str, ...] = CLAUDE_TABLE_COLUMNS
        elif self.width >= WIDE:
            self.names = TABLE_COLUMNS
        else:
            self.names = _NARROW
        out.write(_line({name: name for name in self.names}, self.names, self.width) + "\n")

    def write(self, event: dict[str, Any]) -> None:
        """One event's line (two below :data:`WIDE` columns when there is more to say)."""
        columns = CLAUDE_TABLE_COLUMNS if self.claude else TABLE_COLUMNS
        cells = dict(zip(columns, (claude_row if self.claude else table_row)(event), strict=True))
        self.out.write(_line(cells, self.names, self.width) + "\n")
        if self.names is _NARROW:
            more = [f"[{cells['sev']}]" if cells["sev"] not in ("", "low") else "",
                    f"on {cells['branch']}:" if cells["branch"] else "", cells["summary"]]
            text = " ".join(part for part in more if part).rstrip(":")
            if text:
                self.out.write("    " + fit(text, self.width - 4) + "\n")
        self.count += 1

    def close(self, note: str = "") -> None:
        """The closing count line (and ``note``, e.g. how to see more)."""
        self.out.write(f"{self.count} event(s){note}\n")


def write_table(events: Iterable[dict[str, Any]], out: TextIO, *, claude: bool = False) -> None:
    """A human table, streamed (see :class:`TableWriter`)."""
    table = TableWriter(out, claude=claude)
    for event in events:
        table.write(event)
    table.close()


WRITERS = {
    OutputFormat.table: write_table,
    OutputFormat.json: write_json,
    OutputFormat.jsonl: write_jsonl,
    OutputFormat.csv: write_csv,
}


def render(events: Iterable[dict[str, Any]], fmt: OutputFormat, out: TextIO | None = None) -> None:
    """Write events in the chosen format (stdout by default), as they come."""
    WRITERS[fmt](events, out or sys.stdout)
