"""Least-privilege PostgreSQL roles of the store (``gitaudit db init-roles``).

Three ``NOLOGIN`` group roles; a DBA creates login users and grants them one::

    gitaudit_writer     INSERT on events, chains, checkpoints; SELECT and INSERT on
                        the subject tables (revision 0007), SELECT only of what
                        appending reads (the chain's registration and head, the ids
                        already stored, the schema revision); EXECUTE on
                        gitaudit_ensure_partitions (the daemon creates partitions
                        ahead through it). Nothing else: no UPDATE, DELETE, TRUNCATE.
    gitaudit_reader     SELECT on the store's tables (log, verify, reports).
    gitaudit_retention  EXECUTE on gitaudit_expire(chain_id, upto_seq, reason) only: it
                        deletes through that SECURITY DEFINER function, which records the
                        retention grant and deletes in one transaction. (The login that
                        runs retention is a member of gitaudit_reader too, to read what
                        it archives, and of gitaudit_writer, to record audit.retention.)
                        And EXECUTE on gitaudit_grant_expiry and
                        gitaudit_drop_expired_partition (revision 0006), which drop a
                        monthly partition only when grants cover every row in it.

The statements are idempotent (roles are created only when missing; GRANT is a
no-op when granted), refer to tables by name in the current schema, and are what
``--print-sql`` prints for DBAs who apply them themselves. Revisions up to 0008 must be
applied first (the functions and partitions exist from then on).
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import Connection, text

WRITER: Final = "gitaudit_writer"
READER: Final = "gitaudit_reader"
RETENTION: Final = "gitaudit_retention"
ROLES: Final = (WRITER, READER, RETENTION)

READ_TABLES: Final = (
    "events", "chains", "checkpoints", "retention_grants", "signed_checkpoints", "alembic_version",
    "subjects", "subject_keys", "subject_links", "subject_index_key", "rekeyed_hashes",
)  # fmt: skip


def _create_role(role: str) -> str:
    return (
        "DO $$ BEGIN "  # noqa: S608 - our own role names, no input
        f"IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
        f"CREATE ROLE {role} NOLOGIN; "
        "END IF; END $$;"
    )


def roles_sql() -> list[str]:
    """The idempotent statements creating the three roles and their privileges."""
    everyone = ", ".join(ROLES)
    return [
        *(_create_role(role) for role in ROLES),
        "DO $$ BEGIN EXECUTE format("
        f"'GRANT USAGE ON SCHEMA %I TO {everyone}', current_schema()); END $$;",
        # appending: register the chain, insert rows and the checkpoint of the new head
        f"GRANT INSERT ON events, chains, checkpoints TO {WRITER};",
        f"GRANT SELECT (chain_id, algorithm, key_fingerprint) ON chains TO {WRITER};",
        f"GRANT SELECT (id, chain_id, seq, hash) ON events TO {WRITER};",
        # a chain emptied by retention goes on from its newest checkpoint
        f"GRANT SELECT (chain_id, seq, hash) ON checkpoints TO {WRITER};",
        # the daemon's signed checkpoints (revision 0004): numbered, linked to the one before
        f"GRANT SELECT, INSERT ON signed_checkpoints TO {WRITER};",
        f"GRANT SELECT ON alembic_version TO {WRITER}, {RETENTION};",
        # identities become subject tokens (revision 0007): create subjects, find them
        f"GRANT SELECT, INSERT ON subjects, subject_keys, subject_links TO {WRITER};",
        f"GRANT SELECT ON subject_index_key TO {WRITER};",
        f"GRANT EXECUTE ON FUNCTION gitaudit_ensure_partitions(timestamptz, integer) TO {WRITER};",
        f"GRANT SELECT ON {', '.join(READ_TABLES)} TO {READER};",
        f"GRANT EXECUTE ON FUNCTION gitaudit_expire(text, bigint, text) TO {RETENTION};",
        # whole expired monthly partitions (revision 0006)
        f"GRANT EXECUTE ON FUNCTION gitaudit_grant_expiry(text, bigint, text), "
        f"gitaudit_drop_expired_partition(text) TO {RETENTION};",
    ]


def init_roles(conn: Connection) -> None:
    """Apply :func:`roles_sql` in the caller's transaction (needs CREATEROLE and ownership)."""
    for statement in roles_sql():
        conn.execute(text(statement))
