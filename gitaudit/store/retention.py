"""Retention: archive, then delete, the expired prefix of every chain, and leave a checkpoint.

A chain is a sequence, so retention removes a *prefix* of each chain: the cut
of a chain is just before the first record still in force under its own
policy (:class:`Policy`: ``retention_days`` for everything, ``[retention]``
patterns per operation, the longest matching pattern wins). A record past the
cut stays even when its own policy has expired: a per-operation policy never
leaves holes. Age is counted from ``recorded_at``, the time the store writer
appended the record (gitaudit's own clock, not the client's ``occurred_at``).
Cuts come from one ordered scan per chain that stops at the first record in
force; nothing is materialized.

A run (:func:`run_retention`):

1. plans the cut of every chain in one read snapshot;
2. archives the rows up to each cut that no earlier segment holds yet, as
   gzip JSON-lines segments with a JSON manifest each (:class:`Archive`),
   file and directory fsynced; if that fails nothing is deleted;
3. records ``audit.retention`` (phase ``started``: counts per chain and
   operation, seq ranges, archive files, the cut of every chain) through the
   store writer, so verify can account for the deletion even if the run dies;
4. on PostgreSQL with monthly partitions, drops every partition whose rows
   are all expired (:func:`_drop_partitions`), so whole months never go
   through row-by-row DELETE;
5. deletes the rest in batches of ``cleanup_batch_size``, one short transaction per
   batch: a ``retention_grants`` row ``(chain, upto_seq)``, a checkpoint at
   ``upto_seq`` (the hash of the last deleted record), then the events and the
   older checkpoints of that chain up to it (PostgreSQL: one call of the
   ``SECURITY DEFINER`` function ``gitaudit_expire``), so every batch leaves a
   chain that verifies from its first retained record;
6. records ``audit.retention`` again (phase ``finished``: deleted counts,
   dropped partitions, duration).

A run killed anywhere is finished by the next one: segments already written
are found through their manifests and never written twice, and batches pick
up at the chain's first stored record.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection, Engine, func, literal, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import OperationalError

from gitaudit.catalog import OPERATIONS, audit_record, severity_for, uuid7
from gitaudit.errors import ConfigError
from gitaudit.store import partitions, search
from gitaudit.store.archive import Archive, ArchiveError
from gitaudit.store.engine import snapshot, write_transaction
from gitaudit.store.tables import UTCDateTime, chains, checkpoints, events, retention_grants

if TYPE_CHECKING:
    from gitaudit.config import Settings
    from gitaudit.store.engine import Store

OPERATION: Final = "audit.retention"
SEGMENT_ROWS: Final = 100_000  # records per archive segment file
_SCAN_CHUNK: Final = 5000
# SQLite batches (see _delete_chain): how long one should hold the write lock, the first
# batch's size, the smallest, and the shortest and longest pause after one
_SQLITE_HOLD_S: Final = 0.05
_SQLITE_FIRST_BATCH: Final = 500
_SQLITE_MIN_BATCH: Final = 50
_SQLITE_MIN_YIELD_S: Final = 0.03
_MAX_YIELD_S: Final = 0.25
# How long dropping partitions waits for the lock on events (readers holding it) before it
# leaves those months to the batch deletes instead
_DROP_LOCK_TIMEOUT: Final = "10s"
# Test hook: seconds to sleep after each committed batch (lets a test kill a run between
# batches without timing guesses: it waits for the batch's progress line, then kills).
PAUSE_ENV: Final = "GITAUDIT_TEST_RETENTION_PAUSE"

Progress = Callable[[int, int], None]


# --- policy ------------------------------------------------------------------------------


class Policy:
    """How long each operation is kept: ``default_days`` unless a pattern matches.

    Days are ``None`` for "forever". Among the patterns matching an operation the
    longest wins (``git.push`` over ``git.*`` over ``*``).
    """

    def __init__(
        self, default_days: int | None, patterns: Iterable[tuple[str, int | None]] = ()
    ) -> None:
        self.default_days = default_days
        self.patterns = tuple(sorted(patterns, key=lambda item: -len(item[0])))
        for pattern, _ in self.patterns:
            if not any(fnmatch.fnmatchcase(op, pattern) for op in OPERATIONS):
                raise ConfigError(
                    f"retention pattern {pattern!r} matches no operation",
                    "use operation names or globs such as git.*, git.push, claude.*, audit.* "
                    "in the [retention] table (or GITAUDIT_RETENTION)",
                )
        self._days: dict[str, int | None] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> Policy:
        """The policy of ``retention_days`` and ``retention``."""
        return cls(settings.retention_days, settings.retention)

    @property
    def keeps_everything(self) -> bool:
        """True when no record can ever expire."""
        return self.default_days is None and all(days is None for _, days in self.patterns)

    def days_for(self, operation: str) -> int | None:
        """Days records of ``operation`` are kept (None: forever)."""
        try:
            return self._days[operation]
        except KeyError:
            days = next(
                (d for pattern, d in self.patterns if fnmatch.fnmatchcase(operation, pattern)),
                self.default_days,
            )
            self._days[operation] = days
            return days

    def describe(self) -> dict[str, Any]:
        """The policy as recorded in ``audit.retention`` and in manifests."""
        return {"default_days": self.default_days, "patterns": dict(self.patterns)}


# --- plan --------------------------------------------------------------------------------


@dataclass
class ChainCut:
    """What retention does to one chain.

    ``first_seq`` is the first stored record before the run; records
    ``first_seq..upto_seq`` expire (none when ``upto_seq < first_seq``).
    ``last_hash`` is the hash of record ``upto_seq``.
    """

    chain_id: str
    first_seq: int
    upto_seq: int
    first_prev_hash: str
    last_hash: str | None
    algorithm: str
    key_fingerprint: str | None
    operations: dict[str, int] = field(default_factory=dict)
    archived_upto: int = 0
    segments: list[dict[str, Any]] = field(default_factory=list)
    deleted: int = 0

    @property
    def count(self) -> int:
        """Records that expire."""
        return max(0, self.upto_seq - self.first_seq + 1)

    def summary(self) -> dict[str, Any]:
        """This chain as recorded in ``audit.retention`` and printed by the command
        (a chain with nothing expiring now: only its cut, kept short so a store of
        many chains fits one record)."""
        if not self.count:
            return {
                "chain_id": self.chain_id,
                "expired": 0,
                "upto_seq": self.upto_seq,
                "archived_upto": self.archived_upto,
            }
        return {
            "chain_id": self.chain_id,
            "expired": self.count,
            "first_seq": self.first_seq if self.count else None,
            "last_seq": self.upto_seq if self.count else None,
            "upto_seq": self.upto_seq,
            "operations": dict(sorted(self.operations.items())),
            "archived_upto": self.archived_upto,
            "segments": self.segments,
            "deleted": self.deleted,
        }


def _in_force(recorded_at: datetime, days: int | None, now: datetime) -> bool:
    return days is None or recorded_at >= now - timedelta(days=days)


def _chain_cut(conn: Connection, info: Any, policy: Policy, now: datetime) -> ChainCut | None:
    """Scan chain ``info.chain_id`` in seq order up to its first record in force."""
    chain_id = str(info.chain_id)
    query = (
        select(
            events.c.seq, events.c.operation, events.c.recorded_at, events.c.prev_hash,
            events.c.hash,
        )
        .where(events.c.chain_id == chain_id)
        .order_by(events.c.seq)
    )  # fmt: skip
    result = conn.execution_options(yield_per=_SCAN_CHUNK).execute(query)
    cut: ChainCut | None = None
    try:
        for row in result:
            if cut is None:
                cut = ChainCut(
                    chain_id, int(row.seq), int(row.seq) - 1, str(row.prev_hash), None,
                    str(info.algorithm), info.key_fingerprint,
                )  # fmt: skip
            elif row.seq != cut.upto_seq + 1:
                break  # a gap is evidence for verify: never delete across it
            if _in_force(row.recorded_at, policy.days_for(row.operation), now):
                break
            cut.upto_seq = int(row.seq)
            cut.last_hash = str(row.hash)
            cut.operations[row.operation] = cut.operations.get(row.operation, 0) + 1
    finally:
        result.close()
    if cut is None:  # no records left: the chain was cut before, at its newest grant
        upto = conn.scalar(
            select(func.max(retention_grants.c.upto_seq)).where(
                retention_grants.c.chain_id == chain_id
            )
        )
        if upto is None:
            return None
        return ChainCut(
            chain_id, int(upto) + 1, int(upto), "", None, str(info.algorithm),
            info.key_fingerprint,
        )  # fmt: skip
    return cut


def plan(conn: Connection, policy: Policy, now: datetime) -> list[ChainCut]:
    """The cut of every chain that has records or was cut before (chain_id order)."""
    cuts = []
    for info in conn.execute(select(chains).order_by(chains.c.chain_id)):
        cut = _chain_cut(conn, info, policy, now)
        if cut is not None:
            cuts.append(cut)
    return cuts


# --- archive ---------------------------------------------------------------------------


def _archive_lines(
    conn: Connection, chain_id: str, first: int, last: int
) -> Iterator[tuple[int, str, str, str]]:
    query = (
        select(events.c.seq, events.c.prev_hash, events.c.hash, events.c.recorded_at, events.c.body)
        .where(events.c.chain_id == chain_id, events.c.seq >= first, events.c.seq <= last)
        .order_by(events.c.seq)
    )
    result = conn.execution_options(yield_per=_SCAN_CHUNK).execute(query)
    try:
        for row in result:
            recorded = json.dumps(row.recorded_at.isoformat())
            line = f'{{"recorded_at":{recorded},"record":{row.body}}}\n'
            yield int(row.seq), str(row.prev_hash), str(row.hash), line
    finally:
        result.close()


def _archive_chain(
    engine: Engine, archive: Archive, cut: ChainCut, policy: Policy, progress: Callable[[int], None]
) -> None:
    """Archive ``cut``'s expired records no segment holds yet (several segments if many)."""
    archived, archived_hash = archive.archived_upto(cut.chain_id)
    start = max(cut.first_seq, archived + 1)
    if archived >= cut.first_seq and archived <= cut.upto_seq:
        _check_archived_hash(engine, cut.chain_id, archived, archived_hash)
    while start <= cut.upto_seq:
        end = min(cut.upto_seq, start + SEGMENT_ROWS - 1)
        with engine.connect() as conn, conn.begin():
            manifest = archive.write_segment(
                cut.chain_id,
                (cut.algorithm, cut.key_fingerprint),
                _archive_lines(conn, cut.chain_id, start, end),
                policy.describe(),
            )
        if manifest["last_seq"] != end or manifest["first_seq"] != start:
            raise ArchiveError(
                f"chain {cut.chain_id}: records seq {start}..{end} changed while they were "
                "archived; nothing was deleted",
                "run `gitaudit verify`, then run retention again",
            )
        cut.segments.append(_segment_entry(manifest))
        progress(manifest["rows"])
        start = end + 1
    cut.archived_upto = max(archived, cut.upto_seq)


