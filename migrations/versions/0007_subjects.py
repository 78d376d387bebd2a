"""Subjects: the key store of erasure by crypto-shredding (``gitaudit forget``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

Four tables (see :mod:`gitaudit.store.subjects`):

``subjects``
    one row per identity ever seen: random pseudonym, kind, the clear identity
    sealed with AES-GCM, ``forgotten_at``. A tombstone after forgetting: DELETE is
    refused and an UPDATE may only set ``forgotten_at`` once (triggers, both engines).
``subject_keys``
    the per-subject sealing key and the blind index (HMAC of the normalized
    identity) that finds a subject from a clear value; ``forget`` deletes the row.
``subject_links``
    identities seen together in one actor (user, git name, git email); deleted
    with the subject.
``subject_index_key``
    one row: the HMAC key of the blind index, random, made here.

Events stored before this revision keep the clear identities they were written
with (their bodies are chained; see README "Right to erasure", limits).
Idempotent: a table or trigger that exists already is kept.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "gitaudit: {what} on subjects refused: only forgotten_at may be set, once"
# An UPDATE of subjects is allowed only when it sets forgotten_at and changes nothing else.
ALLOWED_UPDATE = (
    "OLD.forgotten_at IS NULL AND NEW.forgotten_at IS NOT NULL "
    "AND NEW.pseudonym = OLD.pseudonym AND NEW.kind = OLD.kind "
    "AND NEW.sealed = OLD.sealed AND NEW.created_at = OLD.created_at"
)

PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION gitaudit_subjects_guard() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF {ALLOWED_UPDATE} THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '{MESSAGE.format(what="%")}', TG_OP;
END;
$fn$
"""


def _create_tables(existing: set[str]) -> None:
    if "subjects" not in existing:
        op.create_table(
            "subjects",
            sa.Column("pseudonym", sa.String(32), nullable=False),
            sa.Column("kind", sa.String(8), nullable=False),
            sa.Column("sealed", sa.LargeBinary(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("forgotten_at", sa.DateTime(timezone=True), nullable=True),
            sa.CheckConstraint("kind IN ('user', 'name', 'email')", name=op.f("ck_subjects_kind")),
            sa.PrimaryKeyConstraint("pseudonym", name=op.f("pk_subjects")),
        )
        op.create_index(op.f("ix_subjects_forgotten_at"), "subjects", ["forgotten_at"])
    if "subject_keys" not in existing:
        op.create_table(
            "subject_keys",
            sa.Column("pseudonym", sa.String(32), nullable=False),
            sa.Column("blind_index", sa.String(64), nullable=False),
            sa.Column("key", sa.LargeBinary(), nullable=False),
            sa.PrimaryKeyConstraint("pseudonym", name=op.f("pk_subject_keys")),
            sa.UniqueConstraint("blind_index", name=op.f("uq_subject_keys_blind_index")),
        )
    if "subject_links" not in existing:
        op.create_table(
            "subject_links",
            sa.Column("pseudonym", sa.String(32), nullable=False),
            sa.Column("linked", sa.String(32), nullable=False),
            sa.PrimaryKeyConstraint("pseudonym", "linked", name=op.f("pk_subject_links")),
        )
    if "subject_index_key" not in existing:
        table = op.create_table(
            "subject_index_key",
            sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("key", sa.LargeBinary(), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_index_key")),
        )
        op.bulk_insert(table, [{"id": 1, "key": os.urandom(32)}])


def upgrade() -> None:
    """Create the tables, the index key and the tombstone guard."""
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    _create_tables(set(inspector.get_table_names()))
    if bind.dialect.name == "postgresql":
        triggers = {row[0] for row in bind.exec_driver_sql(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'subjects'::regclass")}  # fmt: skip
        op.execute(PG_FUNCTION)
        if "subjects_guard" not in triggers:
            op.execute("CREATE TRIGGER subjects_guard BEFORE UPDATE OR DELETE ON subjects "
                       "FOR EACH ROW EXECUTE FUNCTION gitaudit_subjects_guard()")  # fmt: skip
            op.execute("CREATE TRIGGER subjects_no_truncate BEFORE TRUNCATE ON subjects "
                       "FOR EACH STATEMENT EXECUTE FUNCTION gitaudit_subjects_guard()")  # fmt: skip
        return
    triggers = {row[0] for row in bind.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'")}  # fmt: skip
    if "subjects_no_update" not in triggers:
        op.execute(
            f"CREATE TRIGGER subjects_no_update BEFORE UPDATE ON subjects WHEN NOT "
            f"({ALLOWED_UPDATE}) BEGIN SELECT RAISE(ABORT, "
            f"'{MESSAGE.format(what='UPDATE')}'); END"
        )
    if "subjects_no_delete" not in triggers:
        op.execute(
            "CREATE TRIGGER subjects_no_delete BEFORE DELETE ON subjects BEGIN SELECT "
            f"RAISE(ABORT, '{MESSAGE.format(what='DELETE')}'); END"
        )


def downgrade() -> None:
    """Drop the tables (and with them every subject key: forgets everyone)."""
    for table in ("subject_index_key", "subject_links", "subject_keys", "subjects"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS gitaudit_subjects_guard()")
