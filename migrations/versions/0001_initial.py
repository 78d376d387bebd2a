"""Initial schema: events, chains, checkpoints, retention grants; append-only triggers.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Append-only is enforced by the database: UPDATE and DELETE (and on PostgreSQL
TRUNCATE) on every table abort. The one sanctioned way around it, for the
retention job of a later release: insert a ``retention_grants`` row
``(chain_id, upto_seq)`` in the same transaction; DELETE of ``events`` and
``checkpoints`` rows of that chain with ``seq <= upto_seq`` is then let
through. Grants are append-only too, so every deletion leaves a permanent
trace. On PostgreSQL, UPDATE/DELETE/TRUNCATE are also revoked from PUBLIC; the
retention role needs DELETE granted explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("events", "chains", "checkpoints", "retention_grants")
RETAINABLE = ("events", "checkpoints")
MESSAGE = "gitaudit: {op} on {table} refused: the audit store is append-only"

PG_FUNCTION = """
CREATE FUNCTION gitaudit_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'DELETE' AND TG_ARGV[0] = 'retainable' THEN
        IF EXISTS (
            SELECT 1 FROM retention_grants g
            WHERE g.chain_id = OLD.chain_id AND g.upto_seq >= OLD.seq
        ) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'gitaudit: % on % refused: the audit store is append-only',
        TG_OP, TG_TABLE_NAME;
END;
$fn$
"""


def _timestamp(name: str) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _create_tables() -> None:
    op.create_table(
        "chains",
        sa.Column("chain_id", sa.String(), nullable=False),
        _timestamp("created_at"),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("key_fingerprint", sa.String(64), nullable=True),
        sa.CheckConstraint(
            "algorithm IN ('sha256', 'hmac-sha256')", name=op.f("ck_chains_algorithm")
        ),
        sa.PrimaryKeyConstraint("chain_id", name=op.f("pk_chains")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("chain_id", sa.String(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        _timestamp("occurred_at"),
        _timestamp("recorded_at"),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("correlation_id", sa.String(200), nullable=False),
        sa.Column("parent_id", sa.String(), nullable=True),
        sa.Column("actor_user", sa.String(), nullable=True),
        sa.Column("actor_uid", sa.BigInteger(), nullable=True),
        sa.Column("actor_git_name", sa.String(), nullable=True),
        sa.Column("actor_git_email", sa.String(), nullable=True),
        sa.Column("actor_host", sa.String(), nullable=True),
        sa.Column("repo_name", sa.String(), nullable=True),
        sa.Column("repo_path", sa.String(), nullable=True),
        sa.Column("repo_branch", sa.String(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["chain_id"], ["chains.chain_id"], name=op.f("fk_events_chain_id_chains")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("chain_id", "seq", name=op.f("uq_events_chain_id_seq")),
    )
    for columns in (
        ("occurred_at",),
        ("operation", "occurred_at"),
        ("actor_user",),
        ("actor_git_name",),
        ("actor_git_email",),
        ("repo_name",),
        ("repo_path",),
        ("correlation_id",),
    ):
        op.create_index(op.f("ix_events_" + "_".join(columns)), "events", list(columns))
    op.create_table(
        "checkpoints",
        sa.Column("chain_id", sa.String(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["chain_id"], ["chains.chain_id"], name=op.f("fk_checkpoints_chain_id_chains")
        ),
        sa.PrimaryKeyConstraint("chain_id", "seq", name=op.f("pk_checkpoints")),
    )
    op.create_table(
        "retention_grants",
        sa.Column("chain_id", sa.String(), nullable=False),
        sa.Column("upto_seq", sa.BigInteger(), nullable=False),
        _timestamp("granted_at"),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chain_id"], ["chains.chain_id"], name=op.f("fk_retention_grants_chain_id_chains")
        ),
        sa.PrimaryKeyConstraint("chain_id", "upto_seq", name=op.f("pk_retention_grants")),
    )


def _sqlite_triggers() -> None:
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE.format(op='UPDATE', table=table)}'); END"
        )
        granted = (
            " WHEN NOT EXISTS (SELECT 1 FROM retention_grants g"
            " WHERE g.chain_id = OLD.chain_id AND g.upto_seq >= OLD.seq)"
            if table in RETAINABLE
            else ""
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}{granted} "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE.format(op='DELETE', table=table)}'); END"
        )


def _postgresql_triggers() -> None:
    op.execute(PG_FUNCTION)
    for table in TABLES:
        argument = "retainable" if table in RETAINABLE else "fixed"
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION gitaudit_append_only('{argument}')"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION gitaudit_append_only('fixed')"
        )
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {', '.join(TABLES)} FROM PUBLIC")


def upgrade() -> None:
    """Create the tables, indexes and append-only triggers."""
    _create_tables()
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite_triggers()
    elif dialect == "postgresql":
        _postgresql_triggers()
    else:
        raise RuntimeError(f"gitaudit supports SQLite and PostgreSQL, not {dialect}")


def downgrade() -> None:
    """Drop everything (the triggers go with their tables)."""
    for table in ("retention_grants", "checkpoints", "events", "chains"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION gitaudit_append_only()")
