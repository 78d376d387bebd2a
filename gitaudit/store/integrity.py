"""The hash chain: how a record is linked to its predecessor, and how chains are verified.

Each writer appends to its own chain (``chain_id``) with gapless ``seq`` from 1::

    hash = H(bytes.fromhex(prev_hash) || canonical_json(payload))

where ``payload`` is the event without ``prev_hash`` and ``hash`` (so ``chain_id``
and ``seq`` are covered), H is HMAC-SHA256 under the chain key when one is
configured and plain SHA-256 otherwise, and the first record's ``prev_hash`` is
64 zeros. Every append also writes a checkpoint (the chain head after it), so
a truncated tail or an appended forgery shows up too.

:func:`verify` recomputes every chain from the stored bodies and names the first
bad record of each, with one of these kinds:

``modified``  the body no longer hashes to its hash, or differs from a checkpoint
``missing``   a seq is absent (gap), or the chain ends before its newest checkpoint
``inserted``  a record does not link to its predecessor, or lies past the newest checkpoint
``reordered`` a record sits at another seq than the one it was hashed with
``mismatch``  an indexed column disagrees with the body
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Row, func, select, union

from gitaudit.catalog import canonical_json
from gitaudit.errors import ConfigError
from gitaudit.store.archive import Archive, ArchiveError, file_sha256, segment_records
from gitaudit.store.tables import (
    DENORMALIZED,
    chains,
    checkpoints,
    denormalize,
    events,
    retention_grants,
)

# gitaudit.quarantine.OPERATION (a test checks they agree): importing that module pulls in
# pydantic, which no reader needs.
REJECTED_OPERATION: Final = "audit.rejected"

GENESIS_HASH: Final = "0" * 64
PROBLEM_KINDS: Final = ("modified", "missing", "inserted", "reordered", "mismatch")
_UNHASHED: Final = frozenset({"prev_hash", "hash"})
_FINGERPRINT_LABEL: Final = b"gitaudit chain key fingerprint v1"
_PROGRESS_EVERY: Final = 2000
RETENTION_OPERATION: Final = "audit.retention"

Progress = Callable[[int, int], None]


class ChainHasher:
    """Links records with HMAC-SHA256 under a key, or with SHA-256 when there is none."""

    __slots__ = ("_key", "algorithm", "fingerprint")

    def __init__(self, key: bytes | None) -> None:
        self._key = key
        self.algorithm = "hmac-sha256" if key else "sha256"
        self.fingerprint = (
            hmac.digest(key, _FINGERPRINT_LABEL, "sha256").hex()[:16] if key else None
        )

    def link(self, prev_hash: str, payload: bytes) -> str:
        """The hash of a record whose canonical payload is ``payload``."""
        data = bytes.fromhex(prev_hash) + payload
        if self._key is None:
            return hashlib.sha256(data).hexdigest()
        return hmac.digest(self._key, data, "sha256").hex()

    def record_hash(self, record: Mapping[str, Any]) -> str:
        """Recompute the hash of a full record from its own ``prev_hash`` and payload."""
        return self.link(str(record["prev_hash"]), canonical_json(payload_of(record)))


def payload_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """What the chain covers: every field except ``prev_hash`` and ``hash`` (as Event.payload)."""
    return {key: value for key, value in record.items() if key not in _UNHASHED}


def hasher_for_chain(
    chain_id: str, algorithm: str, fingerprint: str | None, key: bytes | None
) -> ChainHasher:
    """The hasher a stored chain was written with; ConfigError if the key does not fit."""
    if algorithm == "sha256":
        return ChainHasher(None)
    hasher = ChainHasher(key)
    if key is None:
        raise ConfigError(
            f"chain {chain_id!r} is keyed (HMAC-SHA256) but no chain key is configured",
            "set GITAUDIT_CHAIN_KEY_FILE to the key file the writer of this chain uses",
        )
    if hasher.fingerprint != fingerprint:
        raise ConfigError(
            f"the configured chain key is not the key chain {chain_id!r} was written with "
            f"(fingerprint {hasher.fingerprint}, chain expects {fingerprint})",
            "set GITAUDIT_CHAIN_KEY_FILE to that chain's key file",
        )
    return hasher


@dataclass(frozen=True)
class Problem:
    """The first bad record of a chain: kind (see PROBLEM_KINDS), where, and what is wrong."""

    kind: str
    chain_id: str
    seq: int | None
    event_id: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        """As ``--format json`` shows it (the chain is named around it)."""
        return {"kind": self.kind, "seq": self.seq, "event_id": self.event_id,
                "message": self.message}  # fmt: skip


@dataclass(frozen=True)
class ChainReport:
    """Outcome of verifying one chain."""

    chain_id: str
    records: int
    first_seq: int | None
    last_seq: int | None
    problem: Problem | None
    rejected: int = 0  # audit.rejected records: stand-ins for records a stage could not take


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of verifying every chain in the store."""

    chains: list[ChainReport]

    @property
    def ok(self) -> bool:
        """True when no chain has a problem."""
        return all(chain.problem is None for chain in self.chains)

    @property
    def rejected(self) -> int:
        """``audit.rejected`` records in every chain (quarantined records)."""
        return sum(chain.rejected for chain in self.chains)

    @property
    def first_problem(self) -> Problem | None:
        """The problem of the first failing chain (chains are in chain_id order)."""
        return next((chain.problem for chain in self.chains if chain.problem), None)


