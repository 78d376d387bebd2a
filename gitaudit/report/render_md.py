"""``--format md``: a report as Markdown, written as it goes.

Tables become Markdown tables; a chart becomes a small table of its values (one row
per x label, one column per series); findings a list naming their event ids (``gitaudit
trace ID`` shows one); an :class:`~gitaudit.report.model.EventStream` a fenced block of
JSON lines streamed from the store. Text from events is escaped so that it shows as
written: ``|`` cannot break a table and ``<``/``>``/``&`` are entities, so a Markdown
viewer that allows inline HTML never runs or renders markup an event carried.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TextIO

from gitaudit.report.model import (
    Block,
    Cell,
    Chart,
    EventStream,
    Findings,
    KeyValues,
    Report,
    Table,
    chart_values,
)

_ESCAPES = str.maketrans({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "\\|", "\n": " ", "\r": " ",
    "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]",
})  # fmt: skip


def text(value: Cell) -> str:
    """A value as Markdown text that shows exactly as written (``-`` for None)."""
    if value is None:
        return "-"
    if isinstance(value, float):  # at most 6 decimals (costs in USD), none when whole
        return f"{value:.6f}".rstrip("0").rstrip(".")
    return str(value).translate(_ESCAPES)


def write_md(report: Report, out: TextIO) -> None:
    """Write ``report`` as Markdown to ``out``."""
    out.write(f"# {text(report.title)}\n\n")
    since, until = report.period
    out.write(f"- period: {text(since or 'the first event')} to {text(until or 'now')}"
              " (until exclusive, UTC)\n")  # fmt: skip
    for name, value in report.filters.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        out.write(f"- {text(name)}: {text(shown)}\n")
    out.write(f"- events read: {report.events_read}\n- generated: {text(report.generated_at)}\n")
    for note in report.notes:
        out.write(f"\n> {text(note)}\n")
    for section in report.sections:
        out.write(f"\n## {text(section.title)}\n\n")
        if section.intro:
            out.write(f"{text(section.intro)}\n\n")
        for block in section.blocks:
            _block(out, block)


def _table(out: TextIO, columns: Iterable[Cell], rows: Iterable[Iterable[Cell]]) -> None:
    head = [text(column) for column in columns]
    out.write("| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n")
    for row in rows:
        out.write("| " + " | ".join(text(cell) for cell in row) + " |\n")
    out.write("\n")


def _block(out: TextIO, block: Block) -> None:
    if isinstance(block, KeyValues):
        _table(out, ("", ""), block.items)
    elif isinstance(block, Table):
        if block.rows:
            _table(out, block.columns, block.rows)
        else:
            out.write("(none)\n\n")
        if block.note:
            out.write(f"_{text(block.note)}_\n\n")
    elif isinstance(block, Chart):
        out.write(f"**{text(block.title)}**" + (f" ({text(block.y_label)})" if block.y_label
                                                else "") + "\n\n")  # fmt: skip
        values = chart_values(block)
        _table(out, values.columns, values.rows)
    elif isinstance(block, Findings):
        _findings(out, block)
    elif isinstance(block, EventStream):
        out.write("```json\n")
        for event in block.open():
            out.write(json.dumps(event, ensure_ascii=False).replace("```", "`\\u0060`") + "\n")
        out.write("```\n\n")


def _findings(out: TextIO, block: Findings) -> None:
    if not block.items:
        out.write(f"{text(block.empty)}\n\n")
        return
    for item in block.items:
        out.write(f"- **{text(item.severity)}** {text(item.title)}: {text(item.detail)}\n")
        if item.event_ids:
            shown = ", ".join(f"`{event_id}`" for event_id in item.event_ids)
            more = item.event_count - len(item.event_ids)
            out.write(f"  - events ({item.event_count}): {shown}"
                      + (f" and {more} more" if more > 0 else "") + "\n")  # fmt: skip
    out.write("\n_Show an event and everything around it: `gitaudit trace ID`._\n\n")
