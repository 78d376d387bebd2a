"""``gitaudit db rekey``: erasure for events stored before revision 0007 (re-keying).

Revision 0007 made the store writer put subject tokens in place of identities
(:class:`gitaudit.store.subjects.Pseudonymizer`); events stored before it keep clear
identities in their chained bodies, which ``forget`` cannot erase. This module
rewrites them, one chain at a time, each in **one write transaction** (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: the chain's ``pg_advisory_xact_lock`` as the writer
takes it, then the ``ALTER TABLE`` below, which locks ``events`` for the rest of the
transaction):

1. the chain is verified first (:func:`gitaudit.store.integrity.verify_chain`, the
   checks of ``gitaudit verify``); a chain that fails is refused and left untouched;
2. the append-only triggers of ``events`` and ``checkpoints`` are set aside for this
   transaction only (SQLite: dropped and created again from their own stored SQL,
   DDL being transactional; PostgreSQL: ``ALTER TABLE ... DISABLE/ENABLE TRIGGER``,
   which only the table owner may do: the ``gitaudit_writer`` role is refused);
3. every body is passed through the writer's own ``Pseudonymizer`` (the same tokens
   new events of that person get); from the first body it changes to the head each
   record is sealed again by the writer (:meth:`ChainWriter.reseal`: the chain's
   hasher, HMAC key when the chain is keyed), its indexed columns set as the writer
   sets them, the SQLite full-text index kept in step (PostgreSQL indexes the body
   expression itself), the per-append checkpoints in the rewritten range given the
   new hashes, and each record's old and new hash stored in ``rekeyed_hashes``
   (revision 0008) under this run's ``rekey_id``;
4. ``audit.store_rekeyed`` is appended to the chain through the writer, in the same
   transaction: chain, records rewritten, first seq, old and new head hash and
   :func:`mapping_digest` of the mapping rows, so the mapping is bound into the chain
   (``verify --checkpoints`` reads a checkpoint signed before the run through it:
   :class:`RekeyedHashes`). Never an identity.

Counting what is left (:func:`plan`) runs the same pseudonymizer with a stand-in
token (:class:`_Probe`), so "holds clear identities" means exactly "the writer would
change it", and a second run finds nothing to do. A subject forgotten before the
rekey cannot be recognized in the old bodies (nothing links a clear identity to a
forgotten token): its old events get a new subject, to be forgotten again.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, bindparam, select, text

from gitaudit.errors import ConfigError
from gitaudit.store import search
from gitaudit.store.engine import snapshot, write_transaction
from gitaudit.store.integrity import Problem, hasher_for_chain, verify_chain
from gitaudit.store.reader import count_events
from gitaudit.store.subjects import PREFIX, Pseudonymizer, normalized
from gitaudit.store.tables import chains, checkpoints, events, rekeyed_hashes
from gitaudit.store.writer import CHAIN_LOCK_SPACE, ChainWriter

OPERATION: Final = "audit.store_rekeyed"
_CHUNK: Final = 2000
# The indexed columns a rewritten body can change (identities, and the free text walked);
# the keys (id, chain, seq, occurred_at: PostgreSQL's partition key) never change.
_UPDATED: Final = (
    "body", "prev_hash", "hash", "actor_user", "actor_git_name", "actor_git_email",
    "actor_host", "repo_name", "repo_path", "repo_branch",
)  # fmt: skip
_GUARDED: Final = ("events", "checkpoints")
_STAND_IN: Final = PREFIX + "0" * 16

Progress = Callable[[int, int], None]
# Builds the audit.store_rekeyed record (sanitized, validated) of one rewritten chain, given
# the chain and the run's id (see :func:`details`).
Recorder = Callable[["ChainRekey", str], dict[str, Any]]


class _Probe(Pseudonymizer):
    """The writer's pseudonymizer with one stand-in token: creates nothing, only tells
    whether a body would change."""

    def begin(self, conn: Connection) -> None:
        """Nothing cached to drop."""

    def token(self, conn: Connection, kind: str, value: str) -> str:
        """The same stand-in for every identity (known at once: actors are cached)."""
        self._known[kind, normalized(kind, value)] = _STAND_IN
        return _STAND_IN

    def _link(self, conn: Connection, tokens: list[str]) -> None:
        return


@dataclass
class ChainRekey:
    """One chain: what holds clear identities, and what the run did to it."""

    chain_id: str
    records: int = 0
    clear: int = 0  # bodies the pseudonymizer would change
    first_seq: int | None = None  # the first of them
    refused: Problem | None = None  # failed verification: untouched
    error: str | None = None  # could not be rewritten (its chain key is not configured)
    rewritten: int = 0  # records sealed again (from first_seq to the head)
    last_seq: int | None = None
    old_head: str | None = None
    new_head: str | None = None
    digest: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON summary (``db rekey --format json``)."""
        return {
            "chain_id": self.chain_id,
            "records": self.records,
            "clear_records": self.clear,
            "first_seq": self.first_seq,
            "rewritten": self.rewritten,
            "refused": None if self.refused is None else self.refused.as_dict(),
            "error": self.error,
            "old_head_hash": self.old_head,
            "new_head_hash": self.new_head,
        }  # fmt: skip


