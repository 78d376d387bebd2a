"""What every report kind shares: the report's frame, narrowing a filter, top-N tables.

Nothing here queries the store except through the query layer
(:mod:`gitaudit.store.reader`): a kind narrows the user's filter with
:func:`narrowed` (its period and filters kept) and reads from that.
"""

from __future__ import annotations

import fnmatch
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any

from gitaudit.report.model import Cell, Report, Section, Table
from gitaudit.report.options import ReportOptions
from gitaudit.store.reader import EventFilter

NO_EVENTS = "No events in this period."
OTHERS = "(others)"
NONE = "(none)"
# EventFilter fields that are not filters a report shows (period shown apart, paging unused)
_NOT_SHOWN = frozenset({"since", "until", "limit", "after", "grep_common", "grep_ids", "after_id",
                        "before_id", "actor_pseudonyms"})


def iso(moment: datetime | None) -> str | None:
    """``moment`` as RFC 3339 UTC (``2026-11-01T12:00:00Z``), None as None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def filters_of(flt: EventFilter) -> dict[str, Any]:
    """The filters of ``flt`` that filter (period apart), as JSON-ready values."""
    shown: dict[str, Any] = {}
    for spec in fields(flt):
        value = getattr(flt, spec.name)
        if spec.name in _NOT_SHOWN or value in (None, (), False):
            continue
        shown[spec.name] = list(value) if isinstance(value, tuple) else value
    return shown


def new_report(
    kind: str,
    title: str,
    flt: EventFilter,
    options: ReportOptions,
    sections: tuple[Section, ...],
    *,
    events_read: int,
    notes: tuple[str, ...] = (),
) -> Report:
    """A :class:`Report` of ``kind`` over ``options``' period and ``flt``'s filters; a report
    that read no event says so (:data:`NO_EVENTS`) in its notes."""
    if events_read == 0 and NO_EVENTS not in notes:
        notes = (NO_EVENTS, *notes)
    return Report(
        kind=kind,
        title=title,
        generated_at=iso(datetime.now(UTC)) or "",
        period=(iso(options.since or flt.since), iso(options.until or flt.until)),
        filters=filters_of(flt),
        sections=sections,
        events_read=events_read,
        notes=notes,
    )


def narrowed(flt: EventFilter, operations: tuple[str, ...]) -> EventFilter | None:
    """``flt`` restricted to those of ``operations`` its own ``--op`` globs allow (all of
    them when it has none); None when it allows none (then nothing can match)."""
    if flt.operations:
        operations = tuple(
            op for op in operations if any(fnmatch.fnmatchcase(op, p) for p in flt.operations)
        )
    return replace(flt, operations=operations, limit=None) if operations else None


def top_table(
    columns: tuple[str, ...],
    rows: list[tuple[Cell, ...]],
    top: int,
    *,
    total_row: tuple[Cell, ...] | None = None,
    groups: int | None = None,
    share_of: int | None = None,
) -> Table:
    """A table of the first ``top`` of ``rows`` (already in rank order), then one "others"
    row summing the numeric columns of the rest: from ``rows`` when they are all there, else
    ``total_row`` minus the shown rows (``groups`` then says how many groups exist in all).
    ``share_of``: a last column "share %" of every row, column ``share_of`` over its total.
    """
    shown = rows[:top]
    count = (len(rows) if groups is None else groups) - len(shown)
    if total_row is None:
        total_row = tuple(_sum(rows, index) for index in range(len(columns)))
    body = list(shown)
    note = ""
    if count > 0:
        others = tuple(_minus(total, shown, index) for index, total in enumerate(total_row))
        body.append((f"{OTHERS}: {count} more", *others[1:]))
        note = f"top {len(shown)} of {len(shown) + count}"
    if share_of is not None:
        whole = total_row[share_of]
        columns = (*columns, "share %")
        body = [(*row, _share(row[share_of], whole)) for row in body]
    return Table(columns, tuple(body), note=note)


def _share(part: Cell, whole: Cell) -> float | None:
    if isinstance(part, int | float) and isinstance(whole, int | float) and whole:
        return round(100 * part / whole, 1)
    return None


def _sum(rows: list[tuple[Cell, ...]], index: int) -> Cell:
    values = [row[index] for row in rows]
    if all(isinstance(value, int | float) for value in values):
        return sum(value for value in values if isinstance(value, int | float))
    return None


def _minus(total: Cell, shown: list[tuple[Cell, ...]], index: int) -> Cell:
    part = _sum(shown, index)
    if isinstance(total, int | float) and isinstance(part, int | float):
        return round(total - part, 6) if isinstance(total, float) else total - part
    return None
