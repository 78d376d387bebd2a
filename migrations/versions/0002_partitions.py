"""PostgreSQL at scale: events partitioned by month, query indexes, the retention function.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

PostgreSQL: ``events`` becomes a table range-partitioned by month on
``occurred_at`` (see :mod:`gitaudit.store.partitions`), on a database with rows
too: the old table is renamed out of the way, the partitioned one created with
partitions for every month holding rows (up to ``MONTHS_AHEAD`` months from
now; rows beyond go to the default partition) and for the months ahead, the
rows copied over in ``(chain_id, seq)`` order, the old table dropped. A key of
a partitioned table must contain the partition key: the primary key becomes
``(id, occurred_at)`` and the unique key ``(chain_id, seq, occurred_at)``; the
writer's per-chain lock keeps ``seq`` gapless and unique per chain, and
``gitaudit verify`` checks it explicitly. The append-only row triggers are
declared on the parent (PostgreSQL clones them to every partition); the
TRUNCATE trigger and the revocations are added on every partition.

It also creates ``gitaudit_expire(chain_id, upto_seq, reason)``, the one way
the ``gitaudit_retention`` role deletes: a ``SECURITY DEFINER`` function (it
runs as the table owner, ``search_path`` pinned) that inserts the
``retention_grants`` row and deletes that chain's events up to ``upto_seq`` in
the caller's transaction, returning how many it deleted.

Both engines: indexes for the readers' common questions (an actor's latest
events, a repository's pushes in a month, a host's day). SQLite keeps one
events table otherwise. Every step checks what exists first, so the revision
runs whatever came before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

from gitaudit.store import partitions

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_INDEXES = (
    ("actor_user", "occurred_at"),
    ("repo_name", "operation", "occurred_at"),
    ("actor_host", "occurred_at"),
)

DEFINER = "SECURITY DEFINER SET search_path = {schema}, pg_temp"
# pg_advisory_xact_lock key serializing partition maintenance ("gapart" in ASCII).
PARTITION_LOCK_KEY = 0x676170617274

EXPIRE_FUNCTION = """
CREATE OR REPLACE FUNCTION gitaudit_expire(chain_id text, upto_seq bigint, reason text)
RETURNS bigint LANGUAGE plpgsql {definer} AS $fn$
#variable_conflict use_column
DECLARE
    deleted bigint;
BEGIN
    INSERT INTO retention_grants (chain_id, upto_seq, granted_at, reason)
    VALUES ($1, $2, now(), $3)
    ON CONFLICT DO NOTHING;
    DELETE FROM events e WHERE e.chain_id = $1 AND e.seq <= $2;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END;
$fn$
"""

PROTECT_FUNCTION = """
CREATE OR REPLACE FUNCTION gitaudit_protect(tbl text) RETURNS void LANGUAGE plpgsql
SET search_path = {schema}, pg_temp AS $fn$
BEGIN
    EXECUTE format(
        'CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT '
        'EXECUTE FUNCTION gitaudit_append_only(%L)', tbl || '_no_truncate', tbl, 'fixed');
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %I FROM PUBLIC', tbl);
END;
$fn$
"""

CREATE_PARTITION_FUNCTION = """
CREATE OR REPLACE FUNCTION gitaudit_create_partition(month date) RETURNS text
LANGUAGE plpgsql {definer} AS $fn$
DECLARE
    first date := date_trunc('month', month::timestamp)::date;
    after date := (date_trunc('month', month::timestamp) + interval '1 month')::date;
    name text := 'events_p' || to_char(first, 'YYYYMM');
    low text := quote_literal(first::text || ' 00:00:00+00');
    high text := quote_literal(after::text || ' 00:00:00+00');
    waiting boolean;
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM events_default '
                   'WHERE occurred_at >= %s AND occurred_at < %s)', low, high) INTO waiting;
    IF waiting THEN
        ALTER TABLE events DETACH PARTITION events_default;
        ALTER TABLE events_default RENAME TO events_default_moving;
        ALTER TRIGGER events_default_no_truncate ON events_default_moving
            RENAME TO events_default_moving_no_truncate;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%s) TO (%s)',
                   name, low, high);
    PERFORM gitaudit_protect(name);
    IF waiting THEN
        CREATE TABLE events_default PARTITION OF events DEFAULT;
        PERFORM gitaudit_protect('events_default');
        INSERT INTO events SELECT * FROM events_default_moving;
        DROP TABLE events_default_moving;
    END IF;
    RETURN name;
END;
$fn$
"""

ENSURE_PARTITIONS_FUNCTION = """
CREATE OR REPLACE FUNCTION gitaudit_ensure_partitions(at_time timestamptz, months_ahead integer)
RETURNS SETOF text LANGUAGE plpgsql {definer} AS $fn$
DECLARE
    month date := date_trunc('month', at_time AT TIME ZONE 'UTC')::date;
    created text;