@dataclass
class RekeyReport:
    """What a run did (or, dry run, would do)."""

    dry_run: bool
    rekey_id: str
    chains: list[ChainRekey] = field(default_factory=list)
    scrubbed: bool = False  # the old bodies' bytes are out of the database files

    @property
    def clear(self) -> int:
        """Records holding clear identities before the run (every chain)."""
        return sum(chain.clear for chain in self.chains)

    @property
    def failed(self) -> list[ChainRekey]:
        """Chains left untouched although they hold clear identities."""
        return [chain for chain in self.chains if chain.refused or chain.error]

    def as_dict(self) -> dict[str, Any]:
        """JSON summary."""
        return {
            "dry_run": self.dry_run,
            "rekey_id": self.rekey_id,
            "clear_records": self.clear,
            "rewritten": sum(chain.rewritten for chain in self.chains),
            "failed_chains": [chain.chain_id for chain in self.failed],
            "chains": [chain.as_dict() for chain in self.chains],
        }


def details(chain: ChainRekey, rekey_id: str) -> dict[str, Any]:
    """The ``details`` of chain ``chain``'s ``audit.store_rekeyed`` record: no identity."""
    return {
        "chain_id": chain.chain_id,
        "rekey_id": rekey_id,
        "records_rewritten": chain.rewritten,
        "clear_records": chain.clear,
        "first_seq": chain.first_seq,
        "last_seq": chain.last_seq,
        "old_head_hash": chain.old_head,
        "new_head_hash": chain.new_head,
        "mapping_sha256": chain.digest,
    }


# --- what is left to do ------------------------------------------------------------------


def _rows(conn: Connection, chain_id: str, after: int = 0) -> Iterator[Any]:
    """The chain's rows (seq, body, hash) in seq order, read in chunks."""
    while True:
        chunk = conn.execute(
            select(events.c.seq, events.c.body, events.c.hash)
            .where(events.c.chain_id == chain_id, events.c.seq > after)
            .order_by(events.c.seq)
            .limit(_CHUNK)
        ).all()
        yield from chunk
        if len(chunk) < _CHUNK:
            return
        after = int(chunk[-1].seq)


def _changes(probe: Pseudonymizer, conn: Connection, body: dict[str, Any]) -> bool:
    return probe.record(conn, body) != body


def plan(conn: Connection, progress: Callable[[int], None] | None = None) -> list[ChainRekey]:
    """Every chain with records: how many bodies still hold clear identities, the first."""
    probe = _Probe()
    found = []
    for (chain_id,) in conn.execute(select(chains.c.chain_id).order_by(chains.c.chain_id)):
        chain = ChainRekey(str(chain_id))
        for row in _rows(conn, chain.chain_id):
            chain.records += 1
            if _holds_identity(row.body) and _changes(probe, conn, json.loads(row.body)):
                chain.clear += 1
                chain.first_seq = chain.first_seq or int(row.seq)
            if progress is not None and chain.records % _CHUNK == 0:
                progress(_CHUNK)
        if progress is not None:
            progress(chain.records % _CHUNK)
        if chain.records:
            found.append(chain)
    return found


