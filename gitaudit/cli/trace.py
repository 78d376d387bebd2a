"""`gitaudit trace ID`: the tree of everything one job, command or Claude Code session did.

ID is a correlation id, a Claude Code session id or an event id (see
:mod:`gitaudit.store.trace`). On a terminal: an indented tree, one line per event
with its time, offset from the start, duration and summary; ``--format json``:
the same tree as nested JSON (each event with its ``children``).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from gitaudit.cli.common import SummaryFormat, SummaryFormatOption, load_settings, open_store
from gitaudit.cli.log import NoIngestOption
from gitaudit.cli.output import actor_cell, fit, summary

if TYPE_CHECKING:
    from gitaudit.store.trace import Node, Trace


def _moment(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def write_tree(found: Trace, out: TextIO, width: int) -> None:
    """The trace as indented lines: ``HH:MM:SS.mmm +offset operation outcome ms summary``."""
    first = _moment(found.roots[0].event.get("occurred_at")) if found.roots else None
    out.write(f"trace {found.ident} ({found.kind}; correlation {found.correlation_id}): "
              f"{found.count} event(s)\n")  # fmt: skip
    stack: list[tuple[Node, int]] = [(node, 0) for node in reversed(found.roots)]
    while stack:
        node, depth = stack.pop()
        event = node.event
        moment = _moment(event.get("occurred_at"))
        offset = "" if moment is None or first is None else (
            f"+{(moment - first).total_seconds():.3f}s")
        duration = event.get("duration_ms")
        took = "" if not isinstance(duration, int | float) else f"{duration:.0f}ms"
        outcome = "FAILED " if event.get("outcome") == "failure" else ""
        head = (f"{str(event.get('occurred_at', ''))[11:23]} {offset:>10} {'  ' * depth}"
                f"{event.get('operation')} {outcome}{took} {actor_cell(event)}")  # fmt: skip
        text = summary(event)
        line = f"{head}  {text}" if text else head
        out.write(fit(line.rstrip(), width) + "\n")
        stack.extend((child, depth + 1) for child in reversed(node.children))


def trace_command(
    ident: Annotated[
        str, typer.Argument(metavar="ID", help="Correlation, Claude Code session or event id.")
    ],
    fmt: SummaryFormatOption = SummaryFormat.table,
    no_ingest: NoIngestOption = False,
) -> None:
    """Show the tree of everything one job, command or Claude Code session did."""
    import shutil

    from gitaudit.store.trace import trace

    store, _ = open_store(load_settings(), ingest_first=not no_ingest)
    with store, store.reading() as conn:
        found = trace(conn, ident)
    if fmt is SummaryFormat.json:
        payload = {"trace": found.ident, "kind": found.kind,
                   "correlation_id": found.correlation_id, "count": found.count,
                   "roots": [node.as_dict() for node in found.roots]}  # fmt: skip
        typer.echo(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False))
        return
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else 160
    write_tree(found, sys.stdout, width)
