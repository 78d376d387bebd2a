"""Statistics per group (``gitaudit stats``): count, failures, duration p50/p95.

Built on the query layer's :func:`~gitaudit.store.reader.matching` (the same filters
as ``log``). The database aggregates: counts and failures with ``GROUP BY``
everywhere; percentiles with ``percentile_cont`` on PostgreSQL, and on SQLite
(which has none) with one more pass over ``(group, duration)`` ordered by the
database, read as a stream: only one group's position is held, never the events.
Percentiles interpolate linearly between the two nearest ranks, as
``percentile_cont`` does, so both engines give the same figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, case, func, literal_column

from gitaudit.store.reader import EventFilter, matching
from gitaudit.store.tables import events

QUANTILES: Final = (0.5, 0.95)


def _time_key(dialect: str, hour: bool) -> ColumnElement[Any]:
    if dialect == "sqlite":  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC)
        text = func.substr(events.c.occurred_at, 1, 13 if hour else 10)
        return func.replace(text, " ", "T") if hour else text
    pattern = 'YYYY-MM-DD"T"HH24' if hour else "YYYY-MM-DD"
    return func.to_char(literal_column("occurred_at AT TIME ZONE 'UTC'"), pattern)


GROUPS: Final[dict[str, Callable[[str], ColumnElement[Any]]]] = {
    "operation": lambda dialect: events.c.operation,
    "actor": lambda dialect: func.coalesce(events.c.actor_user, events.c.actor_git_email),
    "repo": lambda dialect: events.c.repo_name,
    "host": lambda dialect: events.c.actor_host,
    "day": lambda dialect: _time_key(dialect, hour=False),
    "hour": lambda dialect: _time_key(dialect, hour=True),
}


@dataclass
class StatsRow:
    """One group's figures (``key`` None: the group of events without that field)."""

    key: str | None
    count: int
    failures: int
    timed: int  # events with a duration
    p50_ms: float | None = None
    p95_ms: float | None = None

    @property
    def failure_rate(self) -> float:
        """Failures per event, 0..1."""
        return self.failures / self.count if self.count else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (durations rounded to 0.1 ms)."""
        return {
            "key": self.key, "count": self.count, "failures": self.failures,
            "failure_rate": round(self.failure_rate, 4),
            "p50_ms": None if self.p50_ms is None else round(self.p50_ms, 1),
            "p95_ms": None if self.p95_ms is None else round(self.p95_ms, 1),
        }  # fmt: skip


def group_stats(conn: Connection, flt: EventFilter, by: str) -> list[StatsRow]:
    """One :class:`StatsRow` per value of ``by`` among the events matching ``flt``, by key."""
    dialect = conn.dialect.name
    key = GROUPS[by](dialect).label("key")
    failures = func.sum(case((events.c.outcome == "failure", 1), else_=0))
    figures: list[ColumnElement[Any]] = [func.count(), failures, func.count(events.c.duration_ms)]
    if dialect == "postgresql":
        figures += [
            func.percentile_cont(q).within_group(events.c.duration_ms) for q in QUANTILES
        ]
    query = matching(conn, flt, key, *figures).group_by(key).order_by(key)
    rows = [
        StatsRow(row[0], int(row[1]), int(row[2] or 0), int(row[3]), *row[4:])
        for row in conn.execute(query)
    ]
    if dialect != "postgresql":
        _sqlite_percentiles(conn, flt, key, rows)
    return rows


def _ranks(count: int) -> dict[int, list[tuple[int, float]]]:
    """rank -> [(quantile index, weight)]: the ranks each quantile of ``count`` values
    interpolates between."""
    needs: dict[int, list[tuple[int, float]]] = {}
    for index, quantile in enumerate(QUANTILES):
        position = quantile * (count - 1)
        low = int(position)
        fraction = position - low
        needs.setdefault(low, []).append((index, 1.0 - fraction))
        if fraction:
            needs.setdefault(low + 1, []).append((index, fraction))
    return needs


def _sqlite_percentiles(
    conn: Connection, flt: EventFilter, key: ColumnElement[Any], rows: list[StatsRow]
) -> None:
    """Fill p50/p95 of ``rows`` from one ordered stream of (key, duration)."""
    by_key = {row.key: row for row in rows if row.timed}
    query = (
        matching(conn, flt, key, events.c.duration_ms)
        .where(events.c.duration_ms.is_not(None))
        .order_by(key, events.c.duration_ms)
    )
    current: Any = object()
    rank = 0
    sums = [0.0] * len(QUANTILES)
    needs: dict[int, list[tuple[int, float]]] = {}
    stream: Iterable[Any] = conn.execution_options(yield_per=2000).execute(query)
    for group, duration in stream:
        if group != current:
            _finish(by_key.get(current), sums)
            current, rank, sums = group, 0, [0.0] * len(QUANTILES)
            row = by_key.get(group)
            needs = _ranks(row.timed) if row else {}
        for index, weight in needs.get(rank, ()):
            sums[index] += weight * float(duration)
        rank += 1
    _finish(by_key.get(current), sums)


def _finish(row: StatsRow | None, sums: list[float]) -> None:
    if row is not None:
        row.p50_ms, row.p95_ms = sums
