"""Rekeyed hashes: what ``gitaudit db rekey`` rewrote (erasure for events stored before 0007).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

One table, schema only (the rewriting is ``gitaudit db rekey``,
:mod:`gitaudit.store.rekey`, run by the table owner; never done here):

``rekeyed_hashes``
    one row per record a rekey run rewrote: ``(chain_id, seq, rekey_id)``, the
    record's ``old_hash`` and ``new_hash``, ``rekeyed_at``. ``gitaudit verify
    --checkpoints`` reads a checkpoint signed before the run through it (the
    ``audit.store_rekeyed`` record appended to the chain binds the rows by a
    digest). Append-only like ``events``: UPDATE, DELETE (and TRUNCATE on
    PostgreSQL) refused by triggers; UPDATE, DELETE, TRUNCATE revoked from PUBLIC.

Idempotent: a table or trigger that exists already is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "rekeyed_hashes"
MESSAGE = "gitaudit: {op} on rekeyed_hashes refused: the audit store is append-only"


def _create_table() -> None:
    op.create_table(
        TABLE,
        sa.Column("chain_id", sa.String(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("rekey_id", sa.String(36), nullable=False),
        sa.Column("old_hash", sa.String(64), nullable=False),
        sa.Column("new_hash", sa.String(64), nullable=False),
        sa.Column("rekeyed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["chain_id"], ["chains.chain_id"],
                                name=op.f("fk_rekeyed_hashes_chain_id_chains")),  # fmt: skip
        sa.PrimaryKeyConstraint("chain_id", "seq", "rekey_id", name=op.f("pk_rekeyed_hashes")),
    )


def _triggers(dialect: str) -> set[str]:
    bind = op.get_bind()
    if dialect == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    return {row[0] for row in bind.exec_driver_sql(query)}


def upgrade() -> None:
    """Create the table (if missing) and its append-only triggers."""
    bind = op.get_bind()
    dialect = bind.dialect.name
    if TABLE not in set(sa.inspect(bind).get_table_names()):
        _create_table()
    existing = _triggers(dialect)
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            name = f"{TABLE}_no_{verb.lower()}"
            if name not in existing:
                op.execute(f"CREATE TRIGGER {name} BEFORE {verb} ON {TABLE} "
                           f"BEGIN SELECT RAISE(ABORT, '{MESSAGE.format(op=verb)}'); END")  # fmt: skip
        return
    if f"{TABLE}_append_only" not in existing:
        op.execute(f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
                   "FOR EACH ROW EXECUTE FUNCTION gitaudit_append_only('fixed')")  # fmt: skip
    if f"{TABLE}_no_truncate" not in existing:
        op.execute(f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION gitaudit_append_only('fixed')")  # fmt: skip
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {TABLE} FROM PUBLIC")


def downgrade() -> None:
    """Drop the table (its triggers go with it)."""
    op.execute(f"DROP TABLE IF EXISTS {TABLE}")
