"""``gitaudit verify --checkpoints``: hold the store against checkpoints kept outside it.

The hash chain shows that stored records link up; it cannot show that the store
still holds everything it held, since whoever owns the database can cut a chain,
rewrite it with recomputed hashes (or HMACs, holding the key file), or delete it,
and rewrite the per-append checkpoints in the store to match. A checkpoint copied
outside the store, signed with an Ed25519 key that is not on the database host,
pins each chain's head as it was. For every checkpoint given (each is checked,
oldest first), this module reports, each finding named by a kind:

``corrupt``        the file is not a checkpoint
``unsigned``       ``--key`` given but the checkpoint carries no signature
``other-key``      signed, but not by ``--key``
``bad-signature``  the signature by ``--key`` does not match the text
``future``         its time is later than now plus the allowed clock skew
``deleted``        a chain it names is not in the store at all
``truncated``      the chain ends before the seq it states (the tail was cut)
``missing``        the records up to the seq it states are gone and no retention
                   (grant plus ``audit.retention`` record) accounts for them
``rewritten``      the record at the seq it states has another hash
``inserted``       records past the seq it states were recorded (``recorded_at``)
                   before the checkpoint's time minus the skew: it would have
                   covered them, so they were added later and backdated
``rolled-back``    a later checkpoint states a lower seq for a chain than an
                   earlier one, or another hash for the same seq

Records past a chain's newest checkpoint are counted as *unattested*: nothing
outside the store vouches for them yet (the next checkpoint will).

A head whose record ``gitaudit db rekey`` rewrote (events stored before revision 0007,
identities replaced by subject tokens) has another hash now: it is counted as
*rekeyed*, not ``rewritten``, when ``rekeyed_hashes`` carries the stated hash to the
stored one and the run's rows are bound by the digest in the chain's
``audit.store_rekeyed`` record (:class:`gitaudit.store.rekey.RekeyedHashes`); rows no
record accounts for explain nothing.

Sources: a directory (every ``*.note`` file, and ``*.jsonl``/``*.json`` files of
exported events), one file (a note, or JSON lines / a JSON array of events as
the HTTP sink or Fluent Bit wrote them: the ``audit.checkpoint`` events are
taken), or an ``http(s)://`` URL serving such an export.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection, func, select

from gitaudit.errors import UsageError
from gitaudit.store.checkpoint_store import CHECKPOINT_OPERATION, NOTE_SUFFIX, note_of_event
from gitaudit.store.checkpoints import (
    ChainHead,
    Checkpoint,
    CheckpointError,
    VerifierKey,
    format_time,
    open_note,
    parse_body,
)
from gitaudit.store.grants import grant_status
from gitaudit.store.tables import chains, events

if TYPE_CHECKING:
    from gitaudit.store.rekey import RekeyedHashes

FINDING_KINDS: Final = (
    "corrupt", "unsigned", "other-key", "bad-signature", "future", "deleted", "truncated",
    "missing", "rewritten", "inserted", "rolled-back",
)  # fmt: skip
_EVENT_SUFFIXES: Final = (".jsonl", ".json", ".ndjson")
REKEYED: Final = "rekeyed"  # informational (counted), not a finding


@dataclass(frozen=True)
class LoadedNote:
    """A checkpoint's text and where it came from (file name, or export line)."""

    label: str
    text: str


@dataclass(frozen=True)
class Finding:
    """One thing a checkpoint shows to be wrong."""

    kind: str
    label: str
    message: str
    chain_id: str | None = None
    seq: int | None = None


@dataclass
class CheckpointReport:
    """What holding the store against the checkpoints found."""

    checkpoints: int = 0
    signed: int = 0
    findings: list[Finding] = field(default_factory=list)
    newest: dict[str, int] = field(default_factory=dict)
    unattested: dict[str, int] = field(default_factory=dict)
    rekeyed: int = 0  # heads stated before a `db rekey` run rewrote their record

    @property
    def ok(self) -> bool:
        """True when no finding was made."""
        return not self.findings


# --- reading checkpoint sources ----------------------------------------------------------


def _from_events(label: str, text: str) -> Iterator[LoadedNote]:
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            batches: list[Any] = [json.loads(stripped)]
        except ValueError:
            yield LoadedNote(label, text)
            return
    else:
        batches = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                batches.append(json.loads(line))
            except ValueError:
                yield LoadedNote(f"{label}:{number}", line)  # reported as corrupt
    for batch in batches:
        for item in batch if isinstance(batch, list) else [batch]:
            if not isinstance(item, dict) or item.get("operation") != CHECKPOINT_OPERATION:
                continue
            details = item.get("details")
            note = note_of_event(details) if isinstance(details, dict) else None
            where = f"{label} (event {item.get('id')})"
            yield LoadedNote(where, note or "")


def _from_text(label: str, text: str) -> Iterator[LoadedNote]:
    if text.lstrip().startswith(("{", "[")):
        yield from _from_events(label, text)
    else:
        yield LoadedNote(label, text)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        raise UsageError(
            f"cannot read checkpoint file {path}: {exc.strerror or exc}",
            "give a directory of .note files, one checkpoint file, or a sink export",
        ) from exc


