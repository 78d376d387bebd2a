"""Queries: filters on the indexed columns, results from the authoritative bodies.

Glob filters follow :mod:`fnmatch` rules (``*``, ``?``, ``[seq]``, ``[!seq]``,
case-sensitive) and are translated to SQL so the database does the filtering:
a pattern without wildcards becomes ``=``; on SQLite a pattern becomes ``GLOB``
(same syntax, case-sensitive, can use indexes); on PostgreSQL ``*``/``?``
patterns become ``LIKE`` and bracket patterns a regular expression (``~``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, Select, and_, false, func, or_, select

from gitaudit.store.tables import events

_WILDCARDS: Final = frozenset("*?[")


@dataclass(frozen=True)
class EventFilter:
    """Which events :meth:`Store.query` returns. Empty fields do not filter.

    ``since`` is inclusive and ``until`` exclusive (naive datetimes are UTC).
    ``operations``, ``actor`` and ``repo`` take exact values or fnmatch globs;
    ``actor`` matches the OS user, git name or git email, ``repo`` the
    repository name or path. ``limit`` keeps the newest ``limit`` events; the
    result is always oldest first. ``after`` (``tail -f``'s cursor) keeps only
    events recorded after the given ``(chain_id, seq)`` positions, plus every
    event of chains it does not list; None does not filter.
    """

    since: datetime | None = None
    until: datetime | None = None
    operations: tuple[str, ...] = ()
    actor: str | None = None
    repo: str | None = None
    outcome: str | None = None
    correlation_id: str | None = None
    limit: int | None = None
    after: tuple[tuple[str, int], ...] | None = None


def _like_pattern(pattern: str) -> str:
    """An fnmatch pattern made only of literals, ``*`` and ``?`` as SQL LIKE (escape ``\\``)."""
    out = []
    for char in pattern:
        if char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char in "%_\\":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def _regex_class(pattern: str, start: int) -> tuple[str, int] | None:
    """Translate the ``[...]`` starting at ``start``; None when it is not a closed class."""
    index = start + 1
    negate = index < len(pattern) and pattern[index] == "!"
    index += negate
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    end = pattern.find("]", index)
    if end < 0:
        return None
    members = pattern[start + 1 + negate : end]
    # In a PostgreSQL ARE, backslash stays special inside brackets: escape it, "[" and a
    # leading "^" (literal in fnmatch).
    members = members.replace("\\", "\\\\").replace("[", "\\[")
    if members.startswith("^"):
        members = "\\" + members
    return ("[^" if negate else "[") + members + "]", end + 1


def _regex_pattern(pattern: str) -> str:
    """An fnmatch pattern as an anchored PostgreSQL regular expression."""
    out = ["^"]
    index = 0
    while index < len(pattern):
        char = pattern[index]
        translated = _regex_class(pattern, index) if char == "[" else None
        if translated is not None:
            text, index = translated
            out.append(text)
            continue
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        else:
            out.append(char if char.isalnum() else "\\" + char)
        index += 1
    out.append("$")
    return "".join(out)


def glob_clause(column: ColumnElement[Any], pattern: str, dialect: str) -> ColumnElement[bool]:
    """``column`` matches the fnmatch ``pattern``, in the SQL of ``dialect``."""
    if not _WILDCARDS.intersection(pattern):
        return column == pattern
    if dialect == "sqlite":
        return column.op("GLOB", is_comparison=True)(pattern.replace("[!", "[^"))
    if "[" not in pattern:
        return column.like(_like_pattern(pattern), escape="\\")
    return column.regexp_match(_regex_pattern(pattern))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _conditions(flt: EventFilter, dialect: str) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if flt.since is not None:
        where.append(events.c.occurred_at >= _utc(flt.since))
    if flt.until is not None:
        where.append(events.c.occurred_at < _utc(flt.until))
    if flt.operations:
        where.append(or_(*(glob_clause(events.c.operation, op, dialect) for op in flt.operations)))
    if flt.actor is not None:
        actors = (events.c.actor_user, events.c.actor_git_name, events.c.actor_git_email)
        where.append(or_(*(glob_clause(column, flt.actor, dialect) for column in actors)))
    if flt.repo is not None:
        repos = (events.c.repo_name, events.c.repo_path)
        where.append(or_(*(glob_clause(column, flt.repo, dialect) for column in repos)))
    if flt.outcome is not None:
        where.append(events.c.outcome == flt.outcome)
    if flt.correlation_id is not None:
        where.append(events.c.correlation_id == flt.correlation_id)
    if flt.after:
        listed = [chain for chain, _ in flt.after]
        later = (and_(events.c.chain_id == chain, events.c.seq > seq) for chain, seq in flt.after)
        where.append(or_(*later, events.c.chain_id.not_in(listed)))
    return where


def build_query(flt: EventFilter, dialect: str) -> Select[Any]:
    """The SELECT of bodies for ``flt``; newest first when a limit applies, else oldest first."""
    query = select(events.c.body).where(*_conditions(flt, dialect))
    order = (events.c.occurred_at, events.c.chain_id, events.c.seq)
    if flt.limit is None:
        return query.order_by(*order)
    if flt.limit <= 0:
        return query.where(false())
    return query.order_by(*(column.desc() for column in order)).limit(flt.limit)


def query_events(conn: Connection, flt: EventFilter) -> list[dict[str, Any]]:
    """Full event dicts (integrity fields included) matching ``flt``, oldest first."""
    bodies = conn.scalars(build_query(flt, conn.dialect.name)).all()
    if flt.limit is not None:
        bodies = list(reversed(bodies))
    return [json.loads(body) for body in bodies]


def iter_events(conn: Connection, flt: EventFilter, batch: int = 500) -> Iterator[dict[str, Any]]:
    """:func:`query_events` as a stream: rows go from the cursor to the caller, ``batch`` at a
    time (a ``limit`` needs the newest rows first, so that case is read whole and reversed)."""
    if flt.limit is not None:
        yield from query_events(conn, flt)
        return
    query = build_query(flt, conn.dialect.name)
    for body in conn.execution_options(yield_per=batch).scalars(query):
        yield json.loads(body)


def chain_after(conn: Connection, chain_id: str, seq: int, limit: int) -> list[dict[str, Any]]:
    """The next ``limit`` events of one chain after ``seq``, in chain order (a sink's catch-up)."""
    query = (
        select(events.c.body)
        .where(events.c.chain_id == chain_id, events.c.seq > seq)
        .order_by(events.c.seq)
        .limit(limit)
    )
    return [json.loads(body) for body in conn.scalars(query)]


def chain_heads(conn: Connection) -> dict[str, int]:
    """The highest stored ``seq`` of every chain (the cursor ``EventFilter.after`` takes)."""
    query = select(events.c.chain_id, func.max(events.c.seq)).group_by(events.c.chain_id)
    return {chain: int(seq) for chain, seq in conn.execute(query)}


def count_events(conn: Connection) -> int:
    """Number of stored events, all chains."""
    return int(conn.scalar(select(func.count()).select_from(events)) or 0)
