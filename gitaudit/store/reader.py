"""Queries: filters on the indexed columns, results from the authoritative bodies.

Glob filters follow :mod:`fnmatch` rules (``*``, ``?``, ``[seq]``, ``[!seq]``,
case-sensitive) and are translated to SQL so the database does the filtering:
a pattern without wildcards becomes ``=``; on SQLite a pattern becomes ``GLOB``
(same syntax, case-sensitive, can use indexes); on PostgreSQL ``*``/``?``
patterns become ``LIKE`` and bracket patterns a regular expression (``~``).

This is the one query layer of every reader (``log``, ``tail``'s backlog,
``stats``, ``trace``, ``claude usage``, reports): a filter means the same thing
everywhere and every documented filter has an index that serves it in time
order (revision 0005). Results are streams: :func:`iter_events` hands rows from
the cursor to the caller (server-side cursor on PostgreSQL), whatever the
limit, so memory stays constant however many events match.

Identities are stored as subject tokens (:mod:`gitaudit.store.subjects`):
:func:`iter_events` reveals them (the clear identity, or ``forgotten subject
<token>``), :func:`iter_bodies` gives the stored text unless asked to reveal, and an
``actor`` filter also matches the tokens of the identities it names.

Order is ``(occurred_at, chain_id, seq)`` everywhere; keyset pages
(``after_id`` / ``before_id``) continue from an event's position in it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    false,
    func,
    literal_column,
    or_,
    select,
    tuple_,
    union,
)

from gitaudit.errors import UsageError
from gitaudit.store.search import grep_clause, is_common, pg_rare_matches
from gitaudit.store.subjects import actor_pseudonyms, reveal_bodies
from gitaudit.store.tables import events

_WILDCARDS: Final = frozenset("*?[")
_decode: Final = msgspec.json.Decoder().decode


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
    severity: str | None = None
    source: str | None = None
    host: str | None = None
    branch: str | None = None
    agent: str | None = None
    session: str | None = None
    grep: str | None = None
    grep_raw: bool = False
    grep_common: bool = False  # set by the query layer: see search.grep_clause
    grep_ids: tuple[str, ...] | None = None  # set by the query layer: search.pg_rare_matches
    actor_pseudonyms: tuple[str, ...] = ()  # set by the query layer: see subjects
    after_id: str | None = None
    before_id: str | None = None


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


def _alternatives(flt: EventFilter, dialect: str) -> list[list[ColumnElement[bool]]]:
    """The filters that hold when any one of several conditions does (one list each): the
    actor's three columns, the repository's two, a session's two ways, several ``--op``."""
    groups: list[list[ColumnElement[bool]]] = []
    if flt.operations:
        groups.append([glob_clause(events.c.operation, op, dialect) for op in flt.operations])
    if flt.actor is not None:
        actors = (events.c.actor_user, events.c.actor_git_name, events.c.actor_git_email)
        groups.append([glob_clause(column, flt.actor, dialect) for column in actors])
        if flt.actor_pseudonyms:
            groups[-1] += [column.in_(flt.actor_pseudonyms) for column in actors]
    if flt.repo is not None:
        repos = (events.c.repo_name, events.c.repo_path)
        groups.append([glob_clause(column, flt.repo, dialect) for column in repos])
    if flt.session is not None:
        groups.append([events.c.correlation_id == flt.session,
                       agent_field(dialect, "session_id") == flt.session])  # fmt: skip
    return groups


def _conditions(flt: EventFilter, dialect: str) -> list[ColumnElement[bool]]:
    """Every condition of ``flt`` except :func:`_alternatives`."""
    where: list[ColumnElement[bool]] = []
    if flt.since is not None:
        where.append(events.c.occurred_at >= _utc(flt.since))
    if flt.until is not None:
        where.append(events.c.occurred_at < _utc(flt.until))
    if flt.outcome is not None:
        where.append(events.c.outcome == flt.outcome)
    if flt.correlation_id is not None:
        where.append(events.c.correlation_id == flt.correlation_id)
    if flt.after:
        listed = [chain for chain, _ in flt.after]
        later = (and_(events.c.chain_id == chain, events.c.seq > seq) for chain, seq in flt.after)
        where.append(or_(*later, events.c.chain_id.not_in(listed)))
    return where + _more_conditions(flt, dialect)