def _holds_identity(body: str) -> bool:
    """Cheap pre-check: a body without '@' whose actor fields are all absent, null, tokens
    or ``anon:`` values has nothing the pseudonymizer would change."""
    if "@" in body:
        return True
    return any(f'"{field}":"' in body.replace(f'"{field}":"{PREFIX}', "").replace(
        f'"{field}":"anon:', "") for field in ("user", "git_name", "git_email"))  # fmt: skip


# --- rewriting one chain -----------------------------------------------------------------


def mapping_digest(rows: Iterable[tuple[int, str, str]]) -> str:
    """SHA-256 over ``seq old_hash new_hash`` lines, ``rows`` in seq order: what binds a
    run's ``rekeyed_hashes`` rows of one chain into its ``audit.store_rekeyed`` record."""
    digest = hashlib.sha256()
    for seq, old, new in rows:
        digest.update(f"{seq} {old} {new}\n".encode("ascii"))
    return digest.hexdigest()


class _Guards:
    """Sets the append-only triggers of events and checkpoints aside in the caller's
    transaction, and puts them back (see the module docstring)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.saved: list[str] = []

    def lift(self) -> None:
        if self.conn.dialect.name == "postgresql":
            self._alter("DISABLE")
            return
        for table in _GUARDED:
            name = f"{table}_no_update"
            sql = self.conn.scalar(text("SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                                        "AND name = :name"), {"name": name})  # fmt: skip
            if sql is not None:
                self.saved.append(str(sql))
                self.conn.exec_driver_sql(f"DROP TRIGGER {name}")

    def _alter(self, verb: str) -> None:
        for table in _GUARDED:
            self.conn.exec_driver_sql(f"ALTER TABLE {table} {verb} TRIGGER {table}_append_only")

    def restore(self) -> None:
        if self.conn.dialect.name == "postgresql":
            self._alter("ENABLE")
            return
        for sql in self.saved:
            self.conn.exec_driver_sql(sql)


class _Rewrite:
    """Rewrites one chain in the caller's transaction (see the module docstring)."""

    def __init__(self, conn: Connection, writer: ChainWriter, rekey_id: str) -> None:
        self.conn = conn
        self.writer = writer
        self.rekey_id = rekey_id
        self.chain_id = writer.chain_id
        self.marks = {int(seq): str(value) for seq, value in conn.execute(
            select(checkpoints.c.seq, checkpoints.c.hash).where(
                checkpoints.c.chain_id == self.chain_id))}  # fmt: skip
        self.mapping: list[tuple[int, str, str]] = []
        self.now = datetime.now(UTC)
        self.update = events.update().where(
            events.c.chain_id == bindparam("b_chain"), events.c.seq == bindparam("b_seq")
        ).values({name: bindparam(name) for name in _UPDATED})

    def run(self, chain: ChainRekey, progress: Callable[[int], None]) -> None:
        self.writer.subjects.begin(self.conn)
        guards = _Guards(self.conn)
        prev_hash: str | None = None  # None until the first body that changes
        pending: list[tuple[dict[str, Any], bool]] = []
        # records before the planned first are immutable and held no clear identity then
        for row in _rows(self.conn, self.chain_id, (chain.first_seq or 1) - 1):
            body = json.loads(row.body)
            new = self.writer.subjects.record(self.conn, body) if _holds_identity(row.body) \
                else body
            if prev_hash is None:
                if new == body:
                    continue
                chain.first_seq = int(row.seq)
                prev_hash = str(body["prev_hash"])
                guards.lift()
            changed = new != body
            chain.clear += changed
            sealed = self.writer.reseal(new, int(row.seq), prev_hash)
            prev_hash = str(sealed["hash"])
            self.mapping.append((int(row.seq), str(row.hash), prev_hash))
            chain.old_head = str(row.hash)
            pending.append((sealed, changed))
            if len(pending) >= _CHUNK:
                self._flush(pending)
                progress(len(pending))
                pending = []
                # cache the subjects made so far for the rest of the chain (the actor cache
                # takes committed ones only): this writer is dropped if the transaction fails
                self.writer.subjects.committed()
        if prev_hash is None:
            return  # nothing holds a clear identity any more (another run was first)
        self._flush(pending)
        progress(len(pending))
        guards.restore()
        chain.rewritten = len(self.mapping)
        chain.last_seq = self.mapping[-1][0]
        chain.new_head = prev_hash
        chain.digest = mapping_digest(self.mapping)

    def _flush(self, pending: list[tuple[dict[str, Any], bool]]) -> None:
        if not pending:
            return
        sqlite = self.conn.dialect.name == "sqlite"
        # the span of the rows whose text changed (one ranged statement each way: rows in
        # it whose text did not change are taken out and put back as they were)
        reindexed = [int(sealed["seq"]) for sealed, changed in pending if changed]
        span = (reindexed[0], reindexed[-1]) if reindexed else None
        if sqlite and span:  # the contentless index must be told what the rows held
            search.sqlite_unindex_rows(self.conn, self.chain_id, span[1], span[0])
        self.conn.execute(self.update, [
            {"b_chain": self.chain_id, "b_seq": sealed["seq"],
             **{name: sealed[name] for name in _UPDATED}} for sealed, _ in pending])  # fmt: skip
        if sqlite and span:
            search.sqlite_index_rows(self.conn, self.chain_id, *span)
        first, last = int(pending[0][0]["seq"]), int(pending[-1][0]["seq"])
        new_hashes = {int(sealed["seq"]): str(sealed["hash"]) for sealed, _ in pending}
        marks = [{"b_chain": self.chain_id, "b_seq": seq, "hash": new_hashes[seq]}
                 for seq in self.marks if first <= seq <= last]  # fmt: skip
        if marks:
            self.conn.execute(checkpoints.update().where(
                checkpoints.c.chain_id == bindparam("b_chain"),
                checkpoints.c.seq == bindparam("b_seq")).values(hash=bindparam("hash")), marks)
        start = len(self.mapping) - len(pending)
        self.conn.execute(rekeyed_hashes.insert(), [
            {"chain_id": self.chain_id, "seq": seq, "rekey_id": self.rekey_id, "old_hash": old,
             "new_hash": new, "rekeyed_at": self.now}
            for seq, old, new in self.mapping[start:]])  # fmt: skip