def _check_archived_hash(engine: Engine, chain_id: str, seq: int, expected: str | None) -> None:
    with engine.connect() as conn:
        stored = conn.scalar(
            select(events.c.hash).where(events.c.chain_id == chain_id, events.c.seq == seq)
        )
    if stored is not None and stored != expected:
        raise ArchiveError(
            f"the archive's segment of chain {chain_id} ending at seq {seq} does not match "
            "the store's record (another store's archive in this directory?)",
            "point GITAUDIT_ARCHIVE_DIR at this store's own archive directory",
        )


def _segment_entry(manifest: dict[str, Any]) -> dict[str, Any]:
    return {key: manifest[key] for key in ("file", "first_seq", "last_seq", "rows", "sha256")}


def _archive_error(exc: OSError, directory: Path) -> ArchiveError:
    return ArchiveError(
        f"cannot write the retention archive in {directory}: {exc.strerror or exc}; "
        "nothing was deleted",
        "make the directory writable and free space there (or set GITAUDIT_ARCHIVE_DIR to "
        "another one); GITAUDIT_ARCHIVE=off deletes without archiving",
    )


# --- delete ------------------------------------------------------------------------------


def _expire_batch(conn: Connection, chain_id: str, upto: int, reason: str) -> int:
    """Grant, checkpoint at ``upto``, delete the chain's records up to it; rows deleted."""
    if conn.dialect.name == "postgresql":
        return int(
            conn.execute(
                text("SELECT gitaudit_expire(:chain, :upto, :reason)"),
                {"chain": chain_id, "upto": upto, "reason": reason},
            ).scalar_one()
        )
    now = datetime.now(UTC)
    conn.execute(
        sqlite.insert(retention_grants)
        .values(chain_id=chain_id, upto_seq=upto, granted_at=now, reason=reason)
        .on_conflict_do_nothing()
    )
    conn.execute(
        sqlite.insert(checkpoints)
        .from_select(
            ["chain_id", "seq", "hash", "created_at"],
            select(
                events.c.chain_id, events.c.seq, events.c.hash, literal(now, UTCDateTime())
            ).where(events.c.chain_id == chain_id, events.c.seq == upto),
        )
        .on_conflict_do_nothing()
    )
    search.sqlite_unindex_rows(conn, chain_id, upto)  # the FTS index forgets them first
    deleted = conn.execute(
        events.delete().where(events.c.chain_id == chain_id, events.c.seq <= upto)
    ).rowcount
    conn.execute(
        checkpoints.delete().where(checkpoints.c.chain_id == chain_id, checkpoints.c.seq < upto)
    )
    return int(deleted or 0)