@dataclass(frozen=True)
class _Cut:
    """One chain's cut as an ``audit.retention`` record states it."""

    upto_seq: int
    archived: bool
    archived_upto: int


@dataclass
class RetainedPrefix:
    """What accounts for a chain that no longer starts at seq 1: retention.

    A chain may start at seq F > 1 only when (1) a ``retention_grants`` row
    ``(chain, F-1)`` exists, (2) an ``audit.retention`` record (not a dry run)
    states a cut of that chain at or past F-1, with the records up to F-1
    archived unless that run had archiving off, and (3) a checkpoint at F-1
    holds the hash record F links to. Every grant must be accounted for by such
    a record too: a grant no run stated lets anyone holding INSERT delete.
    """

    grants: dict[str, set[int]]
    cuts: dict[str, list[_Cut]]

    @classmethod
    def load(cls, conn: Connection) -> RetainedPrefix:
        """Read every grant and every ``audit.retention`` record's cuts."""
        grants: dict[str, set[int]] = {}
        for chain_id, upto in conn.execute(
            select(retention_grants.c.chain_id, retention_grants.c.upto_seq)
        ):
            grants.setdefault(str(chain_id), set()).add(int(upto))
        cuts: dict[str, list[_Cut]] = {}
        query = select(events.c.body).where(events.c.operation == RETENTION_OPERATION)
        for (text,) in conn.execute(query):
            for chain_id, cut in _stated_cuts(text):
                cuts.setdefault(chain_id, []).append(cut)
        return cls(grants, cuts)

    def _accounted(self, chain_id: str, upto: int) -> bool:
        return any(
            cut.upto_seq >= upto and (not cut.archived or cut.archived_upto >= upto)
            for cut in self.cuts.get(chain_id, ())
        )

    def start(
        self, chain_id: str, first_seq: int | None, marks: dict[int, str]
    ) -> tuple[Problem | None, int | None]:
        """``(problem, cut)``: the seq verification starts after (None: seq 1), or why not.

        ``first_seq`` None: the chain has no records left.
        """
        granted = self.grants.get(chain_id, set())
        if first_seq is None:
            if not granted:
                return None, None
            cut = max(granted)
        elif first_seq == 1:
            return None, None
        else:
            cut = first_seq - 1
        span = f"seq 1..{cut}" if cut > 1 else "seq 1"
        why = None
        if cut not in granted:
            known = f" (grants up to {', '.join(map(str, sorted(granted)))})" if granted else ""
            why = f"no retention grant ends at seq {cut}{known}"
        elif not self._accounted(chain_id, cut):
            why = (
                f"no audit.retention record (with its archive, unless archiving was off) "
                f"accounts for deleting up to seq {cut}"
            )
        elif cut not in marks:
            why = f"no checkpoint at seq {cut}, the cut retention leaves behind"
        if why is None:
            return None, cut
        message = f"records {span} of chain {chain_id} are missing: {why}"
        return Problem("missing", chain_id, 1, None, message), None

    def unaccounted_grant(self, chain_id: str) -> Problem | None:
        """A grant past every cut an ``audit.retention`` record states, if any."""
        stated = max((cut.upto_seq for cut in self.cuts.get(chain_id, ())), default=0)
        beyond = sorted(upto for upto in self.grants.get(chain_id, ()) if upto > stated)
        if not beyond:
            return None
        return Problem(
            "inserted",
            chain_id,
            beyond[-1],
            None,
            f"a retention grant up to seq {beyond[-1]} of chain {chain_id} that no "
            "audit.retention record accounts for: it lets its holder delete records",
        )