def _fetch(url: str) -> str:
    import httpx

    try:
        response = httpx.get(url, timeout=30.0, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise UsageError(
            f"cannot fetch checkpoints from {url}: {exc}",
            "check the URL of the sink export (it must serve the JSON lines the sink received)",
        ) from exc
    return response.text


def load_notes(source: str) -> list[LoadedNote]:
    """Every checkpoint in ``source`` (directory, file or http(s) URL), in name order."""
    if source.startswith(("http://", "https://")):
        return list(_from_events(source, _fetch(source)))
    path = Path(source).expanduser()
    if path.is_dir():
        notes: list[LoadedNote] = []
        for item in sorted(path.iterdir()):
            if item.name.startswith(".") or not item.is_file():
                continue
            if item.suffix == NOTE_SUFFIX:
                notes.append(LoadedNote(str(item), _read(item)))
            elif item.suffix in _EVENT_SUFFIXES:
                notes.extend(_from_events(str(item), _read(item)))
        return notes
    if path.is_file():
        return list(_from_text(str(path), _read(path)))
    raise UsageError(
        f"no checkpoints at {source}: not a directory, a file or an http(s) URL",
        "give GITAUDIT_CHECKPOINT_DIR, one .note file, or a sink export (JSON lines)",
    )


# --- holding the store against them --------------------------------------------------------


class _Store:
    """The store facts the checks need, each read once per chain."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.registered = set(conn.scalars(select(chains.c.chain_id)))
        self.accounted, _ = grant_status(conn)
        self._spans: dict[str, tuple[int | None, int | None]] = {}
        self._hashes: dict[tuple[str, int], str | None] = {}
        self._rekeyed: RekeyedHashes | None = None

    def rekeyed_to(self, chain_id: str, seq: int, old: str) -> str:
        """The hash ``old`` became at ``seq`` through accounted ``db rekey`` runs (else old)."""
        if self._rekeyed is None:
            from gitaudit.store.rekey import RekeyedHashes

            self._rekeyed = RekeyedHashes(self.conn)
        return self._rekeyed.carried(chain_id, seq, old)

    def span(self, chain_id: str) -> tuple[int | None, int | None]:
        if chain_id not in self._spans:
            row = self.conn.execute(
                select(func.min(events.c.seq), func.max(events.c.seq)).where(
                    events.c.chain_id == chain_id
                )
            ).one()
            self._spans[chain_id] = (row[0], row[1])
        return self._spans[chain_id]

    def hash_at(self, chain_id: str, seq: int) -> str | None:
        if (chain_id, seq) not in self._hashes:  # hourly checkpoints repeat quiet heads
            self._hashes[chain_id, seq] = self.conn.scalar(
                select(events.c.hash).where(events.c.chain_id == chain_id, events.c.seq == seq)
            )
        return self._hashes[chain_id, seq]

    def backdated(
        self, chain_id: str, seq: int, upto: int | None, before: datetime
    ) -> tuple[int, int] | None:
        """(first seq, count) of records in ``seq+1..upto`` recorded before ``before``."""
        where = [events.c.chain_id == chain_id, events.c.seq > seq, events.c.recorded_at < before]
        if upto is not None:
            where.append(events.c.seq <= upto)
        row = self.conn.execute(select(func.min(events.c.seq), func.count()).where(*where)).one()
        return None if not row[1] else (int(row[0]), int(row[1]))


def _opened(
    loaded: LoadedNote, key: VerifierKey | None, report: CheckpointReport
) -> Checkpoint | None:
    try:
        body = open_note(loaded.text, key)
        checkpoint = parse_body(body)
    except CheckpointError as exc:
        found = exc
        if exc.kind == "unsigned":  # not a checkpoint at all says more than "unsigned"
            try:
                parse_body(loaded.text)
            except CheckpointError as corrupt:
                found = corrupt
        report.findings.append(Finding(found.kind, loaded.label, found.message))
        return None
    if key is not None:
        report.signed += 1
    return checkpoint


def _check_head(
    store: _Store, label: str, checkpoint: Checkpoint, head: ChainHead, skew: timedelta
) -> Finding | None:
    chain_id, seq = head.chain_id, head.seq
    stated = f"checkpoint of {format_time(checkpoint.time)} states seq {seq}"
    if chain_id not in store.registered:
        return Finding(
            "deleted", label, f"chain {chain_id!r} is not in the store at all, but the {stated}: "
            "the whole chain was deleted", chain_id, seq,
        )  # fmt: skip
    first, last = store.span(chain_id)
    expired = seq <= store.accounted.get(chain_id, 0) and (first is None or first > seq)
    if expired:
        return None  # removed by an accounted retention run (its archive verifies it)
    if last is None or last < seq:
        ends = "has no records" if last is None else f"ends at seq {last}"
        gone = f"{(last or 0) + 1}..{seq}"
        return Finding(
            "truncated", label, f"chain {chain_id!r} {ends}, but the {stated}: records {gone} "
            "were deleted", chain_id, (last or 0) + 1,
        )  # fmt: skip
    if first is not None and first > seq:
        return Finding(
            "missing", label, f"chain {chain_id!r} starts at seq {first}, but the {stated} and "
            "no retention run accounts for the deletion", chain_id, seq,
        )  # fmt: skip
    stored = store.hash_at(chain_id, seq)
    if stored is not None and stored != head.hash and (
        store.rekeyed_to(chain_id, seq, head.hash) == stored
    ):
        return Finding(REKEYED, label, f"record seq {seq} of chain {chain_id!r} was rekeyed "
                       f"by `gitaudit db rekey` after the {stated}", chain_id, seq)  # fmt: skip
    if stored != head.hash:
        what = "is missing" if stored is None else f"has hash {stored[:16]}..."
        return Finding(
            "rewritten", label, f"record seq {seq} of chain {chain_id!r} {what}, but the "
            f"{stated} with hash {head.hash[:16]}...: the chain was rewritten", chain_id, seq,
        )  # fmt: skip
    return None


def _check_backdated(
    store: _Store, opened: list[tuple[str, Checkpoint]], skew: timedelta
) -> list[Finding]:
    """Records past a checkpoint's seq (up to the next checkpoint's) recorded before it.

    Only the rows between one checkpoint of a chain and the next are looked at, so
    the cost stays that of reading the chain once, however many checkpoints there are.
    """
    findings: list[Finding] = []
    by_chain: dict[str, list[tuple[Checkpoint, str, int]]] = {}
    for label, checkpoint in opened:  # in time order
        for head in checkpoint.heads:
            by_chain.setdefault(head.chain_id, []).append((checkpoint, label, head.seq))
    for chain_id, stated in by_chain.items():
        if chain_id not in store.registered:
            continue
        for index, (checkpoint, label, seq) in enumerate(stated):
            upto = stated[index + 1][2] if index + 1 < len(stated) else None
            late = store.backdated(chain_id, seq, upto, checkpoint.time - skew)
            if late is None:
                continue
            start, count = late
            findings.append(Finding(
                "inserted", label, f"{count} record(s) of chain {chain_id!r} from seq {start} "
                f"claim to be recorded before the checkpoint of {format_time(checkpoint.time)}, "
                f"which states seq {seq} and does not cover them: they were inserted later",
                chain_id, start,
            ))  # fmt: skip
    return findings


def _check_sequence(ordered: list[tuple[str, Checkpoint]], report: CheckpointReport) -> None:
    """Later checkpoints never state a lower seq, or another hash for the same seq."""
    seen: dict[str, tuple[str, ChainHead]] = {}
    for label, checkpoint in ordered:
        for head in checkpoint.heads:
            earlier = seen.get(head.chain_id)
            if earlier is not None:
                before_label, before = earlier
                if head.seq < before.seq or (head.seq == before.seq and head.hash != before.hash):
                    report.findings.append(Finding(
                        "rolled-back", label, f"chain {head.chain_id!r} is stated at seq "
                        f"{head.seq} here but at seq {before.seq} (hash {before.hash[:16]}...) "
                        f"by the earlier {before_label}", head.chain_id, head.seq,
                    ))  # fmt: skip
            seen[head.chain_id] = (label, head)


def verify_checkpoints(
    conn: Connection,
    notes: Iterable[LoadedNote],
    key: VerifierKey | None,
    now: datetime,
    skew: timedelta,
) -> CheckpointReport:
    """Check each checkpoint's signature and every head it states against the store."""
    report = CheckpointReport()
    opened: list[tuple[str, Checkpoint]] = []
    for loaded in notes:
        report.checkpoints += 1
        checkpoint = _opened(loaded, key, report)
        if checkpoint is None:
            continue
        if checkpoint.time > now + skew:
            report.findings.append(Finding(
                "future", loaded.label, f"the checkpoint is dated {format_time(checkpoint.time)}, "
                f"later than now ({format_time(now)}) plus the allowed skew of "
                f"{int(skew.total_seconds())}s: its clock or its content is false",
            ))  # fmt: skip
        opened.append((loaded.label, checkpoint))
    opened.sort(key=lambda item: item[1].time)
    _check_sequence(opened, report)  # a rekey appends to every chain it rewrites: new seq
    store = _Store(conn)
    for label, checkpoint in opened:
        for head in checkpoint.heads:
            found = _check_head(store, label, checkpoint, head, skew)
            if found is not None and found.kind == REKEYED:
                report.rekeyed += 1
            elif found is not None:
                report.findings.append(found)
            report.newest[head.chain_id] = max(report.newest.get(head.chain_id, 0), head.seq)
    report.findings.extend(_check_backdated(store, opened, skew))
    for chain_id, seq in report.newest.items():
        _, last = store.span(chain_id) if chain_id in store.registered else (None, None)
        if last is not None and last > seq:
            report.unattested[chain_id] = last - seq
    for chain_id in sorted(store.registered - set(report.newest)):
        _, last = store.span(chain_id)
        if last:
            report.unattested[chain_id] = last
    return report