def _delete_chain(
    engine: Engine,
    cut: ChainCut,
    batch: int,
    reason: str,
    progress: Callable[[int], None],
    stop: threading.Event | None,
) -> None:
    """Delete ``cut``'s expired records in batches of at most ``batch``, one transaction each.

    SQLite has one write lock, and its busy handler polls: a batch there is also
    sized to hold the lock about :data:`_SQLITE_HOLD_S` (from the rate of the
    batches before), and the next waits as long as this one held the lock, so
    a waiting writer gets in between. PostgreSQL locks rows: writers of other
    chains never wait, and batches are ``batch`` records.
    """
    pause = float(os.environ.get(PAUSE_ENV) or 0)
    sqlite_lock = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        first = conn.scalar(select(func.min(events.c.seq)).where(events.c.chain_id == cut.chain_id))
    start = int(first) if first is not None else cut.upto_seq + 1
    size = min(batch, _SQLITE_FIRST_BATCH) if sqlite_lock else batch
    while start <= cut.upto_seq and not (stop is not None and stop.is_set()):
        upto = min(cut.upto_seq, start + size - 1)
        began = time.monotonic()
        with write_transaction(engine) as conn:
            deleted = _expire_batch(conn, cut.chain_id, upto, reason)
        held = time.monotonic() - began
        cut.deleted += deleted
        progress(deleted)
        if pause:
            print(f"gitaudit: test: batch committed up to seq {upto}", file=sys.stderr, flush=True)
            time.sleep(pause)
        start = upto + 1
        if sqlite_lock and start <= cut.upto_seq:
            rate = max(deleted, 1) / max(held, 1e-3)  # records per second
            size = max(_SQLITE_MIN_BATCH, min(batch, int(rate * _SQLITE_HOLD_S)))
            time.sleep(min(max(held, _SQLITE_MIN_YIELD_S), _MAX_YIELD_S))