def _more_conditions(flt: EventFilter, dialect: str) -> list[ColumnElement[bool]]:
    """The filters of ``log``'s second row of options (severity ... grep)."""
    where: list[ColumnElement[bool]] = []
    for column, value in ((events.c.severity, flt.severity), (events.c.source, flt.source)):
        if value is not None:
            where.append(column == value)
    if flt.host is not None:
        where.append(glob_clause(events.c.actor_host, flt.host, dialect))
    if flt.branch is not None:
        where.append(glob_clause(events.c.repo_branch, flt.branch, dialect))
    if flt.agent is not None:
        where.append(glob_clause(agent_field(dialect, "tool"), flt.agent, dialect))
    if flt.grep_ids is not None:  # every match of a rare search, found first (PostgreSQL)
        where.append(events.c.id.in_(flt.grep_ids) if flt.grep_ids else false())
    elif flt.grep is not None:
        where.append(grep_clause(dialect, flt.grep, raw=flt.grep_raw, common=flt.grep_common))
    return where


def agent_field(dialect: str, name: str) -> ColumnElement[Any]:
    """``actor.agent.<name>`` of the body, spelled as revision 0005 indexes it."""
    if dialect == "sqlite":
        return literal_column(f"json_extract(body, '$.actor.agent.{name}')")
    return literal_column(f"(gitaudit_body(body) #>> '{{actor,agent,{name}}}')")


ORDER: Final = (events.c.occurred_at, events.c.chain_id, events.c.seq)
Position = tuple[Any, str, int]


def position_of(conn: Connection, event_id: str, option: str) -> Position:
    """Where event ``event_id`` sits in the time order; UsageError when no event has that id."""
    row = conn.execute(select(*ORDER).where(events.c.id == event_id)).first()
    if row is None:
        raise UsageError(
            f"{option}: no event has the id {event_id!r}",
            "use an id printed by `gitaudit log --format jsonl` (the `id` field)",
        )
    return (row[0], str(row[1]), int(row[2]))


