"""Readers: time-ordered filter indexes, agent indexes, full-text search, statistics.

Revision ID: 0005
Revises: 0001
Create Date: 2026-12-04

- Every documented reader filter gets an index ``(filter columns..., occurred_at,
  chain_id, seq)``, so a filtered page is read in time order from one index with
  its limit pushed down; they supersede the single-column indexes of 0001.
- ``actor.agent.tool`` and ``actor.agent.session_id`` (Claude Code) are indexed as
  expressions of the body (no new column: rows already stored stay untouched).
- Full-text search (``gitaudit log --grep``, see ``gitaudit.store.search``): on
  SQLite an FTS5 table filled here from the rows already stored (and by the writer
  from now on); on PostgreSQL a GIN index on an expression of the body, which
  works on a plain and on a partitioned ``events`` table alike (through the
  function ``gitaudit_body``, which never fails an append on a body jsonb refuses).
- Planner statistics are refreshed (``ANALYZE``).

Every step checks what exists first, so it runs on any store at 0001 or later.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

from gitaudit.store.reader import agent_field
from gitaudit.store.search import (
    FTS_TABLE,
    PG_BODY_FUNCTION,
    PG_DOCUMENT,
    PG_INDEX,
    SQLITE_DOCUMENT,
)
from gitaudit.store.tables import FILTER_INDEXES, TIME_ORDER

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUPERSEDED = (
    ("occurred_at",),
    ("operation", "occurred_at"),
    ("actor_user",),
    ("actor_git_name",),
    ("actor_git_email",),
    ("repo_name",),
    ("repo_path",),
    ("correlation_id",),
    # revision 0002's query indexes: the time-ordered filter indexes above cover them
    ("actor_user", "occurred_at"),
    ("repo_name", "operation", "occurred_at"),
    ("actor_host", "occurred_at"),
)
AGENT_FIELDS = ("tool", "session_id")


def _name(columns: Sequence[str]) -> str:
    return "ix_events_" + "_".join(columns)


def _indexes() -> set[str]:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
    else:
        query = "SELECT indexname FROM pg_indexes WHERE tablename = 'events'"
    return {str(name) for name in bind.execute(text(query)).scalars()}


def _create(existing: set[str], name: str, expression: str, using: str = "") -> None:
    if name not in existing:
        op.execute(f"CREATE INDEX {name} ON events {using}({expression})")


def _fts_backfill() -> None:
    bind = op.get_bind()
    exists = bind.execute(
        text("SELECT 1 FROM sqlite_master WHERE name = :name"), {"name": FTS_TABLE}
    ).first()
    if exists is None:
        op.execute(
            f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(doc, content='', "
            "tokenize='unicode61 remove_diacritics 2')"
        )
        op.execute(f"INSERT INTO {FTS_TABLE}(rowid, doc) SELECT events.rowid, {SQLITE_DOCUMENT} "
                   "FROM events")


def upgrade() -> None:
    """Create the reader indexes and the search index (filled from stored rows); ANALYZE."""
    dialect = op.get_bind().dialect.name
    existing = _indexes()
    if dialect == "postgresql":
        op.execute(PG_BODY_FUNCTION)
    for columns in FILTER_INDEXES:
        full = (*columns, *TIME_ORDER)
        _create(existing, _name(full), ", ".join(full))
    _create(existing, _name(("parent_id",)), "parent_id")
    for field in AGENT_FIELDS:
        expression = str(agent_field(dialect, field))
        _create(existing, f"ix_events_agent_{field}", f"{expression}, {', '.join(TIME_ORDER)}")
    for columns in SUPERSEDED:
        if _name(columns) in existing:
            op.drop_index(_name(columns), table_name="events")
    if dialect == "sqlite":
        _fts_backfill()
        op.execute("ANALYZE")
    else:
        _create(existing, PG_INDEX, PG_DOCUMENT, using="USING gin ")
        op.execute("ANALYZE events")


def downgrade() -> None:
    """Back to 0001's indexes; the search index goes."""
    existing = _indexes()
    for columns in SUPERSEDED:
        _create(existing, _name(columns), ", ".join(columns))
    names = [_name((*columns, *TIME_ORDER)) for columns in FILTER_INDEXES]
    names += [_name(("parent_id",)), *(f"ix_events_agent_{field}" for field in AGENT_FIELDS)]
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    else:
        names.append(PG_INDEX)
    for name in names:
        if name in existing:
            op.drop_index(name, table_name="events")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS gitaudit_body(text)")
