"""Retention drops whole expired monthly partitions on PostgreSQL.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

Two ``SECURITY DEFINER`` functions (they run as their owner, the table owner,
``search_path`` pinned to the store's schema), used by retention in one
transaction (see :func:`gitaudit.store.retention._drop_partitions`):

``gitaudit_grant_expiry(chain_id, upto_seq, reason)``
    inserts the ``retention_grants`` row and the checkpoint at ``upto_seq``
    (like ``gitaudit_expire`` of revision 0003) but deletes nothing.

``gitaudit_drop_expired_partition(part) RETURNS bigint``
    refuses anything but a monthly partition ``events_pYYYYMM`` of ``events``
    (never ``events_default``), and a partition holding a row that no
    ``retention_grants`` row of its chain covers (``seq <= max(upto_seq)``):
    it raises and drops nothing (the check runs after the detach, which locks
    ``events`` until commit, so no row slips in; a refusal rolls it back).
    Otherwise, per chain with rows in it, it writes the grant and the
    checkpoint at the chain's highest seq ``m`` in the partition, deletes
    the chain's rows ``seq <= m`` left in other partitions (rows of a host
    whose clock was skewed across a month boundary; the append-only triggers
    let them through: they are granted) and its checkpoints before ``m``, then
    drops the partition and returns the rows it held plus those deleted. The
    chain then starts at ``m + 1`` with a grant and a checkpoint at ``m``,
    which is what ``gitaudit verify`` asks of a chain cut by retention.

``DROP TABLE`` is not stopped by the append-only row triggers (they fire on
UPDATE and DELETE of rows; the TRUNCATE trigger on TRUNCATE only): the grant
check in the function is what stands in for them, and only the table owner
(or a superuser) can drop the partition otherwise. EXECUTE is revoked from
PUBLIC; the ``gitaudit_retention`` role gets it when it exists. SQLite keeps
one events table: nothing to do there.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRANT_SIGNATURE = "gitaudit_grant_expiry(text, bigint, text)"
DROP_SIGNATURE = "gitaudit_drop_expired_partition(text)"
SIGNATURES = (GRANT_SIGNATURE, DROP_SIGNATURE)

GRANT_FUNCTION = """
CREATE FUNCTION gitaudit_grant_expiry(text, bigint, text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $fn$
BEGIN
    INSERT INTO retention_grants (chain_id, upto_seq, granted_at, reason)
        VALUES ($1, $2, now(), $3) ON CONFLICT DO NOTHING;
    INSERT INTO checkpoints (chain_id, seq, hash, created_at)
        SELECT e.chain_id, e.seq, e.hash, now() FROM events e
        WHERE e.chain_id = $1 AND e.seq = $2
        ON CONFLICT DO NOTHING;
END;
$fn$
"""

DROP_FUNCTION = """
CREATE FUNCTION gitaudit_drop_expired_partition(text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $fn$
DECLARE
    part regclass;
    held bigint;
    deleted bigint := 0;
    n bigint;
    uncovered record;
    c record;
BEGIN
    IF $1 !~ '^events_p[0-9]{6}$' THEN
        RAISE EXCEPTION 'gitaudit: % is not a monthly partition of events', $1;
    END IF;
    part := to_regclass(quote_ident($1));
    IF part IS NULL OR NOT EXISTS (
        SELECT 1 FROM pg_inherits WHERE inhrelid = part AND inhparent = 'events'::regclass
    ) THEN
        RAISE EXCEPTION 'gitaudit: % is not a monthly partition of events', $1;
    END IF;
    -- detach first: from then on no row can arrive in it (writers wait for the lock
    -- on events until this transaction ends); a refusal below rolls the detach back
    EXECUTE format('ALTER TABLE events DETACH PARTITION %s', part);
    EXECUTE format(
        'SELECT p.chain_id, max(p.seq) AS seq FROM %s p GROUP BY p.chain_id '
        'HAVING max(p.seq) > coalesce((SELECT max(g.upto_seq) FROM retention_grants g '
        'WHERE g.chain_id = p.chain_id), 0) LIMIT 1', part) INTO uncovered;
    IF uncovered.chain_id IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE = format(
            'gitaudit: partition %s holds seq %s of chain %s, which no retention grant '
            || 'covers; nothing was dropped', $1, uncovered.seq, uncovered.chain_id);
    END IF;
    EXECUTE format('SELECT count(*) FROM %s', part) INTO held;
    FOR c IN EXECUTE format(
        'SELECT p.chain_id, max(p.seq) AS seq FROM %s p GROUP BY p.chain_id', part)
    LOOP
        INSERT INTO retention_grants (chain_id, upto_seq, granted_at, reason)
            VALUES (c.chain_id, c.seq, now(), 'partition ' || $1 || ' dropped')
            ON CONFLICT DO NOTHING;
        EXECUTE format(
            'INSERT INTO checkpoints (chain_id, seq, hash, created_at) '
            'SELECT p.chain_id, p.seq, p.hash, now() FROM %s p '
            'WHERE p.chain_id = $1 AND p.seq = $2 ON CONFLICT DO NOTHING', part)
            USING c.chain_id, c.seq;
        DELETE FROM events e WHERE e.chain_id = c.chain_id AND e.seq <= c.seq;
        GET DIAGNOSTICS n = ROW_COUNT;
        deleted := deleted + n;
        DELETE FROM checkpoints k WHERE k.chain_id = c.chain_id AND k.seq < c.seq;
    END LOOP;
    EXECUTE format('DROP TABLE %s', part);
    RETURN held + deleted;
END;
$fn$
"""


def _grant_retention(signature: str) -> str:
    return f"""
DO $do$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gitaudit_retention') THEN
        GRANT EXECUTE ON FUNCTION {signature} TO gitaudit_retention;
    END IF;
END;
$do$
"""


def upgrade() -> None:
    """Create (or replace) both functions on PostgreSQL; nothing on SQLite."""
    if op.get_bind().dialect.name != "postgresql":
        return
    schema = op.get_bind().exec_driver_sql("SELECT quote_ident(current_schema())").scalar_one()
    for signature, body in ((GRANT_SIGNATURE, GRANT_FUNCTION), (DROP_SIGNATURE, DROP_FUNCTION)):
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
        op.execute(body.replace("{schema}", str(schema)))
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(_grant_retention(signature))


def downgrade() -> None:
    """Drop both functions."""
    if op.get_bind().dialect.name == "postgresql":
        for signature in SIGNATURES:
            op.execute(f"DROP FUNCTION IF EXISTS {signature}")
