"""Rendering events for readers: table, json, jsonl, csv."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

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


def write_json(events: Sequence[dict[str, Any]], out: TextIO) -> None:
    """A JSON array of event objects."""
    json.dump(list(events), out, indent=2, sort_keys=True, ensure_ascii=False)
    out.write("\n")


def write_jsonl(events: Sequence[dict[str, Any]], out: TextIO) -> None:
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


def write_csv(events: Sequence[dict[str, Any]], out: TextIO) -> None:
    """Flattened columns (CSV_COLUMNS); nested values as JSON."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_row(event) for event in events)


def _items(details: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The objects listed under ``details[key]`` (anything else there is skipped)."""
    items = details.get(key) if isinstance(details, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _summary(event: dict[str, Any]) -> str:
    details = event.get("details") or {}
    if event.get("operation") == "git.push":
        marks = []
        for ref in _items(details, "refs"):
            flag = (
                "+"
                if ref.get("forced")
                else "-"
                if ref.get("deleted")
                else "*"
                if ref.get("created")
                else ""
            )
            marks.append(f"{flag}{ref.get('ref')}")
        return " ".join(marks)
    if event.get("operation") == "claude.request":
        model, tokens, cost = claude_cells(event)
        return f"{model} {tokens} ${cost}" if cost else f"{model} {tokens}"
    if str(event.get("operation", "")).startswith("conflict."):
        return " ".join(str(item.get("path")) for item in _items(details, "files"))
    error = _get(event, "result.error")
    return str(error).splitlines()[0][:60] if error else ""


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
        _summary(event),
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


_WHOLE = frozenset({"model", "cost $", "in", "out"})  # never folded: read and compared whole


def write_table(events: Sequence[dict[str, Any]], out: TextIO) -> None:
    """A human table (rich) with the most useful columns.

    A listing of ``claude.request`` events alone (``log --op claude.request``) gets
    model, token and cost columns instead of branch and summary.
    """
    from rich.console import Console
    from rich.table import Table

    claude = bool(events) and all(event.get("operation") == "claude.request" for event in events)
    columns, row = (CLAUDE_TABLE_COLUMNS, claude_row) if claude else (TABLE_COLUMNS, table_row)
    table = Table(show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column in _WHOLE)
    for event in events:
        table.add_row(*row(event))
    Console(file=out, width=None if out.isatty() else 160).print(table)
    print(f"{len(events)} event(s)", file=out)


WRITERS = {
    OutputFormat.table: write_table,
    OutputFormat.json: write_json,
    OutputFormat.jsonl: write_jsonl,
    OutputFormat.csv: write_csv,
}


def render(events: Sequence[dict[str, Any]], fmt: OutputFormat, out: TextIO | None = None) -> None:
    """Write events in the chosen format (stdout by default)."""
    WRITERS[fmt](events, out or sys.stdout)
