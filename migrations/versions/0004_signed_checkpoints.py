"""Signed checkpoints: a table for the signed-note checkpoints, append-only like the rest.

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-04

``signed_checkpoints`` keeps every checkpoint ``gitaudit checkpoint`` (or the
daemon's schedule) wrote, numbered from 1. UPDATE and DELETE (and on PostgreSQL
TRUNCATE) are refused as on every other table; retention never deletes
checkpoints. Idempotent: a table or trigger that exists already is left as it is,
so the revision can run after any other (and on a store with rows in it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "signed_checkpoints"
MESSAGE = "gitaudit: {op} on {table} refused: the audit store is append-only"


def _create_table() -> None:
    op.create_table(
        TABLE,
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("prev_sha256", sa.String(64), nullable=True),
        sa.Column("key_name", sa.String(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_signed_checkpoints")),
        sa.UniqueConstraint("body_sha256", name=op.f("uq_signed_checkpoints_body_sha256")),
    )


def _sqlite_triggers(existing: set[str]) -> None:
    for verb in ("UPDATE", "DELETE"):
        name = f"{TABLE}_no_{verb.lower()}"
        if name in existing:
            continue
        op.execute(
            f"CREATE TRIGGER {name} BEFORE {verb} ON {TABLE} "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE.format(op=verb, table=TABLE)}'); END"
        )


def _postgresql_triggers(existing: set[str]) -> None:
    # gitaudit_append_only() comes with revision 0001.
    if f"{TABLE}_append_only" not in existing:
        op.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION gitaudit_append_only('fixed')"
        )
    if f"{TABLE}_no_truncate" not in existing:
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION gitaudit_append_only('fixed')"
        )
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {TABLE} FROM PUBLIC")


def _triggers(dialect: str) -> set[str]:
    bind = op.get_bind()
    if dialect == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    return {str(name) for (name,) in bind.execute(sa.text(query))}


def upgrade() -> None:
    """Create the table (if missing) and its append-only triggers."""
    dialect = op.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise RuntimeError(f"gitaudit supports SQLite and PostgreSQL, not {dialect}")
    if not sa.inspect(op.get_bind()).has_table(TABLE):
        _create_table()
    existing = _triggers(dialect)
    if dialect == "sqlite":
        _sqlite_triggers(existing)
    else:
        _postgresql_triggers(existing)


def downgrade() -> None:
    """Drop the table (its triggers go with it)."""
    op.drop_table(TABLE)
