"""The store's tables (SQLAlchemy Core), and how an event maps onto their columns.

The schema itself is created only by the Alembic revisions in ``migrations/``;
this module is what the code reads and writes through, and a test checks the
two agree. ``events.body`` holds the whole event as canonical JSON and is the
authority; every other event column is a denormalized copy for indexing, which
``gitaudit verify`` checks against the body.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ALGORITHMS: Final = ("sha256", "hmac-sha256")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC, returned aware on every engine.

    PostgreSQL keeps it as ``timestamptz``; SQLite as fixed-width UTC text, so
    string comparison is time order.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC (naive input is taken as UTC); SQLite gets it naive."""
        if value is None:
            return None
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(naming_convention=NAMING_CONVENTION)

TIME_ORDER: Final = ("occurred_at", "chain_id", "seq")
# The leading columns of the time-ordered filter indexes (revision 0005).
FILTER_INDEXES: Final[tuple[tuple[str, ...], ...]] = (
    (),
    ("operation",),
    ("operation", "repo_name"),
    ("actor_user",),
    ("actor_git_name",),
    ("actor_git_email",),
    ("actor_host",),
    ("repo_name",),
    ("repo_path",),
    ("repo_branch",),
    ("correlation_id",),
    ("severity",),
    ("source",),
    ("outcome",),
)

# Indexes on expressions of the body (revision 0005), which Core cannot describe portably.
EXPRESSION_INDEXES: Final = frozenset(
    {"ix_events_agent_tool", "ix_events_agent_session_id", "ix_events_search"}
)


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
                   ) -> bool:
    """Schema comparison hook: the full-text search tables (SQLite FTS5 and its shadow
    tables) and the expression indexes are made by revision 0005 and not described here."""
    if type_ == "index":
        return name not in EXPRESSION_INDEXES
    return not (type_ == "table" and (name or "").startswith("events_fts"))

