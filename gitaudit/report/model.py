"""The shape every report has, whatever its kind and whatever it is rendered to.

A report is built in one pass over the events the query layer streams
(:func:`gitaudit.store.reader.iter_events` with one :class:`EventFilter`), by
small accumulators that keep counts, never events; the result is this plain
data, which the renderers (HTML, Markdown, JSON) turn into a file. A report
kind (``usage``, ``soc2``, ``security``, ``gdpr``) is a module of
:mod:`gitaudit.report` with a ``build(...) -> Report`` function; no report
queries the store other than through the query layer.

Blocks:

- :class:`KeyValues`: a short list of facts (period, totals, verification result);
- :class:`Table`: columns and rows of plain values (str, int, float, None);
- :class:`Chart`: a line or bar chart: x labels and one list of values per series;
- :class:`Findings`: things an auditor should look at, each naming the event ids that
  prove it (capped at :data:`MAX_EVIDENCE_IDS`, with the full count);
- :class:`EventStream`: a possibly huge list of whole events (the GDPR export), kept as
  an iterator factory so renderers stream it and nothing holds it.

``to_json`` gives the JSON form (``--format json``); an :class:`EventStream` is
rendered by the renderer itself, streaming, never through ``to_json``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Cell = str | int | float | None

MAX_EVIDENCE_IDS = 50


@dataclass(frozen=True)
class KeyValues:
    """Facts shown as a two-column list."""

    items: tuple[tuple[str, Cell], ...]
    type: Literal["key_values"] = "key_values"


@dataclass(frozen=True)
class Table:
    """A table of plain values; ``note`` says e.g. that rows were cut to the top N."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""
    type: Literal["table"] = "table"


@dataclass(frozen=True)
class Chart:
    """A chart: ``x`` labels, and per series name the values at those labels."""

    kind: Literal["line", "bar", "stacked_bar"]
    title: str
    x: tuple[str, ...]
    series: tuple[tuple[str, tuple[float, ...]], ...]
    y_label: str = ""
    type: Literal["chart"] = "chart"


@dataclass(frozen=True)
class Finding:
    """One thing to look at, with the event ids that prove it."""

    title: str
    severity: Literal["info", "low", "medium", "high"]
    detail: str
    event_ids: tuple[str, ...] = ()
    event_count: int = 0  # how many events prove it (event_ids holds at most MAX_EVIDENCE_IDS)


@dataclass(frozen=True)
class Findings:
    """A list of findings; ``empty`` is what to say when there are none."""

    items: tuple[Finding, ...]
    empty: str = "Nothing found."
    type: Literal["findings"] = "findings"


@dataclass(frozen=True)
class EventStream:
    """Whole events, streamed by the renderer from ``open()`` (called once per rendering)."""

    open: Callable[[], Iterator[dict[str, Any]]]
    type: Literal["events"] = "events"


Block = KeyValues | Table | Chart | Findings | EventStream


@dataclass(frozen=True)
class Section:
    """A titled part of a report."""

    title: str
    blocks: tuple[Block, ...]
    intro: str = ""


@dataclass(frozen=True)
class Report:
    """A whole report: what it covers (kind, period, filters) and its sections."""

    kind: str
    title: str
    generated_at: str  # RFC 3339 UTC
    period: tuple[str | None, str | None]  # since (inclusive), until (exclusive), RFC 3339
    filters: dict[str, Any]
    sections: tuple[Section, ...]
    events_read: int = 0
    notes: tuple[str, ...] = field(default=())


def chart_values(chart: Chart) -> Table:
    """A chart's values as a table: one row per x label, one column per series."""
    rows: tuple[tuple[Cell, ...], ...] = tuple(
        (label, *(values[index] for _, values in chart.series))
        for index, label in enumerate(chart.x)
    )
    return Table(("", *(name for name, _ in chart.series)), rows)


def block_json(block: Block) -> dict[str, Any]:
    """The JSON form of one block (an :class:`EventStream` only as a marker)."""
    if isinstance(block, KeyValues):
        return {"type": block.type, "items": [list(item) for item in block.items]}
    if isinstance(block, Table):
        return {
            "type": block.type,
            "columns": list(block.columns),
            "rows": [list(row) for row in block.rows],
            "note": block.note,
        }
    if isinstance(block, Chart):
        return {
            "type": block.type,
            "kind": block.kind,
            "title": block.title,
            "x": list(block.x),
            "series": {name: list(values) for name, values in block.series},
            "y_label": block.y_label,
        }
    if isinstance(block, Findings):
        return {
            "type": block.type,
            "items": [
                {
                    "title": item.title,
                    "severity": item.severity,
                    "detail": item.detail,
                    "event_ids": list(item.event_ids),
                    "event_count": item.event_count,
                }
                for item in block.items
            ],
            "empty": block.empty,
        }
    return {"type": block.type}


def to_json(report: Report) -> dict[str, Any]:
    """The JSON form of ``report`` (without any :class:`EventStream` content)."""
    return {
        "kind": report.kind,
        "title": report.title,
        "generated_at": report.generated_at,
        "period": {"since": report.period[0], "until": report.period[1]},
        "filters": report.filters,
        "events_read": report.events_read,
        "notes": list(report.notes),
        "sections": [
            {
                "title": section.title,
                "intro": section.intro,
                "blocks": [block_json(block) for block in section.blocks],
            }
            for section in report.sections
        ],
    }
