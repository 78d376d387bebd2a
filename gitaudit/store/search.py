"""Full-text search over events (``gitaudit log --grep``), the same on SQLite and PostgreSQL.

What is searchable: every string value of the event body (redacted argv, commit
messages, errors, paths, refs, remotes, details, names) except the top-level
identifiers and integrity fields in :data:`EXCLUDED_KEYS`, which have their own
filters or are noise. Words are runs of letters and digits, compared without
case: ``git.push`` holds the words ``git`` and ``push``.

- SQLite: an FTS5 table ``events_fts`` without content of its own (``content=''``),
  keyed by the events row id. The store writer fills it in the transaction that
  appends the rows (:func:`sqlite_index_rows`), from :data:`SQLITE_DOCUMENT`,
  the same SQL revision 0005 used to backfill existing rows. The append-only
  triggers are on ``events`` only: the FTS table is an index, not evidence.
- PostgreSQL: a GIN index on the expression :data:`PG_DOCUMENT` of the body
  (through :data:`PG_BODY_FUNCTION`; no
  extra column, no writer work, and it works on a partitioned ``events``); a
  query must spell the expression exactly so to use it.

The user's text is never FTS syntax unless asked (:func:`grep_clause` with
``raw``): each whitespace-separated word becomes a phrase of its letter/digit
runs and all must match (``"fix" "a-b"`` means fix AND the phrase a b), so quotes,
``AND``/``OR``/``NEAR``, ``*``, ``:``, ``-`` and ``&|!`` are just text.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    and_,
    bindparam,
    column,
    exists,
    literal_column,
    select,
    text,
)

from gitaudit.errors import UsageError
from gitaudit.store.tables import events

EXCLUDED_KEYS: Final = (
    "id", "chain_id", "seq", "prev_hash", "hash", "parent_id", "correlation_id", "occurred_at",
)  # fmt: skip
FTS_TABLE: Final = "events_fts"

_SQL_KEYS: Final = ", ".join(f"'{key}'" for key in EXCLUDED_KEYS)
SQLITE_DOCUMENT: Final = (
    "(SELECT group_concat(t.value, ' ') FROM json_tree(events.body) AS t "  # noqa: S608 - constants
    f"WHERE t.type = 'text' AND NOT (t.path = '$' AND t.key IN ({_SQL_KEYS})))"
)
PG_DOCUMENT: Final = (
    "to_tsvector('simple'::regconfig, regexp_replace(jsonb_path_query_array("
    f"gitaudit_body(body) - '{{{','.join(EXCLUDED_KEYS)}}}'::text[], "
    "'strict $.**?(@.type() == \"string\")')::text, '[^[:alnum:]]+', ' ', 'g'))"
)
PG_INDEX: Final = "ix_events_search"
# Matches from which a search is "common" on SQLite (see grep_clause).
COMMON: Final = 5000
# The body as jsonb for PostgreSQL's expression indexes: a body jsonb refuses (a lone
# surrogate or NUL escaped in it) is indexed as {} instead of failing the append. The
# exception block (a subtransaction) is entered only for bodies holding an escape.
PG_BODY_FUNCTION: Final = r"""
CREATE OR REPLACE FUNCTION gitaudit_body(body text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
BEGIN
    IF strpos(body, '\u') = 0 THEN
        RETURN body::jsonb;
    END IF;
    BEGIN
        RETURN body::jsonb;
    EXCEPTION WHEN others THEN
        RETURN '{}'::jsonb;
    END;
END;
$fn$
"""

_WORD: Final = re.compile(r"[^\W_]+")


def phrases(user_text: str) -> list[list[str]]:
    """The user's text as phrases (one per whitespace-separated word) of letter/digit runs."""
    out = []
    for word in user_text.split():
        runs = _WORD.findall(word)
        if runs:
            out.append([run.lower() for run in runs])
    if not out:
        raise UsageError(
            f"--grep: {user_text!r} holds no word to search for",
            "search for letters or digits, e.g. --grep 'force push' or --grep main",
        )
    return out


def fts5_query(user_text: str) -> str:
    """An FTS5 MATCH expression that means exactly the user's words (each a quoted phrase)."""
    return " ".join('"' + " ".join(runs) + '"' for runs in phrases(user_text))


def match_text(user_text: str, *, raw: bool) -> str:
    """The FTS5 MATCH text for ``user_text``."""
    return user_text if raw else fts5_query(user_text)


def is_common(conn: Connection, user_text: str, *, raw: bool) -> bool:
    """Whether at least :data:`COMMON` events match (SQLite): reads at most that many."""
    found = conn.execute(
        text(f"SELECT count(*) FROM (SELECT rowid FROM {FTS_TABLE} "  # noqa: S608 - constants
             f"WHERE {FTS_TABLE} MATCH :grep LIMIT {COMMON})"),
        {"grep": match_text(user_text, raw=raw)},
    ).scalar()
    return int(found or 0) >= COMMON


# Matches under which a PostgreSQL search is "rare" (see pg_rare_matches).
PG_RARE: Final = 1000
# Matches the planner must expect before a search counts as common without reading the
# index: a frequent word's estimate comes from the statistics of the search index and is
# close; a rare word's is a guess, ~0.1 % of the rows (about 12,000 at 10 million).
PG_COMMON_ESTIMATE: Final = 100_000


def pg_rare_matches(conn: Connection, user_text: str, *, raw: bool) -> tuple[str, ...] | None:
    """The ids of every event matching ``user_text`` when fewer than :data:`PG_RARE` do
    (PostgreSQL), else None.

    The planner cannot tell a rare word from a common one (a tsvector expression's
    statistics hold only frequent words: a word seen 20 times in 10 million events is
    estimated at ~12,000), so for ``--limit`` it reads the time index backwards and
    computes the document of every row until enough match: all 10 million for a rare
    word. The matches are read here from the GIN index first (sequential scans off
    for this one statement), and a rare word's query then filters by their ids. A word
    the statistics know as frequent (planned at :data:`PG_COMMON_ESTIMATE` rows or more)
    is common without that read: a bitmap of millions of matches takes about a second
    to build, while the time index finds a common word's newest page in a few rows.
    """
    query = select(events.c.id).where(grep_clause("postgresql", user_text, raw=raw))
    if planned_rows(conn, query) >= PG_COMMON_ESTIMATE:
        return None
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    found = tuple(conn.scalars(query.limit(PG_RARE)))  # an error aborts the transaction,
    conn.exec_driver_sql("RESET enable_seqscan")  # and with it the setting
    return found if len(found) < PG_RARE else None


def planned_rows(conn: Connection, query: Select[Any]) -> float:
    """The rows PostgreSQL's planner expects ``query`` to return (EXPLAIN, not run)."""
    compiled = query.compile(conn)
    plan: Any = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


def grep_clause(
    dialect: str, user_text: str, *, raw: bool, common: bool = False
) -> ColumnElement[bool]:
    """Events whose searchable text matches ``user_text`` (``raw``: in the engine's syntax).

    On SQLite a text that few events hold is looked up in the FTS index first (its
    matches are then read and put in time order); one that many hold (``common``, see
    :func:`is_common`) is checked event by event while the time index is read, so the
    newest page is found after a few probes instead of sorting every match.
    """
    if dialect == "sqlite":
        query = match_text(user_text, raw=raw)
        if common:
            probe = text(f"SELECT 1 FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :grep "  # noqa: S608 - constants
                         f"AND {FTS_TABLE}.rowid = events.rowid")
            return exists(probe.bindparams(bindparam("grep", query)).columns(
                column("one", Integer)))
        matched = text(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :grep")  # noqa: S608 - constant
        return literal_column("events.rowid").in_(
            matched.bindparams(bindparam("grep", query)).columns(column("rowid", Integer))
        )
    document: ColumnElement[Any] = literal_column(PG_DOCUMENT)
    if raw:
        return document.op("@@")(text("to_tsquery('simple'::regconfig, :grep)").bindparams(
            bindparam("grep", user_text)))
    clauses = []
    for number, runs in enumerate(phrases(user_text)):
        tsquery = text(f"phraseto_tsquery('simple'::regconfig, :grep{number})").bindparams(
            bindparam(f"grep{number}", " ".join(runs))
        )
        clauses.append(document.op("@@")(tsquery))
    return and_(*clauses)


def sqlite_index_rows(conn: Connection, chain_id: str, first_seq: int, last_seq: int) -> None:
    """Add the rows ``first_seq..last_seq`` of chain ``chain_id`` to the SQLite FTS index
    (run in the transaction that inserted them)."""
    conn.execute(
        text(
            f"INSERT INTO {FTS_TABLE}(rowid, doc) SELECT events.rowid, {SQLITE_DOCUMENT} "  # noqa: S608 - constants
            "FROM events WHERE chain_id = :chain AND seq BETWEEN :first AND :last"
        ),
        {"chain": chain_id, "first": first_seq, "last": last_seq},
    )


def sqlite_unindex_rows(
    conn: Connection, chain_id: str, upto_seq: int, from_seq: int = 0
) -> None:
    """Take the rows of chain ``chain_id`` from ``from_seq`` up to ``upto_seq`` out of the
    SQLite FTS index: retention calls it in its transaction, before it deletes those rows
    (a contentless index forgets a row only when told what it held; a row id left behind
    could otherwise be matched by a later row that reuses it); ``gitaudit db rekey``
    before it changes their bodies (then :func:`sqlite_index_rows` puts them back)."""
    conn.execute(
        text(
            f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, doc) SELECT 'delete', events.rowid, "  # noqa: S608 - constants
            f"{SQLITE_DOCUMENT} FROM events WHERE chain_id = :chain "
            "AND seq BETWEEN :first AND :upto"
        ),
        {"chain": chain_id, "first": from_seq, "upto": upto_seq},
    )


def is_syntax_error(exc: BaseException) -> bool:
    """Whether a database error is the engine rejecting ``--grep-syntax`` text."""
    message = str(getattr(exc, "orig", None) or exc).lower()
    return "fts5: syntax error" in message or "syntax error in tsquery" in message or (
        "fts5" in message and "no such column" in message
    ) or "unterminated string" in message


def syntax_error(user_text: str, exc: BaseException, dialect: str) -> UsageError:
    """The UsageError for ``--grep-syntax`` text the engine could not parse."""
    detail: Any = getattr(exc, "orig", None) or exc
    syntax = "FTS5 query syntax" if dialect == "sqlite" else "PostgreSQL to_tsquery syntax"
    return UsageError(
        f"--grep-syntax: the store cannot parse {user_text!r} ({str(detail).splitlines()[0]})",
        f"the text is passed through as {syntax}; drop --grep-syntax to search for the words",
    )