BEGIN
    PERFORM pg_advisory_xact_lock({lock});
    FOR ahead IN 0..months_ahead LOOP
        created := gitaudit_create_partition((month + make_interval(months => ahead))::date);
        IF created IS NOT NULL THEN
            RETURN NEXT created;
        END IF;
    END LOOP;
END;
$fn$
"""
FUNCTIONS = {
    "gitaudit_protect(text)": PROTECT_FUNCTION,
    "gitaudit_create_partition(date)": CREATE_PARTITION_FUNCTION,
    "gitaudit_ensure_partitions(timestamptz, integer)": ENSURE_PARTITIONS_FUNCTION,
    "gitaudit_expire(text, bigint, text)": EXPIRE_FUNCTION,
}


def _index_name(columns: Sequence[str]) -> str:
    return "ix_events_" + "_".join(columns)


def _existing_indexes() -> set[str]:
    inspector = sa.inspect(op.get_bind())
    return {str(index["name"]) for index in inspector.get_indexes("events")}


def _add_query_indexes() -> None:
    existing = _existing_indexes()
    for columns in NEW_INDEXES:
        if _index_name(columns) not in existing:
            op.create_index(_index_name(columns), "events", list(columns))


def _months_with_rows(table: str, last: date) -> list[date]:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date "
            f"FROM {table}"
        )
    )
    return sorted(month for (month,) in rows if month <= last)


def _partition_events() -> None:
    """Replace the plain ``events`` table by a partitioned one holding the same rows."""
    old = "events_0001"
    inspector = sa.inspect(op.get_bind())
    indexes = {  # every plain index the table has, whatever revisions before this one made
        str(index["name"]): [str(column) for column in index["column_names"]]
        for index in inspector.get_indexes("events")
        if not index.get("unique")
    }
    for columns in NEW_INDEXES:
        indexes.setdefault(_index_name(columns), list(columns))
    op.rename_table("events", old)
    for name in [*indexes, "pk_events", "uq_events_chain_id_seq"]:
        op.execute(f"ALTER INDEX IF EXISTS {name} RENAME TO {name}_0001")
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT fk_events_chain_id_chains "
               "TO fk_events_0001_chain_id_chains")  # fmt: skip
    # LIKE: the same columns, whatever revisions before this one added
    op.execute(
        f"CREATE TABLE events (LIKE {old} INCLUDING DEFAULTS) PARTITION BY RANGE (occurred_at)"
    )
    op.create_primary_key("pk_events", "events", ["id", "occurred_at"])
    op.create_unique_constraint(
        "uq_events_chain_id_seq_occurred_at", "events", ["chain_id", "seq", "occurred_at"]
    )
    op.create_foreign_key(
        "fk_events_chain_id_chains", "events", "chains", ["chain_id"], ["chain_id"]
    )
    op.execute(f"CREATE TABLE {partitions.DEFAULT} PARTITION OF events DEFAULT")
    op.execute("SELECT gitaudit_protect('events')")
    op.execute(f"SELECT gitaudit_protect('{partitions.DEFAULT}')")
    month = partitions.month_of(datetime.now(UTC))
    ahead = [month]
    for _ in range(partitions.MONTHS_AHEAD):
        ahead.append(partitions.next_month(ahead[-1]))
    for each in sorted({*_months_with_rows(old, ahead[-1]), *ahead}):
        op.execute(sa.text("SELECT gitaudit_create_partition(:month)").bindparams(month=each))
    op.execute(f"INSERT INTO events SELECT * FROM {old} ORDER BY chain_id, seq")
    op.drop_table(old)
    for name, columns in indexes.items():
        op.create_index(name, "events", columns)
    op.execute(
        "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
        "FOR EACH ROW EXECUTE FUNCTION gitaudit_append_only('retainable')"
    )


def _create_functions() -> None:
    """The functions of the store's owner (CREATE OR REPLACE: a re-run replaces them)."""
    schema = op.get_bind().scalar(sa.text("SELECT quote_ident(current_schema())"))
    definer = DEFINER.format(schema=schema)
    for signature, sql in FUNCTIONS.items():
        op.execute(sql.format(schema=schema, definer=definer, lock=PARTITION_LOCK_KEY))
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")


def upgrade() -> None:
    """Partition events (PostgreSQL), add the query indexes and the retention function."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        _add_query_indexes()
        return
    _create_functions()
    if not partitions.is_partitioned(bind):
        _partition_events()
    else:
        _add_query_indexes()


def downgrade() -> None:
    """Drop the query indexes and the function; a partitioned table stays partitioned."""
    bind = op.get_bind()
    existing = _existing_indexes()
    for columns in NEW_INDEXES:
        if _index_name(columns) in existing:
            op.drop_index(_index_name(columns), "events")
    if bind.dialect.name == "postgresql":
        for signature in reversed(FUNCTIONS):
            op.execute(f"DROP FUNCTION IF EXISTS {signature}")
