"""Appending to a chain: the one place integrity fields are assigned.

:meth:`ChainWriter.append` runs inside a write transaction the caller opened
(on SQLite with ``BEGIN IMMEDIATE``, which takes the database's write lock up
front); on PostgreSQL it takes a transaction-scoped advisory lock of its own
chain (``pg_advisory_xact_lock`` on a hash of ``chain_id``). Either way, one
writer at a time reads the chain head and extends it, so several processes can
append to the same chain without forking it, and on PostgreSQL writers of
different chains (one daemon per host) never wait for each other. The advisory
lock needs no privilege, so the ``gitaudit_writer`` role needs no UPDATE right
that ``SELECT ... FOR UPDATE`` would require.

On PostgreSQL the rows go in with one ``COPY ... FROM STDIN`` per batch, in the
same transaction (``bench/bench_pg_ingest.py`` measures it against a multi-row
INSERT and executemany); SQLite takes one executemany.
On SQLite the appended rows enter the full-text index in that same transaction.

Before a record is sealed, :class:`gitaudit.store.subjects.Pseudonymizer` replaces the
identities in it by subject tokens (erasure by crypto-shredding), in the same
transaction; the caller reports the commit with :meth:`ChainWriter.committed`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, select, text
from sqlalchemy.exc import DBAPIError

from gitaudit.catalog import canonical_json
from gitaudit.errors import ConfigError
from gitaudit.store.integrity import GENESIS_HASH, ChainHasher, payload_of
from gitaudit.store.search import sqlite_index_rows
from gitaudit.store.subjects import Pseudonymizer
from gitaudit.store.tables import chains, checkpoints, denormalize, events

# First key of the per-chain pg_advisory_xact_lock(int, int) ("gach" in ASCII); the
# second is hashtext(chain_id). Two chains sharing a hash only share a lock.
CHAIN_LOCK_SPACE: Final = 0x67616368
# The events columns in table order, as COPY takes them.
_COPY_COLUMNS: Final = tuple(column.name for column in events.columns)
_COPY_SQL: Final = f"COPY events ({', '.join(_COPY_COLUMNS)}) FROM STDIN"

# Ids per "which of these are stored already?" query: well under SQLite's
# 32766 bound-parameter limit and PostgreSQL's 65535.
_ID_CHUNK: Final = 900

# Placeholders for the integrity fields while a record is serialized once for both its
# hash payload and its body (see _encode); random per process, so data cannot hold them.
_MARK: Final = uuid.uuid4().hex
_HASH_MARK: Final = f"hash-{_MARK}"
_PREV_MARK: Final = f"prev-{_MARK}"
_HASH_ENTRY: Final = f'"hash":"{_HASH_MARK}",'
_PREV_ENTRY: Final = f'"prev_hash":"{_PREV_MARK}",'
# What sealing one record raises when that record cannot be stored (NaN, a year the
# database cannot hold, a value of the wrong type): the record is replaced, the batch goes on.
UNSEALABLE: Final = (ValueError, TypeError, OverflowError, RecursionError, KeyError, AttributeError)

# Builds the ``audit.rejected`` record that stands for a record the store cannot take.
StandIn = Callable[[dict[str, Any], BaseException], dict[str, Any]]


@dataclass(frozen=True)
class AppendResult:
    """What one append did: records added, and records skipped because their id was stored.

    ``positions`` maps the id of every record added to its integrity fields in
    chain ``chain_id``: ``(seq, prev_hash, hash)``. ``replaced`` maps the index
    (in the appended sequence) of each record the store could not take to the
    ``audit.rejected`` record stored in its place.
    """

    inserted: int
    duplicates: int
    chain_id: str | None = None
    positions: Mapping[str, tuple[int, str, str]] = field(default_factory=dict)
    replaced: Mapping[int, dict[str, Any]] = field(default_factory=dict)

    def then(self, later: AppendResult, offset: int) -> AppendResult:
        """This result followed by ``later``, an append of the records from ``offset`` on."""
        return AppendResult(
            self.inserted + later.inserted,
            self.duplicates + later.duplicates,
            later.chain_id or self.chain_id,
            {**self.positions, **later.positions},
            {**self.replaced, **{offset + index: r for index, r in later.replaced.items()}},
        )


class ChainWriter:
    """Extends one chain: dedupes by id, assigns seq and hashes, writes a checkpoint."""

    def __init__(
        self, chain_id: str, hasher: ChainHasher, stand_in: StandIn | None = None
    ) -> None:
        if not chain_id:
            raise ConfigError("chain_id must not be empty", "set GITAUDIT_CHAIN_ID or unset it")
        self.chain_id = chain_id
        self.hasher = hasher
        self.stand_in = stand_in
        self.subjects = Pseudonymizer()

    def committed(self) -> None:
        """The transaction of the last :meth:`append` committed (subjects it made are cached)."""
        self.subjects.committed()

    def append(self, conn: Connection, records: Sequence[dict[str, Any]]) -> AppendResult:
        """Append ``records`` (validated, without integrity fields) in the caller's transaction.

        A record that cannot be sealed (see :data:`UNSEALABLE`) is replaced by its
        ``stand_in`` when one is configured (else the error is raised).
        """
        if not records:
            return AppendResult(0, 0, self.chain_id)
        self._lock_chain(conn)
        self.subjects.begin(conn)
        fresh = self._unstored(conn, records)
        positions: dict[str, tuple[int, str, str]] = {}
        replaced: dict[int, dict[str, Any]] = {}
        if fresh:
            seq, prev_hash = self._head(conn)
            now = datetime.now(UTC)
            rows = []
            for index, original in fresh:
                record = original
                try:
                    row = self._seal(self.subjects.record(conn, record), seq + 1, prev_hash, now)
                except UNSEALABLE as exc:
                    if self.stand_in is None:
                        raise
                    record = replaced[index] = self.stand_in(original, exc)
                    if str(record["id"]) in positions or self._stored(conn, str(record["id"])):
                        continue  # stored by an earlier run that was cut short
                    record = self.subjects.record(conn, record)
                    row = self._seal(record, seq + 1, prev_hash, now)
                seq += 1
                positions[str(record["id"])] = (seq, prev_hash, row["hash"])
                prev_hash = row["hash"]
                rows.append(row)
            if rows:
                insert_rows(conn, rows)
                if conn.dialect.name == "sqlite":  # PostgreSQL indexes the body itself
                    sqlite_index_rows(conn, self.chain_id, int(rows[0]["seq"]), seq)
                conn.execute(
                    checkpoints.insert(),
                    {"chain_id": self.chain_id, "seq": seq, "hash": prev_hash, "created_at": now},
                )
        inserted = len(positions)
        return AppendResult(
            inserted, len(records) - inserted, self.chain_id, positions, replaced
        )

    @staticmethod
    def _stored(conn: Connection, event_id: str) -> bool:
        return conn.scalar(select(events.c.id).where(events.c.id == event_id)) is not None

    def _lock_chain(self, conn: Connection) -> None:
        """Lock this chain (PostgreSQL), register it if new and check the key fits."""
        if conn.dialect.name == "postgresql":  # imported here: ~100 ms no reader needs
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            conn.execute(
                text("SELECT pg_advisory_xact_lock(:space, hashtext(:chain))"),
                {"space": CHAIN_LOCK_SPACE, "chain": self.chain_id},
            )
            statement: Any = pg_insert(chains)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            statement = sqlite_insert(chains)
        conn.execute(
            statement
            .values(
                chain_id=self.chain_id,
                created_at=datetime.now(UTC),
                algorithm=self.hasher.algorithm,
                key_fingerprint=self.hasher.fingerprint,
            )
            .on_conflict_do_nothing(index_elements=["chain_id"])
        )
        row = conn.execute(
            select(chains.c.algorithm, chains.c.key_fingerprint).where(
                chains.c.chain_id == self.chain_id
            )
        ).one()
        if (row.algorithm, row.key_fingerprint) != (self.hasher.algorithm, self.hasher.fingerprint):
            raise ConfigError(
                f"chain {self.chain_id!r} was started with {row.algorithm} "
                f"(key fingerprint {row.key_fingerprint}), but this writer uses "
                f"{self.hasher.algorithm} (key fingerprint {self.hasher.fingerprint})",
                "configure the chain's original key file (GITAUDIT_CHAIN_KEY_FILE), "
                "or write to a new chain by setting GITAUDIT_CHAIN_ID",
            )

    def _unstored(
        self, conn: Connection, records: Sequence[dict[str, Any]]
    ) -> list[tuple[int, dict[str, Any]]]:
        """Records (with their index) whose id is neither stored nor repeated earlier."""
        ids = list({str(record["id"]) for record in records})
        stored: set[str] = set()
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            stored.update(conn.scalars(select(events.c.id).where(events.c.id.in_(chunk))))
        fresh = []
        for index, record in enumerate(records):
            event_id = str(record["id"])
            if event_id not in stored:
                stored.add(event_id)
                fresh.append((index, record))
        return fresh

    def _head(self, conn: Connection) -> tuple[int, str]:
        """The chain's last seq and hash (0 and the genesis hash for a new chain).

        A chain whose every record retention deleted goes on from the checkpoint
        retention left at its cut.
        """
        row = conn.execute(
            select(events.c.seq, events.c.hash)
            .where(events.c.chain_id == self.chain_id)
            .order_by(events.c.seq.desc())
            .limit(1)
        ).first()
        if row is None:
            row = conn.execute(
                select(checkpoints.c.seq, checkpoints.c.hash)
                .where(checkpoints.c.chain_id == self.chain_id)
                .order_by(checkpoints.c.seq.desc())
                .limit(1)
            ).first()
        return (0, GENESIS_HASH) if row is None else (int(row.seq), str(row.hash))

    def reseal(self, record: dict[str, Any], seq: int, prev_hash: str) -> dict[str, Any]:
        """The events row of a stored ``record`` sealed again as seq ``seq`` after
        ``prev_hash`` (``gitaudit db rekey``; its ``recorded_at`` is left out: it stays)."""
        row = self._seal(record, seq, prev_hash, datetime.now(UTC))
        del row["recorded_at"]
        return row

    def _seal(
        self, record: dict[str, Any], seq: int, prev_hash: str, now: datetime
    ) -> dict[str, Any]:
        """The events row of ``record`` as seq ``seq`` after ``prev_hash``."""
        full = dict(record)
        full["chain_id"] = self.chain_id
        full["seq"] = seq
        full["prev_hash"] = prev_hash
        full["hash"] = None
        full["hash"], body = self._encode(full)
        row = denormalize(full)
        row["recorded_at"] = now
        row["body"] = body
        return row

    def _encode(self, full: dict[str, Any]) -> tuple[str, str]:
        """The hash and body text of ``full`` (whose ``prev_hash`` is set), encoding JSON once.

        The record is serialized with placeholders for ``prev_hash`` and ``hash``;
        dropping those two entries gives exactly ``canonical_json(payload)`` (keys are
        sorted and neither is the last key, as ``id`` and ``seq`` follow them), and
        filling them in gives the body. Anything unusual takes the plain two-pass way.
        """
        prev_hash = str(full["prev_hash"])
        text = json.dumps(
            {**full, "prev_hash": _PREV_MARK, "hash": _HASH_MARK},
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
        )
        payload = text.replace(_HASH_ENTRY, "", 1).replace(_PREV_ENTRY, "", 1)
        if text.count(_MARK) != 2 or len(payload) != len(text) - len(_HASH_ENTRY) - len(
            _PREV_ENTRY
        ):
            return self._encode_twice(full)
        try:
            digest = self.hasher.link(prev_hash, payload.encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate: see body_text
            return self._encode_twice(full)
        return digest, text.replace(_HASH_MARK, digest, 1).replace(_PREV_MARK, prev_hash, 1)

    def _encode_twice(self, full: dict[str, Any]) -> tuple[str, str]:
        digest = self.hasher.link(str(full["prev_hash"]), canonical_json(payload_of(full)))
        return digest, body_text({**full, "hash": digest})


def insert_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert events rows in the caller's transaction: COPY on PostgreSQL, else executemany.

    A driver error of the COPY is raised as SQLAlchemy's (``OperationalError`` for a lost
    connection), as any other statement's would be.
    """
    if conn.dialect.name != "postgresql":
        conn.execute(events.insert(), rows)
        return
    import psycopg

    driver = conn.connection.driver_connection
    assert driver is not None  # noqa: S101 - an open connection in a transaction
    try:
        with driver.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:
            for row in rows:
                copy.write_row([row[name] for name in _COPY_COLUMNS])
    except psycopg.Error as exc:
        lost = driver.broken or driver.closed
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            _COPY_SQL, None, exc, psycopg.Error, connection_invalidated=lost, dialect=conn.dialect
        ) from exc


def body_text(record: dict[str, Any]) -> str:
    """The stored body: canonical JSON (ASCII-escaped only if a string holds a lone surrogate)."""
    try:
        return canonical_json(record).decode("utf-8")
    except UnicodeDecodeError:
        return json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)
