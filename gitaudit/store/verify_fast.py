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
- parses the body once (orjson when installed, else :mod:`json`);
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

Same checks, same order of precedence, same problem reported: a row the fast
path does not accept is checked exactly as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection, select

from gitaudit.quarantine import OPERATION as REJECTED_OPERATION
from gitaudit.store.tables import DENORMALIZED, events

if TYPE_CHECKING:
    from gitaudit.store.integrity import _ChainCheck

_orjson_loads: Callable[[str], Any] | None
try:  # orjson parses bodies ~2-3x faster than json; readers only, never the hot path
    from orjson import JSONDecodeError as _OrjsonError
    from orjson import loads as _orjson_loads
except ImportError:  # pragma: no cover - orjson is a dependency; json is the fallback
    _orjson_loads = None

_COLUMNS: Final = ", ".join(DENORMALIZED) + ", body"
_N: Final = len(DENORMALIZED)
_BODY: Final = _N
_SEQ: Final = DENORMALIZED.index("seq")
_ID: Final = DENORMALIZED.index("id")
_HASH: Final = DENORMALIZED.index("hash")
_OPERATION: Final = DENORMALIZED.index("operation")
_FETCH: Final = 2000

Progress = Callable[[int, int], None]


def _loads(text: str) -> Any:
    if _orjson_loads is not None:
        try:
            return _orjson_loads(text)
        except _OrjsonError:
            pass  # e.g. an integer past 64 bits: json reads it as the exact check does
    try:
        return json.loads(text)
    except ValueError:
        return None


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