def _droppable(conn: Connection, cuts: dict[str, ChainCut]) -> list[tuple[str, dict[str, int]]]:
    """Monthly partitions whose every row is at or below its chain's cut, in month order,
    each with the highest seq of every chain in it (one aggregate per partition, read
    from the ``(chain_id, seq, occurred_at)`` index). Empty partitions (the months ahead)
    are never dropped."""
    found = []
    for part in partitions.list_partitions(conn):
        if part.is_default:
            continue
        highest = {
            str(chain): int(seq)
            for chain, seq in conn.execute(
                text(f"SELECT chain_id, max(seq) FROM {part.name} GROUP BY chain_id")  # noqa: S608 - our own partition name
            )
        }
        if highest and all(
            chain in cuts and seq <= cuts[chain].upto_seq for chain, seq in highest.items()
        ):
            found.append((part.name, highest))
    return found


def _drop_partitions(
    engine: Engine, expiring: list[ChainCut], reason: str, progress: Callable[[int], None]
) -> list[str]:
    """Drop the monthly partitions (PostgreSQL) whose rows have all expired; their names.

    One transaction: first ``gitaudit_grant_expiry`` writes each affected chain's grant
    and checkpoint at its cut (the authority ``gitaudit_drop_expired_partition`` checks
    every row of a partition against), then each partition is dropped by that function,
    which leaves a grant and a checkpoint at the chain's highest seq in it and deletes the
    chain's few rows below that seq held elsewhere (clock skew across a month boundary).
    The order is the one that keeps the store verifiable if the run is killed anywhere:
    either nothing happened, or every chain starts just after a grant and a checkpoint,
    with the rest of its expired prefix left to the batches that follow (which the next
    run finishes if this one dies). Every row here was archived before (when archiving
    is on): the cuts are what the archive step covered.

    When the lock on ``events`` a detach needs is not granted within
    :data:`_DROP_LOCK_TIMEOUT` (long readers), nothing is dropped: the batches delete
    those months row by row instead.
    """
    cuts = {cut.chain_id: cut for cut in expiring}
    with engine.connect() as conn:
        droppable = _droppable(conn, cuts) if partitions.is_partitioned(conn) else []
    if not droppable:
        return []
    chains_hit = sorted({chain for _, highest in droppable for chain in highest})
    try:
        with write_transaction(engine) as conn:
            conn.execute(text(f"SET LOCAL lock_timeout = '{_DROP_LOCK_TIMEOUT}'"))
            first = {
                chain: conn.scalar(select(func.min(events.c.seq)).where(events.c.chain_id == chain))
                for chain in chains_hit
            }
            for chain in chains_hit:
                conn.execute(
                    text("SELECT gitaudit_grant_expiry(:chain, :upto, :reason)"),
                    {"chain": chain, "upto": cuts[chain].upto_seq, "reason": reason},
                )
            for name, _ in droppable:
                conn.execute(text("SELECT gitaudit_drop_expired_partition(:part)"), {"part": name})
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        return []
    for chain in chains_hit:
        highest = max(h[chain] for _, h in droppable if chain in h)
        start = first[chain]
        deleted = highest - int(start) + 1 if start is not None and start <= highest else 0
        cuts[chain].deleted += deleted
        progress(deleted)
    return [name for name, _ in droppable]


