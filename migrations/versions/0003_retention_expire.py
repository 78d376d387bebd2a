"""Retention's one deleter on PostgreSQL: ``gitaudit_expire(chain_id, upto_seq, reason)``.

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-04

A ``SECURITY DEFINER`` function (it runs as its owner, ``search_path`` pinned
to the store's schema) that, in the caller's transaction, inserts the
``retention_grants`` row, writes a checkpoint at ``upto_seq`` (the hash of the
last record it deletes, unless one is there), deletes the chain's events with
``seq <= upto_seq`` and its older checkpoints, and returns the number of events
deleted. The append-only triggers of revision 0001 let exactly those deletes
through. EXECUTE is revoked from PUBLIC; the ``gitaudit_retention`` role gets
it when it exists. Replaces any earlier definition (the function of the
least-privilege revision has the same signature), so it can run after any
other revision. SQLite has no functions: retention issues the same statements.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = "gitaudit_expire(text, bigint, text)"

PG_FUNCTION = """
CREATE FUNCTION gitaudit_expire(text, bigint, text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $fn$
DECLARE
    deleted bigint;
BEGIN
    INSERT INTO retention_grants (chain_id, upto_seq, granted_at, reason)
        VALUES ($1, $2, now(), $3) ON CONFLICT DO NOTHING;
    INSERT INTO checkpoints (chain_id, seq, hash, created_at)
        SELECT e.chain_id, e.seq, e.hash, now() FROM events e
        WHERE e.chain_id = $1 AND e.seq = $2
        ON CONFLICT DO NOTHING;
    DELETE FROM events WHERE chain_id = $1 AND seq <= $2;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    DELETE FROM checkpoints WHERE chain_id = $1 AND seq < $2;
    RETURN deleted;
END;
$fn$
"""

GRANT_RETENTION = f"""
DO $do$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gitaudit_retention') THEN
        GRANT EXECUTE ON FUNCTION {SIGNATURE} TO gitaudit_retention;
    END IF;
END;
$do$
"""


def upgrade() -> None:
    """Create (or replace) the function on PostgreSQL; nothing on SQLite."""
    if op.get_bind().dialect.name != "postgresql":
        return
    schema = op.get_bind().exec_driver_sql("SELECT quote_ident(current_schema())").scalar_one()
    op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
    op.execute(PG_FUNCTION.replace("{schema}", str(schema)))
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(GRANT_RETENTION)


def downgrade() -> None:
    """Drop the function."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
