"""Verifying a chain at the speed of reading it: a fast path in front of the exact checks.

``gitaudit verify`` spent most of its time re-serialising every body to canonical
JSON, building SQLAlchemy rows with type conversion, and building a dict of
indexed values per row. For a record exactly as the writer stored it, none of
that is needed, so each row is first tried on a fast path that accepts it only
when every check holds, and anything it does not accept goes to the exact
checks of :class:`~gitaudit.store.integrity._ChainCheck`, which decide (and
name the problem). The fast path:

- reads the raw driver values (stdlib ``sqlite3`` / psycopg server-side cursor,
  no SQLAlchemy row processing);
- parses the body once (msgspec, else :mod:`json` for what msgspec refuses);
- checks the hash over the stored text itself: the writer hashes the canonical
  body without its ``"hash":"H",`` and ``"prev_hash":"P",`` entries (see
  ``ChainWriter._encode``), so the stored text with exactly those two entries
  removed (the ``prev_hash`` entry must occur exactly once) must hash, after ``P``, to ``H``. When
  it does, that text *is* what the writer hashed (SHA-256 / HMAC-SHA256
  collision resistance; ``H`` cannot occur in its own input), so the parsed body
  is the hashed record plus those two top-level keys. A body that is not in the
  writer's form (re-encoded, lone surrogates, reformatted) is not accepted
  here and gets the exact, re-serialising check;
- compares the indexed columns as one tuple against the values taken from the
  body (``occurred_at`` in the store's own storage form).

The array path (:func:`_feed_array`) goes further, because fetching 22 columns as
22 Python objects cost more than parsing and hashing together: the query
returns, besides ``seq``, ``body`` and ``duration_ms``, the other indexed
columns as *one* JSON array built by the database, and the body is decoded by
msgspec into a struct of just the indexed fields (unknown fields skipped);
``duration_ms`` is compared as a float, the rest as that array:

- SQLite (``json_array``, cast to bytes): the row is accepted when msgspec's
  encoding of the body's values is byte for byte the array, which holds only
  when every value is equal and of the same JSON type (strings are escaped
  alike by both; a REAL ``seq`` or ``actor_uid``, whose 15-digit rendering could
  hide a change, or an ``occurred_at`` not in the writer's
  ``YYYY-MM-DD HH:MM:SS.ffffff`` form, yields no array at all). If the query
  itself fails (a BLOB column cannot go into a JSON array), the chain is walked
  again from its start on the general path.
- PostgreSQL (``json_build_array``, typed columns, ``occurred_at`` rendered in UTC
  to the microsecond): the server spaces its JSON out, so the array is decoded
  and compared as a tuple.

The body's ``hash`` and ``prev_hash`` are read from the struct; the array holds the
``hash`` and ``prev_hash`` columns, so those agree too. ``bench/bench_verify.py``
measures verify against the floor.

Same checks, same order of precedence, same problem reported: a row the fast
path does not accept is checked exactly as before.
"""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from hashlib import sha256 as _sha256
from typing import TYPE_CHECKING, Any, Final

import msgspec
from sqlalchemy import Connection, select

from gitaudit.store.integrity import REJECTED_OPERATION
from gitaudit.store.tables import DENORMALIZED, events

if TYPE_CHECKING:
    from gitaudit.store.integrity import ChainHasher, _ChainCheck

_COLUMNS: Final = ", ".join(DENORMALIZED) + ", body"
_N: Final = len(DENORMALIZED)
_BODY: Final = _N
_SEQ: Final = DENORMALIZED.index("seq")
_ID: Final = DENORMALIZED.index("id")
_HASH: Final = DENORMALIZED.index("hash")
_OPERATION: Final = DENORMALIZED.index("operation")
_FETCH: Final = 2000

Progress = Callable[[int, int], None]

_msgspec_loads: Final = msgspec.json.Decoder().decode