# --- the run -----------------------------------------------------------------------------


@dataclass
class RetentionReport:
    """What a run did (or, dry run, would do)."""

    dry_run: bool
    policy: dict[str, Any]
    archive_dir: str | None
    chains: list[ChainCut]
    started_at: datetime
    duration_s: float = 0.0
    partitions_dropped: list[str] = field(default_factory=list)

    @property
    def expired(self) -> int:
        """Records that expired (in every chain)."""
        return sum(cut.count for cut in self.chains)

    def as_dict(self) -> dict[str, Any]:
        """JSON summary (also the details of the ``audit.retention`` record)."""
        return {
            "dry_run": self.dry_run,
            "policy": self.policy,
            "archive": self.archive_dir is not None,
            "archive_dir": self.archive_dir,
            "started_at": self.started_at.isoformat(),
            "duration_s": round(self.duration_s, 3),
            "expired": self.expired,
            "deleted": sum(cut.deleted for cut in self.chains),
            "chains": [cut.summary() for cut in self.chains if cut.upto_seq > 0],
            "partitions_dropped": self.partitions_dropped,
        }


@dataclass(frozen=True)
class RetentionOptions:
    """How to run: policy, archive (None: off), batch size, and the moment "now"."""

    policy: Policy
    archive_dir: str | None
    batch_size: int
    dry_run: bool = False
    now: datetime | None = None
    stop: threading.Event | None = None  # set: stop after the current batch

    @classmethod
    def from_settings(
        cls, settings: Any, *, dry_run: bool = False, stop: threading.Event | None = None
    ) -> RetentionOptions:
        """Options from the configured settings."""
        return cls(
            Policy.from_settings(settings),
            settings.effective_archive_dir if settings.archive else None,
            settings.cleanup_batch_size,
            dry_run,
            stop=stop,
        )


