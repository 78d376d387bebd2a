"""Draining spool directories into the store.

For each spool directory, under its drain lock: seal the active segment, then
for each sealed segment, oldest first, validate every line and append the
events in batches, and delete the segment only once all of them are committed.
A line that is not a valid event is never skipped: an ``audit.rejected`` event
(:mod:`gitaudit.quarantine`) takes its place in the batch, and its raw bytes
are also kept under ``rejected/``; a record the store refuses is replaced the
same way by :meth:`Store.append`.

Crash safety: a process killed at any point loses nothing and duplicates
nothing. The segment stays until everything in it is committed, and a re-run
re-reads it from the start; events committed before the crash are skipped by
id (:meth:`Store.append` is idempotent). Lines are set aside only when the
segment is complete, once per segment (a re-run finding the segment's rejected
file already there does not write it twice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gitaudit.config import Settings
from gitaudit.events import describe_invalid, gitaudit_only, unverified, validate_event
from gitaudit.quarantine import Quarantine
from gitaudit.store.engine import Store
from gitaudit.transport import spool, spool_dirs

BATCH_SIZE = 5000

Progress = Callable[[int, int], None]


@dataclass
class IngestReport:
    """What one ingest run did.

    ``rejected`` counts records stored as ``audit.rejected`` events in their place
    (``ingested`` and ``duplicates`` count the others); ``problems`` has one line
    per rejected record: segment, line number, why.
    """

    ingested: int = 0
    duplicates: int = 0
    rejected: int = 0
    segments: int = 0
    rejected_files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _count_lines(segment: Path) -> int:
    with segment.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


class _Drain:
    """State of one ingest run: the store, the report and the progress counter."""

    def __init__(self, store: Store, progress: Progress | None, quarantine: Quarantine) -> None:
        self.store = store
        self.progress = progress
        self.quarantine = quarantine
        self.report = IngestReport()
        self.done = 0
        self.total = 0

    def directory(self, spool_dir: Path) -> None:
        """Drain one spool directory under its lock."""
        with spool.drain_lock(spool_dir):
            spool.seal_active(spool_dir)
            segments = spool.sealed_segments(spool_dir)
            self.total += sum(_count_lines(segment) for segment in segments)
            for segment in segments:
                self.segment(spool_dir, segment)

    def segment(self, spool_dir: Path, segment: Path) -> None:
        """Ingest one sealed segment (bad lines as their stand-ins), set bad lines aside, delete."""
        batch: list[dict[str, Any]] = []
        lines: list[spool.SpoolLine] = []
        bad: list[spool.SpoolLine] = []
        for line in spool.read_segment(segment):
            self.done += 1
            record = self._record(line)
            if line.error is not None:  # set for every line that got a stand-in
                bad.append(line)
            batch.append(record)
            lines.append(line)
            if len(batch) >= BATCH_SIZE:
                self._commit(batch, lines)
                batch, lines = [], []
        self._commit(batch, lines)
        self._set_aside(spool_dir, segment, bad)
        spool.remove_segment(segment)
        self.report.segments += 1

    def _record(self, line: spool.SpoolLine) -> dict[str, Any]:
        """The validated record of a line, or its ``audit.rejected`` stand-in (noted)."""
        stage = "spool"
        if line.event is not None:
            # a spool file is a client's word: what only gitaudit says is refused, and what
            # only the daemon sets (claimed_actor, a verified actor) is dropped
            forged = gitaudit_only(line.event)
            if forged is not None:
                line.error, stage = forged, "ingest"
            else:
                try:
                    return validate_event(unverified(line.event)).to_record()
                except ValidationError as exc:
                    line.error, stage = describe_invalid(exc), "ingest"
        self.report.rejected += 1
        self.report.problems.append(f"{line.segment.name} line {line.line_no}: {line.error}")
        return self.quarantine.line(line, stage)

    def _commit(self, batch: list[dict[str, Any]], lines: list[spool.SpoolLine]) -> None:
        if not batch:
            return
        result = self.store.append(batch)
        stand_ins = {
            str(record["id"])
            for line, record in zip(lines, batch, strict=True)
            if line.error is not None
        }
        for index, replacement in result.replaced.items():
            line = lines[index]
            stand_ins.add(str(replacement["id"]))
            self.report.rejected += 1
            self.report.problems.append(
                f"{line.segment.name} line {line.line_no}: {replacement['details']['reason']}"
            )
        stored = sum(event_id in result.positions for event_id in stand_ins)
        self.report.ingested += result.inserted - stored
        self.report.duplicates += result.duplicates - (len(stand_ins) - stored)
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))

    def _set_aside(self, spool_dir: Path, segment: Path, bad: list[spool.SpoolLine]) -> None:
        if not bad:
            return
        target = spool_dir / spool.REJECTED_DIR / f"{segment.name}.rejected"
        if not target.exists():  # else a run killed before removing the segment wrote it
            spool.quarantine(spool_dir, bad)
        self.report.rejected_files.append(target)


def ingest(
    settings: Settings, store: Store | None = None, progress: Progress | None = None
) -> IngestReport:
    """Move every spooled event of ``settings``' spool directories into the store.

    Opens the configured store when ``store`` is None (and closes it again).
    ``progress(done, total)`` counts spool lines. Raises StoreError/SpoolError
    on failures that stop the run; bad lines do not stop it (see the report).
    """
    own = store is None
    active = Store.from_settings(settings) if store is None else store
    try:
        drain = _Drain(active, progress, Quarantine.from_settings(settings, "cli"))
        for spool_dir in spool_dirs(settings):
            if spool_dir.is_dir():
                drain.directory(spool_dir)
        if progress is not None:
            progress(drain.done, max(drain.total, drain.done))
        return drain.report
    finally:
        if own:
            active.close()
