"""Monthly partitions of ``events`` on PostgreSQL: created ahead, listed for ``db status``.

Revision 0002 turns ``events`` into a table range-partitioned by month on
``occurred_at`` (UTC month boundaries), named ``events_pYYYYMM``, plus a
default partition ``events_default`` that takes any row outside the months
created so far (a host whose clock is years ahead), so intake never fails for
want of a partition. :func:`ensure_partitions` creates the current month and
``months_ahead`` more; ``gitaudit db upgrade`` runs it, the daemon at start
and daily. SQLite keeps one table: there everything here does nothing.

The work is done in the database by functions revision 0002 creates (owned by
the table owner, so the least-privileged writer role can call them):
``gitaudit_create_partition(month)`` and ``gitaudit_ensure_partitions(now,
months_ahead)``. A new partition must not overlap rows already in the default
partition (PostgreSQL refuses to attach it). Deleting them from there is what
the append-only triggers forbid, so the default partition is replaced instead,
in the same transaction: detached and renamed, the new month and a new default
partition created, its rows inserted again through ``events`` (each lands in
its month now), the old table dropped. The default partition holds only
clock-skewed rows, so this copies few.

Every partition gets what the parent has: the row triggers are cloned by
PostgreSQL itself; the TRUNCATE trigger and the revocation of UPDATE, DELETE
and TRUNCATE from PUBLIC are statement-level and per table, so
``gitaudit_protect(table)`` adds them to each partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from sqlalchemy import Connection, text

PREFIX: Final = "events_p"
DEFAULT: Final = "events_default"
MONTHS_AHEAD: Final = 3


@dataclass(frozen=True)
class Partition:
    """One partition of ``events``: its name, bounds (None: the default) and estimated rows."""

    name: str
    start: datetime | None
    end: datetime | None
    rows: int

    @property
    def is_default(self) -> bool:
        """True for the default partition (rows outside every month created)."""
        return self.start is None


def month_of(moment: datetime) -> date:
    """The first day of ``moment``'s month in UTC."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return date(utc.year, utc.month, 1)


def next_month(month: date) -> date:
    """The first day of the month after ``month``."""
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def partition_name(month: date) -> str:
    """``events_pYYYYMM`` of ``month``."""
    return f"{PREFIX}{month.year:04d}{month.month:02d}"


def is_partitioned(conn: Connection) -> bool:
    """Whether ``events`` is a partitioned table (PostgreSQL after revision 0002)."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.scalar(text("SELECT relkind FROM pg_class WHERE oid = to_regclass('events')"))
    return str(kind) == "p"


def list_partitions(conn: Connection) -> list[Partition]:
    """Partitions of ``events`` in range order (the default one last); [] when unpartitioned.

    ``rows`` is PostgreSQL's estimate (``reltuples``, refreshed by ANALYZE), 0 if unknown.
    """
    if not is_partitioned(conn):
        return []
    rows = conn.execute(
        text(
            "SELECT c.relname, greatest(c.reltuples, 0)::bigint AS rows, "
            "pg_get_expr(c.relpartbound, c.oid) AS bound "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass('events') ORDER BY c.relname"
        )
    ).all()
    found = []
    for name, estimate, bound in rows:
        month = _month_of_name(str(name))
        if month is None or bound == "DEFAULT":
            found.append(Partition(str(name), None, None, int(estimate)))
            continue
        start = datetime(month.year, month.month, 1, tzinfo=UTC)
        after = next_month(month)
        found.append(
            Partition(str(name), start, datetime(after.year, after.month, 1, tzinfo=UTC),
                      int(estimate))
        )  # fmt: skip
    last = datetime.max.replace(tzinfo=UTC)
    return sorted(found, key=lambda part: (part.start or last, part.name))


def _month_of_name(name: str) -> date | None:
    digits = name.removeprefix(PREFIX)
    if not name.startswith(PREFIX) or len(digits) != 6 or not digits.isdigit():
        return None
    return date(int(digits[:4]), int(digits[4:]), 1)


def ensure_partitions(
    conn: Connection, now: datetime | None = None, months_ahead: int = MONTHS_AHEAD
) -> list[str]:
    """Create the partitions of ``now``'s month and ``months_ahead`` more that are missing.

    Calls ``gitaudit_ensure_partitions`` (revision 0002), a ``SECURITY DEFINER`` function
    that runs as the table owner, so a daemon logged in as ``gitaudit_writer`` may call it
    without owning anything; it runs in the caller's transaction, and concurrent callers
    (several daemons) take turns on an advisory lock. Returns the names created; does
    nothing on SQLite or before revision 0002.
    """
    if not is_partitioned(conn):
        return []
    created = conn.scalars(
        text("SELECT gitaudit_ensure_partitions(:now, :ahead)"),
        {"now": now or datetime.now(UTC), "ahead": months_ahead},
    )
    return [str(name) for name in created]