Recorder = Callable[[str, dict[str, Any]], None]


def run_retention(
    engine: Engine,
    options: RetentionOptions,
    record: Recorder,
    progress: Progress | None = None,
) -> RetentionReport:
    """Plan, archive, record, delete (see the module docstring); ``record(phase, details)``
    appends an ``audit.retention`` record.

    A run that archives holds the archive directory's lock throughout, so two runs
    (the timer's and a daemon's, say) never archive the same records twice.
    """
    with contextlib.ExitStack() as stack:
        if options.archive_dir is not None and not options.dry_run:
            archive = Archive(options.archive_dir)
            try:
                stack.enter_context(archive.lock())
            except OSError as exc:
                raise _archive_error(exc, archive.directory) from exc
        return _run(engine, options, record, progress)


def _run(
    engine: Engine, options: RetentionOptions, record: Recorder, progress: Progress | None
) -> RetentionReport:
    clock = time.monotonic()
    now = options.now or datetime.now(UTC)
    with snapshot(engine) as conn:
        cuts = plan(conn, options.policy, now)
    report = RetentionReport(options.dry_run, options.policy.describe(), options.archive_dir,
                             cuts, now)  # fmt: skip
    expiring = [cut for cut in cuts if cut.count]
    total = sum(cut.count for cut in expiring) * (1 if options.archive_dir is None else 2)
    done = 0

    def advance(rows: int) -> None:
        nonlocal done
        done += rows
        if progress is not None:
            progress(done, max(total, done))

    if options.dry_run:
        report.duration_s = time.monotonic() - clock
        record("dry_run", report.as_dict())
        return report
    if options.archive_dir is not None:
        archive = Archive(options.archive_dir)
        for cut in cuts:
            cut.archived_upto = archive.archived_upto(cut.chain_id)[0]
        try:
            for cut in expiring:
                _archive_chain(engine, archive, cut, options.policy, advance)
        except OSError as exc:
            raise _archive_error(exc, archive.directory) from exc
    if not expiring:
        report.duration_s = time.monotonic() - clock
        record("finished", report.as_dict())
        return report
    record("started", report.as_dict())
    reason = f"gitaudit retention run at {now.isoformat()}"
    if engine.dialect.name == "postgresql" and not (options.stop and options.stop.is_set()):
        report.partitions_dropped = _drop_partitions(engine, expiring, reason, advance)
    for cut in expiring:
        _delete_chain(engine, cut, options.batch_size, reason, advance, options.stop)
    report.duration_s = time.monotonic() - clock
    record("finished", report.as_dict())
    return report


def retention_event(
    phase: str, details: dict[str, Any], source: str, run_id: str
) -> dict[str, Any]:
    """The ``audit.retention`` record of one phase of a run (``run_id``: its correlation id)."""
    import pwd

    try:
        user: str | None = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = None
    details = {"phase": phase, **details}
    return audit_record(
        OPERATION, details, source=source, correlation_id=run_id,
        severity=severity_for(OPERATION, details, "success"),
        duration_ms=round(details.get("duration_s", 0.0) * 1000, 3),
        actor={"uid": os.getuid(), "user": user, "host": os.uname().nodename},
    )  # fmt: skip


def recorder(store: Store, settings: Settings, source: str) -> Recorder:
    """Stores each phase's ``audit.retention`` record in ``store`` (sanitized, validated),
    all of one run sharing one correlation id."""
    from gitaudit.events import validate_event
    from gitaudit.pipeline import Pipeline

    pipeline = Pipeline(settings)
    run_id = uuid7()

    def record(phase: str, details: dict[str, Any]) -> None:
        raw = retention_event(phase, details, source, run_id)
        store.append([validate_event(pipeline.sanitize(raw)).to_record()])

    return record