def _loads(text: str) -> Any:
    try:
        return _msgspec_loads(text)
    except msgspec.MsgspecError:
        pass  # e.g. a lone surrogate escape: json reads it as the exact check does
    try:
        return json.loads(text)
    except ValueError:
        return None


# --- SQLite: the indexed columns as one JSON array, the body as a struct of them ----------


class _Actor(msgspec.Struct):
    user: Any = None
    uid: Any = None
    git_name: Any = None
    git_email: Any = None
    host: Any = None


class _Repo(msgspec.Struct):
    name: Any = None
    path: Any = None
    branch: Any = None


class _Indexed(msgspec.Struct):
    """The body's fields that indexed columns copy (``denormalize``); the rest is skipped."""

    id: Any = None
    chain_id: Any = None
    seq: Any = None
    occurred_at: Any = None
    operation: Any = None
    category: Any = None
    outcome: Any = None
    severity: Any = None
    source: Any = None
    correlation_id: Any = None
    parent_id: Any = None
    actor: _Actor | None = None
    repo: _Repo | None = None
    duration_ms: Any = None
    prev_hash: str = ""  # typed: a body without them (or not strings) is not for this path
    hash: str = ""


_NO_ACTOR: Final = _Actor()
_NO_REPO: Final = _Repo()
_decode_indexed: Final = msgspec.json.Decoder(_Indexed).decode
_encode: Final = msgspec.json.Encoder().encode
_STRUCT_ERRORS: Final = (msgspec.MsgspecError, TypeError, ValueError, UnicodeEncodeError)

# ``occurred_at`` as the writer stores it in SQLite, and as its body states it: the
# array holds the body's form, made from a column in exactly the stored form only.
_STORED_STAMP: Final = (
    "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]"
    ".[0-9][0-9][0-9][0-9][0-9][0-9]"
)
_ARRAY_COLUMNS: Final = tuple(
    "substr(occurred_at, 1, 10) || 'T' || substr(occurred_at, 12) || 'Z'"
    if name == "occurred_at" else name
    for name in DENORMALIZED if name != "duration_ms"
)  # fmt: skip
_SQLITE_ROWS: Final = (
    "SELECT rowid, seq, body, duration_ms, operation = 'audit.rejected', "  # noqa: S608
    f"CASE WHEN occurred_at GLOB '{_STORED_STAMP}' AND typeof(seq) != 'real' "
    "AND typeof(actor_uid) != 'real' "
    f"THEN CAST(json_array({', '.join(_ARRAY_COLUMNS)}) AS BLOB) END "
    "FROM events WHERE chain_id = ?"
)
_SQLITE_RAW_ROW: Final = f"SELECT {_COLUMNS} FROM events WHERE rowid = ?"  # noqa: S608 - ours