def _lock(conn: Connection, chain_id: str) -> None:
    """The chain's write lock as the writer takes it (SQLite: the write transaction)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:space, hashtext(:chain))"),
                     {"space": CHAIN_LOCK_SPACE, "chain": chain_id})  # fmt: skip


def _rekey_chain(
    engine: Engine, chain: ChainRekey, key: bytes | None, rekey_id: str, record: Recorder,
    progress: Callable[[int], None],
) -> None:  # fmt: skip
    with write_transaction(engine) as conn:
        if conn.dialect.name == "sqlite":  # zero the old bodies' bytes in the freed pages
            conn.exec_driver_sql("PRAGMA secure_delete = ON")
        _lock(conn, chain.chain_id)
        info = conn.execute(select(chains).where(chains.c.chain_id == chain.chain_id)).one()
        try:
            hasher = hasher_for_chain(chain.chain_id, info.algorithm, info.key_fingerprint, key)
        except ConfigError as exc:
            chain.error = f"{exc.message} ({exc.hint})"
            return
        checked = verify_chain(conn, chain.chain_id, key)
        if checked.problem is not None:
            chain.refused = checked.problem
            return
        writer = ChainWriter(chain.chain_id, hasher)
        chain.clear = 0
        _Rewrite(conn, writer, rekey_id).run(chain, progress)
        if chain.rewritten:
            writer.append(conn, [record(chain, rekey_id)])
    writer.committed()


def rekey(
    engine: Engine,
    key: bytes | None,
    record: Recorder,
    *,
    dry_run: bool = False,
    confirm: Callable[[RekeyReport], bool] | None = None,
    progress: Progress | None = None,
) -> RekeyReport | None:
    """Plan in a snapshot, ask ``confirm`` (None: go on; no lock held meanwhile; False:
    return None, nothing done), then rewrite every chain holding clear identities (one
    write transaction each; a chain failing verification, or keyed with a key not
    configured, is left untouched and the others go on). ``record(chain, rekey_id)``
    builds the chain's ``audit.store_rekeyed`` record; ``progress(done, total)`` counts
    records read and rewritten."""
    report = RekeyReport(dry_run, str(uuid.uuid4()))
    done = 0
    total = 0

    def advance(rows: int) -> None:
        nonlocal done
        done += rows
        if progress is not None:
            progress(done, max(total, done))

    with snapshot(engine) as conn:
        total = count_events(conn)
        report.chains = plan(conn, advance)
    todo = [chain for chain in report.chains if chain.clear]
    if dry_run or not todo:
        return report
    if confirm is not None and not confirm(report):
        return None
    total += sum(chain.records - (chain.first_seq or 1) + 1 for chain in todo)
    for chain in todo:
        _rekey_chain(engine, chain, key, report.rekey_id, record, advance)
    if any(chain.rewritten for chain in todo):
        report.scrubbed = _scrub(engine)
    return report


def _scrub(engine: Engine) -> bool:
    """Push the old bodies out of the database files: SQLite merges the full-text index
    (a contentless FTS5 index keeps a deleted row's words until its segments merge) and
    checkpoints and truncates its WAL, every freed page zeroed (``secure_delete``).
    PostgreSQL keeps old row versions until ``VACUUM``, too heavy to run here on
    ``events``: False (README says what to run)."""
    if engine.dialect.name != "sqlite":
        return False
    from gitaudit.store.subjects import scrub

    with write_transaction(engine) as conn:
        conn.exec_driver_sql("PRAGMA secure_delete = ON")
        conn.execute(text(f"INSERT INTO {search.FTS_TABLE}({search.FTS_TABLE}) "  # noqa: S608 - constants
                          "VALUES ('optimize')"))  # fmt: skip
    with engine.connect() as conn:
        return scrub(conn.execution_options(isolation_level="AUTOCOMMIT"))


# --- reading checkpoints signed before a run (verify --checkpoints) ------------------------


class RekeyedHashes:
    """What accounted ``db rekey`` runs turned a chain's old hashes into (``verify
    --checkpoints`` reads a checkpoint signed before a run through it).

    A run counts for a chain only when an ``audit.store_rekeyed`` record *of that chain*
    states its ``rekey_id`` and a ``mapping_sha256`` equal to the digest of exactly the
    run's rows of that chain (streamed in seq order once per run, when first needed).
    Rows of a run no record accounts for (forged, or added later) are ignored: a
    checkpoint they would explain stays ``rewritten``. Rows are looked up per (chain, seq)
    through the table's key, so a store of millions of rewritten records is never loaded.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._stated: dict[tuple[str, str], str] | None = None
        self._valid: dict[tuple[str, str], bool] = {}

    def _accounted(self, chain_id: str, rekey_id: str) -> bool:
        if self._stated is None:
            self._stated = {}
            query = select(events.c.chain_id, events.c.body).where(
                events.c.operation == OPERATION)  # fmt: skip
            for chain, body in self.conn.execute(query):
                try:
                    stated = json.loads(body)["details"]
                    self._stated[str(chain), str(stated["rekey_id"])] = str(
                        stated["mapping_sha256"])  # fmt: skip
                except (ValueError, KeyError, TypeError):
                    continue
        key = (chain_id, rekey_id)
        if key not in self._valid:
            rows = self.conn.execute(
                select(rekeyed_hashes.c.seq, rekeyed_hashes.c.old_hash, rekeyed_hashes.c.new_hash)
                .where(rekeyed_hashes.c.chain_id == chain_id,
                       rekeyed_hashes.c.rekey_id == rekey_id)
                .order_by(rekeyed_hashes.c.seq)
            )  # fmt: skip
            self._valid[key] = self._stated.get(key) == mapping_digest(
                (int(seq), str(old), str(new)) for seq, old, new in rows)  # fmt: skip
        return self._valid[key]

    def carried(self, chain_id: str, seq: int, old: str) -> str:
        """``old`` carried through every accounted run at ``seq`` (a record rekeyed twice:
        old -> a -> b); ``old`` itself when none rewrote it."""
        query = select(rekeyed_hashes.c.rekey_id, rekeyed_hashes.c.old_hash,
                       rekeyed_hashes.c.new_hash).where(
            rekeyed_hashes.c.chain_id == chain_id, rekeyed_hashes.c.seq == seq)  # fmt: skip
        mapping = {str(before): str(after) for run, before, after in self.conn.execute(query)
                   if self._accounted(chain_id, str(run))}  # fmt: skip
        seen = {old}
        while old in mapping and mapping[old] not in seen:
            old = mapping[old]
            seen.add(old)
        return old