chains = Table(
    "chains",
    metadata,
    Column("chain_id", String, primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("algorithm", String(16), nullable=False),
    Column("key_fingerprint", String(64), nullable=True),
    CheckConstraint("algorithm IN ('sha256', 'hmac-sha256')", name="algorithm"),
)

events = Table(
    "events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("chain_id", String, ForeignKey("chains.chain_id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("operation", String(64), nullable=False),
    Column("category", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("correlation_id", String(200), nullable=False),
    Column("parent_id", String, nullable=True),
    Column("actor_user", String, nullable=True),
    Column("actor_uid", BigInteger, nullable=True),
    Column("actor_git_name", String, nullable=True),
    Column("actor_git_email", String, nullable=True),
    Column("actor_host", String, nullable=True),
    Column("repo_name", String, nullable=True),
    Column("repo_path", String, nullable=True),
    Column("repo_branch", String, nullable=True),
    Column("duration_ms", Float, nullable=True),
    Column("body", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("chain_id", "seq"),
    # Revision 0005: each documented reader filter, then time order (ties by chain, seq),
    # so a filtered page is read from one index with its limit pushed down. The
    # expression indexes (agent fields) and full-text search live in the revision only.
    *(Index(None, *columns, *TIME_ORDER) for columns in FILTER_INDEXES),
    Index(None, "parent_id"),
)

# On PostgreSQL ``events`` is range-partitioned by month on ``occurred_at`` (revision 0002,
# gitaudit.store.partitions), and a key of a partitioned table must contain the partition
# key: there the keys above are these instead (constraint name -> columns). The writer's
# per-chain lock keeps (chain_id, seq) unique and gapless; ``gitaudit verify`` checks it.
PARTITIONED_KEYS: Final = {
    "pk_events": ("id", "occurred_at"),
    "uq_events_chain_id_seq_occurred_at": ("chain_id", "seq", "occurred_at"),
}

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("chain_id", String, ForeignKey("chains.chain_id"), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Written only by retention (a later revision of the code, not of the schema):
# a grant row makes the append-only triggers let DELETE through for the records
# of one chain up to ``upto_seq``. Grants are append-only themselves, so every
# sanctioned deletion leaves a permanent trace.
retention_grants = Table(
    "retention_grants",
    metadata,
    Column("chain_id", String, ForeignKey("chains.chain_id"), primary_key=True),
    Column("upto_seq", BigInteger, primary_key=True),
    Column("granted_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
)

# Signed checkpoints (``gitaudit checkpoint``, the daemon's schedule): one row per
# checkpoint, numbered from 1, each naming the body hash of the one before. The note
# is the full signed-note text; copies outside the store are what make it evidence.
signed_checkpoints = Table(
    "signed_checkpoints",
    metadata,
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("body_sha256", String(64), nullable=False, unique=True),
    Column("prev_sha256", String(64), nullable=True),
    Column("key_name", String, nullable=True),
    Column("note", Text, nullable=False),
)

# Erasure by crypto-shredding (revision 0007, gitaudit.store.subjects). ``subjects`` keeps
# one row per identity ever seen (its random pseudonym, its kind, the clear identity
# sealed with AES-GCM) and stays as a tombstone after forgetting (only ``forgotten_at``
# may change, once); ``subject_keys`` (the sealing key and the blind index that finds the
# row from a clear identity) and ``subject_links`` (identities seen together in one actor)
# are the only rows ``gitaudit forget`` deletes. ``subject_index_key`` holds the HMAC key
# of the blind index (one row, made by the revision).
subjects = Table(
    "subjects",
    metadata,
    Column("pseudonym", String(32), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("forgotten_at", UTCDateTime, nullable=True),
    CheckConstraint("kind IN ('user', 'name', 'email')", name="kind"),
    Index(None, "forgotten_at"),
)

subject_keys = Table(
    "subject_keys",
    metadata,
    Column("pseudonym", String(32), primary_key=True),
    Column("blind_index", String(64), nullable=False, unique=True),
    Column("key", LargeBinary, nullable=False),
)

subject_links = Table(
    "subject_links",
    metadata,
    Column("pseudonym", String(32), primary_key=True),
    Column("linked", String(32), primary_key=True),
)

subject_index_key = Table(
    "subject_index_key",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("key", LargeBinary, nullable=False),
)

# What ``gitaudit db rekey`` (revision 0008, gitaudit.store.rekey) rewrote: per record the
# hash it had and the hash it has since, for ``verify --checkpoints`` to read checkpoints
# signed before the run (bound by the digest in the chain's ``audit.store_rekeyed`` record).
rekeyed_hashes = Table(
    "rekeyed_hashes",
    metadata,
    Column("chain_id", String, ForeignKey("chains.chain_id"), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("rekey_id", String(36), primary_key=True),
    Column("old_hash", String(64), nullable=False),
    Column("new_hash", String(64), nullable=False),
    Column("rekeyed_at", UTCDateTime, nullable=False),
)

APPEND_ONLY_TABLES: Final = (
    "events", "chains", "checkpoints", "retention_grants", "signed_checkpoints", "rekeyed_hashes",
)  # fmt: skip

# Columns copied from the body, in the order ``denormalize`` fills them.
DENORMALIZED: Final = (
    "id",
    "chain_id",
    "seq",
    "occurred_at",
    "operation",
    "category",
    "outcome",
    "severity",
    "source",
    "correlation_id",
    "parent_id",
    "actor_user",
    "actor_uid",
    "actor_git_name",
    "actor_git_email",
    "actor_host",
    "repo_name",
    "repo_path",
    "repo_branch",
    "duration_ms",
    "prev_hash",
    "hash",
)


def parse_utc(value: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime (naive means UTC)."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def denormalize(record: dict[str, Any]) -> dict[str, Any]:
    """The indexed column values of one full event record (integrity fields included)."""
    actor = record.get("actor") or {}
    repo = record.get("repo") or {}
    occurred = record.get("occurred_at")
    return {
        "id": record.get("id"),
        "chain_id": record.get("chain_id"),
        "seq": record.get("seq"),
        "occurred_at": parse_utc(occurred) if isinstance(occurred, str) else None,
        "operation": record.get("operation"),
        "category": record.get("category"),
        "outcome": record.get("outcome"),
        "severity": record.get("severity"),
        "source": record.get("source"),
        "correlation_id": record.get("correlation_id"),
        "parent_id": record.get("parent_id"),
        "actor_user": actor.get("user"),
        "actor_uid": actor.get("uid"),
        "actor_git_name": actor.get("git_name"),
        "actor_git_email": actor.get("git_email"),
        "actor_host": actor.get("host"),
        "repo_name": repo.get("name"),
        "repo_path": repo.get("path"),
        "repo_branch": repo.get("branch"),
        "duration_ms": record.get("duration_ms"),
        "prev_hash": record.get("prev_hash"),
        "hash": record.get("hash"),
    }