# PostgreSQL: the same array built by the server (typed columns: no REAL or BLOB can hide
# in one); its text is decoded and compared as a tuple, since the server spaces it out.
_PG_ARRAY_COLUMNS: Final = tuple(
    """to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    if name == "occurred_at" else name
    for name in DENORMALIZED if name != "duration_ms"
)  # fmt: skip
_PG_ROWS: Final = (
    "SELECT id, seq, body, duration_ms, operation = 'audit.rejected', "  # noqa: S608 - ours
    f"json_build_array({', '.join(_PG_ARRAY_COLUMNS)})::text FROM events WHERE chain_id = %s"
)
_PG_RAW_ROW: Final = (
    f"SELECT {_COLUMNS} FROM events WHERE chain_id = %s AND seq = %s AND id = %s"  # noqa: S608
)
_decode_tuple: Final = msgspec.json.Decoder(tuple).decode


def _sqlite_agree(values: tuple[Any, ...], stored: Any) -> bool:
    return bool(_encode(values) == stored)


def _pg_agree(values: tuple[Any, ...], stored: Any) -> bool:
    return bool(_decode_tuple(stored) == values)


def _accepts_array(
    check: _ChainCheck, row: Any, agree: Callable[[tuple[Any, ...], Any], bool] = _sqlite_agree
) -> bool:
    """:func:`_accepts` for a row of the array path (False: let the general path decide)."""
    _, seq, body, duration, _, stored = row
    if stored is None or seq != check.expected_seq or seq > check.newest_mark:
        return False
    digest = _links(check.hasher, check.prev_hash, body, duration, stored, agree)
    return digest is not None and check.marks.get(seq, digest) == digest


def _links(
    hasher: ChainHasher,
    prev: str,
    body: Any,
    duration: Any,
    stored: Any,
    agree: Callable[[tuple[Any, ...], Any], bool],
) -> str | None:
    """The body-level part of :func:`_accepts_array`: values, link and hash; returns the
    record's hash when they hold (the array holds the ``hash`` column: they are equal)."""
    try:
        record = _decode_indexed(body)
        digest = record.hash
        if record.prev_hash != prev or record.duration_ms != duration:
            return None
        actor = record.actor or _NO_ACTOR
        repo = record.repo or _NO_REPO
        if not agree((  # what the query's array holds when the columns agree with the body
            record.id, record.chain_id, record.seq, record.occurred_at, record.operation,
            record.category, record.outcome, record.severity, record.source,
            record.correlation_id, record.parent_id, actor.user, actor.uid, actor.git_name,
            actor.git_email, actor.host, repo.name, repo.path, repo.branch, prev, digest,
        ), stored):  # fmt: skip
            return None
        # Cut out as in _accepts, each located once, searching from the end (the writer's
        # order: ``hash`` sorts before ``prev_hash``, both after ``details``). The body's
        # top-level values were just read, so whichever occurrences these are, a payload
        # that hashes to ``digest`` is the writer's (which has neither key at top level)
        # and the two cut entries are the top-level ones.
        link = '"prev_hash":"' + prev + '",'
        end = body.rfind(link)
        own = '"hash":"' + digest + '",'
        start = body.rfind(own, 0, end)
        if start < 0 or end < 0:
            return None
        payload = (body[:start] + body[start + len(own) : end] + body[end + len(link) :]).encode()
        if hasher.algorithm == "sha256":
            found = _sha256(bytes.fromhex(prev) + payload).hexdigest()
        else:
            found = hasher.link(prev, payload)
    except _STRUCT_ERRORS:
        return None
    return digest if found == digest else None


def _feed_array(
    conn: Connection,
    check: _ChainCheck,
    done: int,
    progress: Progress | None,
    total: int,
    every: int,
    seqs: tuple[int, int] | None,
) -> int:
    """Feed the chain's rows through the array path (``_SQLITE_ROWS`` / ``_PG_ROWS``); on
    SQLite raises sqlite3.Error when the query cannot run over these rows (the caller
    starts over on the general path).

    A run of accepted rows only moves local variables (the per-row cost is the point);
    they are written back to ``check`` before any other row is handed to it.
    """
    dbapi: Any = conn.connection.dbapi_connection
    sqlite = conn.dialect.name == "sqlite"
    agree = _sqlite_agree if sqlite else _pg_agree
    stamp = _stamp_form(conn.dialect.name)
    marks, newest, hasher = check.marks, check.newest_mark, check.hasher
    retained = check.retained
    cursor = _array_cursor(dbapi, sqlite, check.chain_id, seqs)
    try:
        while rows := cursor.fetchmany(_FETCH):
            expected, prev, first = check.expected_seq, check.prev_hash, check.first_seq
            checking = check.problem is None
            records = rejected = 0
            for row in rows:
                key, seq, body, duration, is_rejected, stored = row
                digest: str | None
                if not checking:
                    digest = ""  # past the first problem only seqs and counts matter
                elif (
                    (first is None and retained is not None)  # the exact check, for a cut
                    or stored is None
                    or seq != expected
                    or seq > newest
                    or (digest := _links(hasher, prev, body, duration, stored, agree)) is None
                    or marks.get(seq, digest) != digest
                ):
                    digest = None
                if digest is not None:
                    records += 1
                    rejected += is_rejected
                    expected, prev = seq + 1, digest
                    if first is None:
                        first = seq
                else:
                    _sync(check, records, rejected, expected, prev, first)
                    records = rejected = 0
                    raw = _raw_row(dbapi, sqlite, check.chain_id, seq, key)
                    if _accepts(check, raw, stamp):
                        _advance(check, raw)
                    else:
                        check.feed(_exact_row(conn, check.chain_id, raw))
                    expected, prev, first = check.expected_seq, check.prev_hash, check.first_seq
                    checking = check.problem is None
            _sync(check, records, rejected, expected, prev, first)
            done += len(rows)
            if progress is not None and done // every != (done - len(rows)) // every:
                progress(done, total)
    finally:
        cursor.close()
    return done


def _array_cursor(
    dbapi: Any, sqlite: bool, chain_id: str, seqs: tuple[int, int] | None
) -> Any:
    """The executed query of the array path over the chain's rows (in ``seqs``), by seq."""
    sql, mark = (_SQLITE_ROWS, "?") if sqlite else (_PG_ROWS, "%s")
    if seqs is not None:
        sql += f" AND seq BETWEEN {mark} AND {mark}"
    if sqlite:
        cursor = dbapi.cursor()
    else:
        cursor = dbapi.cursor(name="gitaudit_verify")  # server-side: memory stays flat
        cursor.itersize = _FETCH
    cursor.execute(sql + " ORDER BY seq", (chain_id,) if seqs is None else (chain_id, *seqs))
    return cursor


def _raw_row(dbapi: Any, sqlite: bool, chain_id: str, seq: int, key: Any) -> Any:
    """The full raw row of a row the array path did not accept (``key``: rowid or id)."""
    if sqlite:
        return dbapi.execute(_SQLITE_RAW_ROW, (key,)).fetchone()
    return dbapi.execute(_PG_RAW_ROW, (chain_id, seq, key)).fetchone()


def _sync(
    check: _ChainCheck, records: int, rejected: int, expected: int, prev: str,
    first: int | None,
) -> None:  # fmt: skip
    """Write a run of rows the fast path took back to ``check``."""
    if records:
        check.records += records
        check.rejected += rejected
        check.first_seq = first
        check.last_seq = expected - 1
        check.expected_seq = expected
        check.prev_hash = prev


def _sqlite_stamp(text: str) -> str:
    """``occurred_at`` as SQLAlchemy stores a UTCDateTime in SQLite (naive UTC text)."""
    if text.endswith("+00:00"):
        core = text[:-6]
    elif text.endswith("Z"):
        core = text[:-1]
    else:
        core = ""
    if len(core) == 19:  # 2026-11-01T12:00:00: the common case, without parsing
        return core[:10] + " " + core[11:] + ".000000"
    if len(core) == 26:  # 2026-11-01T12:00:00.123456
        return core[:10] + " " + core[11:]
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(" ", "microseconds")


def _stamp_form(dialect: str) -> Callable[[str], Any]:
    return _sqlite_stamp if dialect == "sqlite" else datetime.fromisoformat


def _accepts(check: _ChainCheck, raw: Any, stamp: Callable[[str], Any]) -> bool:
    """True when ``raw`` passes every check of ``check._check`` (False: let it decide).

    A string-built ``occurred_at`` that equals the stored text names the same instant
    the exact check would parse; anything else is left to the exact check.
    """
    if check.first_seq is None and check.retained is not None:
        return False  # the chain's first row: the exact check accounts for a retention cut
    body = raw[_BODY]
    record = _loads(body)
    if type(record) is not dict:
        return False
    get = record.get
    seq, digest, prev = raw[_SEQ], raw[_HASH], check.prev_hash
    if (
        get("hash") != digest
        or get("prev_hash") != prev
        or seq != check.expected_seq
        or get("seq") != seq
        or get("chain_id") != check.chain_id
        or seq > check.newest_mark
        or check.marks.get(seq, digest) != digest
        or type(digest) is not str
    ):
        return False
    own = '"hash":"' + digest + '",'
    link = '"prev_hash":"' + prev + '",'
    # ``own`` need not be unique: one left in the payload would put the digest into its
    # own input, which no payload hashes to. ``link`` must be: see the module docstring.
    if body.count(link) != 1:
        return False
    payload = body.replace(own, "", 1).replace(link, "", 1)
    try:
        if check.hasher.link(prev, payload.encode("utf-8")) != digest:
            return False
        actor = get("actor") or {}
        repo = get("repo") or {}
        expected = (
            get("id"), get("chain_id"), seq, stamp(record["occurred_at"]),
            get("operation"), get("category"), get("outcome"), get("severity"),
            get("source"), get("correlation_id"), get("parent_id"), actor.get("user"),
            actor.get("uid"), actor.get("git_name"), actor.get("git_email"),
            actor.get("host"), repo.get("name"), repo.get("path"), repo.get("branch"),
            get("duration_ms"), prev, digest,
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError, UnicodeEncodeError):
        return False
    return bool(expected == raw[:_N])


def _advance(check: _ChainCheck, raw: Any) -> None:
    """What ``_ChainCheck.feed`` does for a row that passes (or after the first problem)."""
    seq = raw[_SEQ]
    check.records += 1
    if raw[_OPERATION] == REJECTED_OPERATION:
        check.rejected += 1
    if check.first_seq is None:
        check.first_seq = seq
    check.last_seq = seq
    check.expected_seq = seq + 1
    check.prev_hash = raw[_HASH]


def _raw_rows(conn: Connection, chain_id: str, seqs: tuple[int, int] | None) -> Any:
    """The chain's rows (those in the inclusive ``seqs`` range) as plain driver tuples,
    in seq order, streamed."""
    where = "chain_id = %s" if seqs is None else "chain_id = %s AND seq BETWEEN %s AND %s"
    params = (chain_id,) if seqs is None else (chain_id, *seqs)
    sql = f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY seq"  # noqa: S608 - ours
    dbapi: Any = conn.connection.dbapi_connection
    if dbapi is None:  # pragma: no cover - an open Connection always has one
        raise RuntimeError("no DBAPI connection")
    if conn.dialect.name == "sqlite":
        cursor = dbapi.cursor()
        cursor.execute(sql.replace("%s", "?"), params)
        return cursor
    cursor = dbapi.cursor(name="gitaudit_verify")  # server-side: rows stream, memory stays flat
    cursor.itersize = _FETCH
    cursor.execute(sql, params)
    return cursor


def _exact_row(conn: Connection, chain_id: str, raw: Any) -> Any:
    """The full row of ``raw`` (by id too: a seq stored twice is two rows the check must see)."""
    query = select(events).where(
        events.c.chain_id == chain_id, events.c.seq == raw[_SEQ], events.c.id == raw[_ID]
    )
    return conn.execute(query).first()


def feed_chain(
    conn: Connection,
    check: _ChainCheck,
    done: int,
    total: int,
    progress: Progress | None,
    every: int,
    seqs: tuple[int, int] | None = None,
) -> int:
    """Feed every row of ``check``'s chain (with seq in ``seqs``, inclusive) to it;
    returns ``done`` plus the rows read."""
    if conn.dialect.name != "sqlite":
        return _feed_array(conn, check, done, progress, total, every, seqs)
    start = copy.copy(check)
    try:
        return _feed_array(conn, check, done, progress, total, every, seqs)
    except sqlite3.Error:
        check.__dict__.update(start.__dict__)  # walk it again from the start
    stamp = _stamp_form(conn.dialect.name)
    cursor = _raw_rows(conn, check.chain_id, seqs)
    try:
        for raw in cursor:
            if check.problem is not None or _accepts(check, raw, stamp):
                _advance(check, raw)
            else:
                check.feed(_exact_row(conn, check.chain_id, raw))
            done += 1
            if progress is not None and done % every == 0:
                progress(done, total)
    finally:
        cursor.close()
    return done
