"""Statistics per group (``gitaudit stats``): count, failures, duration p50/p95.

Built on the query layer's :func:`~gitaudit.store.reader.matching` (the same filters
as ``log``). The database aggregates: counts and failures with ``GROUP BY``
everywhere; percentiles with ``percentile_cont`` on PostgreSQL; on SQLite (which
has no percentile function) one pass over ``(group, outcome, duration)`` ordered
by group by the database, read as a stream: one group's durations are held at a
time, never the events.
Percentiles interpolate linearly between the two nearest ranks, as
``percentile_cont`` does, so both engines give the same figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, case, func, literal_column

from gitaudit.store.reader import EventFilter, matching
from gitaudit.store.subjects import Revealer
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
    """One :class:`StatsRow` per value of ``by`` among the events matching ``flt``, by key
    (``actor`` keys revealed: see :mod:`gitaudit.store.subjects`)."""
    rows = _group_stats(conn, flt, by)
    if by != "actor":
        return rows
    revealer = Revealer(conn)
    for row in rows:
        row.key = revealer.value(row.key)
    nones = [row for row in rows if row.key is None]
    named = sorted((row for row in rows if row.key is not None), key=lambda row: str(row.key))
    return nones + named if rows and rows[0].key is None else named + nones


def _group_stats(conn: Connection, flt: EventFilter, by: str) -> list[StatsRow]:
    dialect = conn.dialect.name
    key = GROUPS[by](dialect).label("key")
    if dialect != "postgresql":
        return _sqlite_stats(conn, flt, key)
    failures = func.sum(case((events.c.outcome == "failure", 1), else_=0))
    percentiles = [func.percentile_cont(q).within_group(events.c.duration_ms) for q in QUANTILES]
    query = matching(conn, flt, key, func.count(), failures, func.count(events.c.duration_ms),
                     *percentiles).group_by(key).order_by(key)  # fmt: skip
    return [
        StatsRow(row[0], int(row[1]), int(row[2] or 0), int(row[3]), *row[4:])
        for row in conn.execute(query)
    ]


def percentile(ordered: list[float], quantile: float) -> float:
    """``quantile`` of sorted values, interpolated linearly as ``percentile_cont`` does."""
    position = quantile * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _sqlite_stats(conn: Connection, flt: EventFilter, key: ColumnElement[Any]) -> list[StatsRow]:
    """SQLite has no percentile function: one pass over (key, outcome, duration) ordered by
    key (the database sorts, spilling to disk), holding one group's durations at a time."""
    query = matching(conn, flt, key, events.c.outcome, events.c.duration_ms).order_by(key)
    rows: list[StatsRow] = []
    current: StatsRow | None = None
    durations: list[float] = []
    stream: Iterable[Any] = conn.execution_options(yield_per=5000).execute(query)
    for group, outcome, duration in stream:
        if current is None or group != current.key:
            _close(current, durations)
            current, durations = StatsRow(group, 0, 0, 0), []
            rows.append(current)
        current.count += 1
        current.failures += outcome == "failure"
        if duration is not None:
            durations.append(float(duration))
    _close(current, durations)
    return rows


def _close(row: StatsRow | None, durations: list[float]) -> None:
    if row is None or not durations:
        return
    durations.sort()
    row.timed = len(durations)
    row.p50_ms, row.p95_ms = (percentile(durations, q) for q in QUANTILES)