def _keyset(after: Position | None, before: Position | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if after is not None:
        where += [events.c.occurred_at >= after[0], tuple_(*ORDER) > tuple_(*after)]
    if before is not None:
        where += [events.c.occurred_at <= before[0], tuple_(*ORDER) < tuple_(*before)]
    return where


def build_query(
    flt: EventFilter,
    dialect: str,
    after: Position | None = None,
    before: Position | None = None,
    columns: tuple[ColumnElement[Any], ...] = (events.c.body,),
) -> Select[Any]:
    """The SELECT of ``columns`` for ``flt`` in the order it is read from the indexes: oldest
    first, except newest first for a limit without ``after`` (the newest N are wanted).

    A limited query whose filters have alternatives (``--actor`` is the user, git name or
    git email) becomes a UNION of one arm per combination, each read from its own index
    with the limit pushed down, merged and cut again; otherwise the alternatives are ORed.
    """
    where = [*_conditions(flt, dialect), *_keyset(after, before)]
    groups = _alternatives(flt, dialect)
    if flt.limit is not None and flt.limit <= 0:
        return select(*columns).select_from(events).where(false())
    newest = flt.limit is not None and after is None
    order = [column.desc() for column in ORDER] if newest else list(ORDER)
    arms = list(itertools.product(*groups))
    if flt.limit is None or len(arms) < 2:
        alternatives = [or_(*group) if len(group) > 1 else group[0] for group in groups]
        query = select(*columns).select_from(events).where(*where, *alternatives)
        query = query.order_by(*order)
        return query if flt.limit is None else query.limit(flt.limit)
    names = [f"c{index}" for index in range(len(columns))]
    labelled = [column.label(name) for column, name in zip(columns, names, strict=True)]
    keys = [column.label(f"k_{column.name}") for column in ORDER]
    merged = union(*(
        select(select(*labelled, *keys).select_from(events).where(*where, *arm)
               .order_by(*order).limit(flt.limit).subquery(f"arm{index}"))
        for index, arm in enumerate(arms)
    )).subquery("merged")  # fmt: skip
    merged_keys = [merged.c[f"k_{column.name}"] for column in ORDER]
    merged_order = [key.desc() for key in merged_keys] if newest else merged_keys
    return (
        select(*(merged.c[name].label(column.key or name)
                 for column, name in zip(columns, names, strict=True)))
        .order_by(*merged_order)
        .limit(flt.limit)
    )  # fmt: skip


def resolve_grep(conn: Connection, flt: EventFilter) -> EventFilter:
    """``flt`` with what its ``--grep`` needs to be read well: whether the words are
    common (SQLite), or the ids of every match of rare words (PostgreSQL)."""
    if flt.grep is None or flt.grep_ids is not None:
        return flt
    if conn.dialect.name == "sqlite":
        return replace(flt, grep_common=is_common(conn, flt.grep, raw=flt.grep_raw))
    return replace(flt, grep_ids=pg_rare_matches(conn, flt.grep, raw=flt.grep_raw))


def with_subjects(conn: Connection, flt: EventFilter) -> EventFilter:
    """``flt`` with the subject tokens of its ``actor`` filled in."""
    if flt.actor is None:
        return flt
    return replace(flt, actor_pseudonyms=actor_pseudonyms(conn, flt.actor))


def ordered_query(conn: Connection, flt: EventFilter) -> Select[Any]:
    """The SELECT of bodies matching ``flt``, oldest first (keyset ids resolved here)."""
    flt = resolve_grep(conn, with_subjects(conn, flt))
    after = position_of(conn, flt.after_id, "--after") if flt.after_id else None
    before = position_of(conn, flt.before_id, "--before") if flt.before_id else None
    newest = flt.limit is not None and after is None
    columns = (events.c.body, *ORDER) if newest else (events.c.body,)
    query = build_query(flt, conn.dialect.name, after, before, columns)
    if not newest:
        return query
    page = query.subquery("page")  # the newest N, read newest first, shown oldest first
    return select(page.c.body).order_by(page.c.occurred_at, page.c.chain_id, page.c.seq)


def query_events(conn: Connection, flt: EventFilter) -> list[dict[str, Any]]:
    """Full event dicts (integrity fields included) matching ``flt``, oldest first."""
    return list(iter_events(conn, flt))


def parse_body(text: str) -> Any:
    """``json.loads(text)``, twice as fast: msgspec gives the same values or refuses (a lone
    surrogate, ``NaN``, a number out of a float's range), and then :mod:`json` decides."""
    try:
        return _decode(text)
    except msgspec.MsgspecError:
        return json.loads(text)


def iter_events(conn: Connection, flt: EventFilter, batch: int = 500) -> Iterator[dict[str, Any]]:
    """:func:`query_events` as a stream: rows go from the cursor to the caller, ``batch`` at a
    time, in constant memory whatever the limit."""
    for body in iter_bodies(conn, flt, batch, reveal=True):
        yield parse_body(body)


def iter_bodies(
    conn: Connection, flt: EventFilter, batch: int = 500, *, reveal: bool = False
) -> Iterator[str]:
    """The stored bodies (canonical JSON text) of :func:`iter_events`, unparsed; with
    ``reveal`` the subject tokens in them are shown as readers show them (the text then
    no longer hashes to the record's ``hash``)."""
    query = ordered_query(conn, flt)
    bodies = conn.execution_options(yield_per=batch).scalars(query)
    yield from reveal_bodies(conn, bodies) if reveal else bodies


def matching(conn: Connection, flt: EventFilter, *columns: ColumnElement[Any]) -> Select[Any]:
    """SELECT ``columns`` of every event matching ``flt``, unordered and without its limit
    (``after_id``/``before_id`` kept): what aggregating readers (count, stats) build on."""
    after = position_of(conn, flt.after_id, "--after") if flt.after_id else None
    before = position_of(conn, flt.before_id, "--before") if flt.before_id else None
    unlimited = replace(resolve_grep(conn, with_subjects(conn, flt)), limit=None)
    return build_query(unlimited, conn.dialect.name, after, before, columns).order_by(None)


def count_matching(conn: Connection, flt: EventFilter) -> int:
    """How many events match ``flt`` (its limit ignored; ``after_id``/``before_id`` kept)."""
    return int(conn.scalar(matching(conn, flt, func.count())) or 0)


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