def _stated_cuts(text: str) -> Iterable[tuple[str, _Cut]]:
    """The cuts an ``audit.retention`` body states (none for a dry run or a bad body)."""
    body = _parse_body(text)
    details = body.get("details") if body else None
    if not isinstance(details, dict) or details.get("dry_run") is not False:
        return
    archived = details.get("archive") is True
    for entry in details.get("chains") or ():
        try:
            chain_id = str(entry["chain_id"])
            upto, archived_upto = int(entry["upto_seq"]), int(entry.get("archived_upto") or 0)
        except (KeyError, TypeError, ValueError):
            continue
        yield chain_id, _Cut(upto, archived, archived_upto)


class _ChainCheck:
    """Walks one chain's rows in seq order and keeps the first problem found."""

    def __init__(
        self,
        chain_id: str,
        hasher: ChainHasher,
        marks: dict[int, str],
        retained: RetainedPrefix | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.hasher = hasher
        self.marks = marks
        self.newest_mark = max(marks, default=0)
        self.retained = retained
        self.expected_seq = 1
        self.prev_hash = GENESIS_HASH
        self.records = 0
        self.rejected = 0
        self.first_seq: int | None = None
        self.last_seq: int | None = None
        self.problem: Problem | None = None

    def feed(self, row: Row[Any]) -> None:
        """Account for one stored row; check it unless a problem was already found."""
        self.records += 1
        if row.operation == REJECTED_OPERATION:
            self.rejected += 1
        if self.first_seq is None and self.retained is not None:
            self._start_after_cut(self.retained, row.seq)
        self.first_seq = row.seq if self.first_seq is None else self.first_seq
        self.last_seq = row.seq
        if self.problem is None:
            self.problem = self._check(row)
        self.expected_seq = row.seq + 1
        self.prev_hash = row.hash

    def finish(self) -> ChainReport:
        """Check the tail against the newest checkpoint and report."""
        if self.first_seq is None and self.retained is not None:
            self._start_after_cut(self.retained, None)
        if self.problem is None and self.retained is not None:
            self.problem = self.retained.unaccounted_grant(self.chain_id)
        if self.problem is None and self.expected_seq - 1 < self.newest_mark:
            first = self.expected_seq
            self.problem = self._problem(
                "missing",
                first,
                None,
                f"records seq {first}..{self.newest_mark} are missing: the chain ends before "
                f"its newest checkpoint (seq {self.newest_mark})",
            )
        return ChainReport(
            self.chain_id, self.records, self.first_seq, self.last_seq, self.problem,
            self.rejected,
        )  # fmt: skip

    def _start_after_cut(self, retained: RetainedPrefix, first_seq: int | None) -> None:
        """Start the walk after the prefix retention deleted, if it accounts for one."""
        found, cut = retained.start(self.chain_id, first_seq, self.marks)
        if found is not None:
            self.problem = self.problem or found
        elif cut is not None:
            self.expected_seq = cut + 1
            self.prev_hash = self.marks[cut]

    def _problem(self, kind: str, seq: int | None, event_id: str | None, message: str) -> Problem:
        return Problem(kind, self.chain_id, seq, event_id, message)

    def _check(self, row: Row[Any]) -> Problem | None:
        body = _parse_body(row.body)
        if body is None:
            return self._problem(
                "modified", row.seq, row.id, "the stored body is not a JSON object"
            )
        for check in (self._content, self._position, self._link, self._marks, self._columns):
            found = check(row, body)
            if found is not None:
                return found
        return None

    def _content(self, row: Row[Any], body: dict[str, Any]) -> Problem | None:
        try:
            ok = self.hasher.record_hash(body) == body.get("hash")
        except (KeyError, TypeError, ValueError):
            ok = False
        if ok:
            return None
        return self._problem(
            "modified", row.seq, row.id, "the record's content does not match its hash"
        )

    def _position(self, row: Row[Any], body: dict[str, Any]) -> Problem | None:
        if row.seq < self.expected_seq:  # a partitioned PostgreSQL store cannot enforce this
            return self._problem(
                "inserted",
                row.seq,
                row.id,
                f"seq {row.seq} is stored more than once: a record was inserted at a seq "
                "the chain already holds",
            )
        if row.seq > self.expected_seq:
            last = row.seq - 1
            span = str(self.expected_seq) if last == self.expected_seq else (
                f"{self.expected_seq}..{last}"
            )
            return self._problem(
                "missing",
                self.expected_seq,
                None,
                f"record(s) seq {span} missing before seq {row.seq}",
            )
        if body.get("seq") != row.seq or body.get("chain_id") != self.chain_id:
            return self._problem(
                "reordered",
                row.seq,
                row.id,
                f"the record was chained as seq {body.get('seq')} of {body.get('chain_id')!r} "
                f"but is stored at seq {row.seq}",
            )
        return None

    def _link(self, row: Row[Any], body: dict[str, Any]) -> Problem | None:
        if body.get("prev_hash") == self.prev_hash:
            return None
        return self._problem(
            "inserted",
            row.seq,
            row.id,
            f"the record does not link to seq {row.seq - 1}: a record was inserted or replaced",
        )

    def _marks(self, row: Row[Any], body: dict[str, Any]) -> Problem | None:
        mark = self.marks.get(row.seq)
        if mark is not None and mark != body.get("hash"):
            return self._problem(
                "modified",
                row.seq,
                row.id,
                "the record differs from the checkpoint written with it: the chain was rewritten",
            )
        if row.seq > self.newest_mark:
            return self._problem(
                "inserted",
                row.seq,
                row.id,
                f"the record lies past the newest checkpoint (seq {self.newest_mark}): "
                "it was not written by gitaudit",
            )
        return None

    def _columns(self, row: Row[Any], body: dict[str, Any]) -> Problem | None:
        try:
            expected = denormalize(body)
        except (TypeError, ValueError, AttributeError):
            return self._problem("mismatch", row.seq, row.id, "the body's fields cannot be read")
        stored = row._mapping
        differing = [name for name in DENORMALIZED if stored[name] != expected[name]]
        if not differing:
            return None
        return self._problem(
            "mismatch",
            row.seq,
            row.id,
            f"column(s) {', '.join(differing)} differ from the record's body",
        )


def _parse_body(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _chain_ids(conn: Connection) -> list[str]:
    query = union(select(chains.c.chain_id), select(events.c.chain_id).distinct())
    return sorted(str(chain_id) for chain_id in conn.scalars(query))


def _marks(conn: Connection, chain_id: str) -> dict[int, str]:
    rows = conn.execute(
        select(checkpoints.c.seq, checkpoints.c.hash).where(checkpoints.c.chain_id == chain_id)
    )
    return {int(seq): str(value) for seq, value in rows}


def _unregistered(conn: Connection, chain_id: str) -> ChainReport:
    first = conn.execute(
        select(events.c.seq, events.c.id)
        .where(events.c.chain_id == chain_id)
        .order_by(events.c.seq)
        .limit(1)
    ).one()
    records = conn.scalar(select(func.count()).where(events.c.chain_id == chain_id)) or 0
    rejected = conn.scalar(
        select(func.count()).where(
            events.c.chain_id == chain_id, events.c.operation == REJECTED_OPERATION
        )
    )
    problem = Problem(
        "inserted", chain_id, first.seq, first.id, "records of a chain gitaudit never registered"
    )
    return ChainReport(chain_id, records, first.seq, None, problem, rejected or 0)


def feed_chain(
    conn: Connection, check: _ChainCheck, done: int, total: int,
    progress: Progress | None, every: int,
) -> int:  # fmt: skip
    """Feed the chain's rows to ``check`` (fast path first, see :mod:`verify_fast`)."""
    from gitaudit.store.verify_fast import feed_chain as fast

    return fast(conn, check, done, total, progress, every)


def verify_chains(
    conn: Connection, key: bytes | None, progress: Progress | None = None
) -> VerifyReport:
    """Recompute every chain on ``conn`` (one consistent snapshot) and report per chain."""
    registered = {row.chain_id: row for row in conn.execute(select(chains))}
    retained = RetainedPrefix.load(conn)
    total = conn.scalar(select(func.count()).select_from(events)) or 0
    done = 0
    reports: list[ChainReport] = []
    for chain_id in _chain_ids(conn):
        info = registered.get(chain_id)
        if info is None:
            reports.append(_unregistered(conn, chain_id))
            continue
        check = _chain_check(conn, info, key, retained)
        done = feed_chain(conn, check, done, total, progress, _PROGRESS_EVERY)
        reports.append(check.finish())
    if progress is not None:
        progress(done, max(total, done))
    return VerifyReport(reports)


def _chain_check(
    conn: Connection, info: Row[Any], key: bytes | None, retained: RetainedPrefix
) -> _ChainCheck:
    """The check of registered chain ``info`` (a ``chains`` row) with its hasher and marks."""
    hasher = hasher_for_chain(info.chain_id, info.algorithm, info.key_fingerprint, key)
    return _ChainCheck(info.chain_id, hasher, _marks(conn, info.chain_id), retained)


def verify_chain(conn: Connection, chain_id: str, key: bytes | None) -> ChainReport:
    """Recompute one chain exactly as :func:`verify_chains` does (``gitaudit db rekey``
    checks each chain before it rewrites it, in the transaction that rewrites it)."""
    info = conn.execute(select(chains).where(chains.c.chain_id == chain_id)).first()
    if info is None:
        return _unregistered(conn, chain_id)
    check = _chain_check(conn, info, key, RetainedPrefix.load(conn))
    feed_chain(conn, check, 0, 0, None, _PROGRESS_EVERY)
    return check.finish()


def verify_period(
    conn: Connection, key: bytes | None, since: datetime | None, until: datetime | None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Verify the records of a period (``occurred_at`` in ``[since, until)``): for each chain
    with records in it, its seq span from the first to the last of them, exactly as
    :func:`verify_chains` checks those rows. A span that does not start the chain starts
    from the stored record before it (its seq and hash), so a gap or a broken link at the
    edge is found too; a span that ends the chain is held against its newest checkpoint.
    No period: every chain, as :func:`verify_chains`. What a report (``soc2``) states;
    ``progress(done, total)`` as in :func:`verify_chains`. In worker processes:
    :mod:`gitaudit.store.verify_parallel`."""
    if since is None and until is None:
        return verify_chains(conn, key, progress)
    from gitaudit.store.verify_fast import feed_chain as fast
    from gitaudit.store.verify_parallel import _start_after_previous_row

    registered = {row.chain_id: row for row in conn.execute(select(chains))}
    retained = RetainedPrefix.load(conn)
    reports: list[ChainReport] = []
    spans = period_spans(conn, since, until)
    total = sum(span.hi - span.lo + 1 for span in spans)
    done = 0
    for span in spans:
        info = registered.get(span.chain_id)
        if info is None:
            reports.append(_unregistered(conn, span.chain_id))
            continue
        hasher = hasher_for_chain(span.chain_id, info.algorithm, info.key_fingerprint, key)
        starts = span.lo == span.first
        check = _ChainCheck(span.chain_id, hasher, period_marks(conn, span),
                            retained if starts else None)  # fmt: skip
        if not starts:
            _start_after_previous_row(conn, check, span.lo)
        done = fast(conn, check, done, total, progress, _PROGRESS_EVERY, (span.lo, span.hi))
        reports.append(check.finish())
    if progress is not None:
        progress(done, max(total, done))
    return VerifyReport(reports)


@dataclass(frozen=True)
class PeriodSpan:
    """One chain's records of a period: seqs ``lo..hi``; ``first..last`` the chain's own."""

    chain_id: str
    lo: int
    hi: int
    first: int
    last: int


def period_spans(
    conn: Connection, since: datetime | None, until: datetime | None
) -> list[PeriodSpan]:
    """The seq span of every chain with records whose ``occurred_at`` is in
    ``[since, until)``, by chain id."""
    period = [events.c.occurred_at >= since] if since is not None else []
    period += [events.c.occurred_at < until] if until is not None else []
    spans = select(events.c.chain_id, func.min(events.c.seq), func.max(events.c.seq))
    whole = {row[0]: (int(row[1]), int(row[2])) for row in conn.execute(
        spans.group_by(events.c.chain_id))}  # fmt: skip
    return [
        PeriodSpan(str(chain_id), int(lo), int(hi), *whole[chain_id])
        for chain_id, lo, hi in sorted(conn.execute(spans.where(*period).group_by(
            events.c.chain_id)))
    ]  # fmt: skip


def period_marks(conn: Connection, span: PeriodSpan) -> dict[int, str]:
    """The checkpoints a span is held against: from the record before it to its end, and
    every later one when the span ends the chain."""
    return {seq: mark for seq, mark in _marks(conn, span.chain_id).items()
            if seq >= span.lo - 1 and (seq <= span.hi or span.hi == span.last)}  # fmt: skip


# --- archived segments (`gitaudit verify --archive DIR`) ----------------------------------


@dataclass(frozen=True)
class ArchiveReport:
    """Outcome of verifying one chain's archived segments."""

    chain_id: str
    segments: int
    records: int
    first_seq: int | None
    last_seq: int | None
    problem: Problem | None


class _SegmentWalk:
    """Walks one chain's segments in seq order: files, hashes, links, continuity."""

    def __init__(self, chain_id: str, hasher: ChainHasher, watch: int) -> None:
        self.chain_id = chain_id
        self.hasher = hasher
        self.watch = watch  # the seq whose archived hash the store's first record links to
        self.watched: str | None = None
        self.expected_seq = 1
        self.prev_hash = GENESIS_HASH
        self.records = 0
        self.problem: Problem | None = None

    def fail(self, kind: str, seq: int | None, message: str) -> None:
        self.problem = Problem(kind, self.chain_id, seq, None, message)

    def segment(self, manifest: dict[str, Any]) -> None:
        """Check one segment against its manifest and its predecessor."""
        name = f"segment {manifest.get('file')}"
        if manifest.get("first_seq") != self.expected_seq:
            first = manifest.get("first_seq")
            self.fail(
                "missing",
                self.expected_seq,
                f"{name} starts at seq {first}, not {self.expected_seq}: "
                "the archive does not continue the previous segment",
            )
            return
        if manifest.get("first_prev_hash") != self.prev_hash:
            self.fail("inserted", self.expected_seq, f"{name} does not link to the one before")
            return
        digest = file_sha256(manifest)
        if digest is None:
            self.fail("missing", self.expected_seq, f"{name} is missing from the archive")
            return
        if digest != manifest.get("sha256"):
            self.fail("modified", self.expected_seq, f"{name} differs from its manifest's SHA-256")
            return
        rows = 0
        for _, record in segment_records(manifest):
            rows += 1
            if not self._record(name, record):
                return
        if rows != manifest.get("rows") or self.prev_hash != manifest.get("last_hash"):
            self.fail("modified", self.expected_seq - 1, f"{name} disagrees with its manifest")

    def _record(self, name: str, record: dict[str, Any] | None) -> bool:
        seq = self.expected_seq
        if record is None:
            self.fail("modified", seq, f"{name}: a line is not an archived record")
            return False
        try:
            ok = self.hasher.record_hash(record) == record.get("hash")
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            self.fail("modified", seq, f"{name}: the record's content does not match its hash")
        elif record.get("seq") != seq or record.get("chain_id") != self.chain_id:
            self.fail("reordered", seq, f"{name}: record seq {record.get('seq')} sits at {seq}")
        elif record.get("prev_hash") != self.prev_hash:
            self.fail("inserted", seq, f"{name}: the record does not link to seq {seq - 1}")
        if self.problem is not None:
            return False
        self.records += 1
        self.prev_hash = str(record["hash"])
        if seq == self.watch:
            self.watched = self.prev_hash
        self.expected_seq = seq + 1
        return True


def _store_start(conn: Connection, chain_id: str) -> tuple[int, str] | None:
    """``(cut, hash)``: the seq before the chain's first stored record and the hash that
    record links to (for a chain with no records left: its newest checkpoint)."""
    row = conn.execute(
        select(events.c.seq, events.c.prev_hash)
        .where(events.c.chain_id == chain_id)
        .order_by(events.c.seq)
        .limit(1)
    ).first()
    if row is not None:
        return int(row.seq) - 1, str(row.prev_hash)
    mark = conn.execute(
        select(checkpoints.c.seq, checkpoints.c.hash)
        .where(checkpoints.c.chain_id == chain_id)
        .order_by(checkpoints.c.seq.desc())
        .limit(1)
    ).first()
    return None if mark is None else (int(mark.seq), str(mark.hash))


def verify_archive(
    conn: Connection, directory: str | Path, key: bytes | None
) -> list[ArchiveReport]:
    """Verify every archived segment in ``directory`` and how each chain's archive meets
    the store: the last archived hash before the first retained record must be the
    hash that record links to. Raises ArchiveError when the directory cannot be read."""
    archive = Archive(directory)
    if not archive.directory.is_dir():
        raise ArchiveError(
            f"no archive directory {archive.directory}",
            "give the directory retention archives into (GITAUDIT_ARCHIVE_DIR)",
        )
    grouped: dict[str, list[dict[str, Any]]] = {}
    for manifest in archive.manifests():
        grouped.setdefault(str(manifest.get("chain_id")), []).append(manifest)
    registered = {row.chain_id: row for row in conn.execute(select(chains))}
    reports = []
    for chain_id, manifests in sorted(grouped.items()):
        info = registered.get(chain_id)
        first = manifests[0]
        hasher = hasher_for_chain(
            chain_id,
            str(info.algorithm if info else first.get("algorithm")),
            info.key_fingerprint if info else first.get("key_fingerprint"),
            key,
        )
        start = _store_start(conn, chain_id) if info else None
        walk = _SegmentWalk(chain_id, hasher, start[0] if start else -1)
        for manifest in manifests:
            walk.segment(manifest)
            if walk.problem is not None:
                break
        if walk.problem is None and start is not None and start[0] > 0:
            cut, linked = start
            if walk.expected_seq - 1 < cut:
                walk.fail(
                    "missing",
                    walk.expected_seq,
                    f"the archive ends at seq {walk.expected_seq - 1} but the store starts after "
                    f"seq {cut}: records seq {walk.expected_seq}..{cut} are in neither",
                )
            elif walk.watched != linked:
                walk.fail(
                    "modified",
                    cut,
                    f"the archived record seq {cut} is not the one the store's first retained "
                    "record links to",
                )
        last = walk.expected_seq - 1
        first_seq, last_seq = (1, last) if walk.records else (None, None)
        reports.append(
            ArchiveReport(chain_id, len(manifests), walk.records, first_seq, last_seq, walk.problem)
        )
    return reports
