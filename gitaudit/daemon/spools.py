"""Client spool directories (``watch_spool_dirs``): ingested at start and as segments appear.

Clients spool when the daemon does not answer. The daemon watches those
directories with watchfiles; on a change (and every few seconds regardless)
it takes the directory's drain lock (the same one ``gitaudit ingest`` takes),
seals the active segment, and feeds each sealed segment through the intake
(``source="spool"``: policy, sanitizer, validation, journal). A segment is
deleted once its events are journaled (or dropped by policy). A line that does
not parse or that the intake rejects is never just skipped: its
``audit.rejected`` stand-in (:mod:`gitaudit.quarantine`, stage ``spool`` or
``ingest``) is journaled as the daemon's own event, and the raw line is kept
under the directory's ``rejected/``. A temporary refusal (store down with
``on_store_failure=reject``, journal failure) leaves the segment for the next
round.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from watchfiles import awatch

from gitaudit.daemon import api
from gitaudit.daemon.api import Peer
from gitaudit.daemon.intake import EventIntake
from gitaudit.daemon.journal import Worker
from gitaudit.daemon.logging import get_logger
from gitaudit.daemon.metrics import Metrics
from gitaudit.errors import GitauditError
from gitaudit.quarantine import Quarantine
from gitaudit.transport import spool

CHUNK: Final = 1000
RESCAN_MS: Final = 5000
DEBOUNCE_MS: Final = 100


def _lock(directory: Path) -> spool.drain_lock:
    lock = spool.drain_lock(directory)
    lock.__enter__()
    return lock


def _sealed(directory: Path) -> list[Path]:
    spool.seal_active(directory)
    return spool.sealed_segments(directory)


def _read(segment: Path) -> list[spool.SpoolLine]:
    return list(spool.read_segment(segment))


class SpoolWatcher:
    """Ingests the watched client spool directories through the intake."""

    def __init__(
        self,
        directories: Sequence[str],
        intake: EventIntake,
        metrics: Metrics,
        quarantine: Quarantine | None = None,
    ) -> None:
        self.directories = [Path(folder) for folder in directories]
        self.intake = intake
        self.metrics = metrics
        self.quarantine = quarantine or Quarantine("daemon")
        self.me = Peer(pid=os.getpid(), uid=os.getuid(), gid=os.getgid())
        self.worker = Worker("gitaudit-spools")
        self.log = get_logger(component="spools")

    async def run(self, stop: asyncio.Event) -> None:
        """Ingest everything now, then on every change until ``stop`` is set."""
        await self.ingest_all()
        watched = [str(folder) for folder in self.directories if folder.is_dir()]
        if not watched:
            await stop.wait()
            return
        async for _changes in awatch(
            *watched,
            stop_event=stop,
            debounce=DEBOUNCE_MS,
            rust_timeout=RESCAN_MS,
            yield_on_timeout=True,
            ignore_permission_denied=True,
        ):
            await self.ingest_all()

    def close(self) -> None:
        """Let the spool thread end."""
        self.worker.stop()

    async def ingest_all(self) -> None:
        """One round over every watched directory; problems are logged, never raised."""
        for folder in self.directories:
            if not folder.is_dir():
                continue
            try:
                await self.ingest_directory(folder)
            except (GitauditError, OSError) as exc:
                self.log.error(  # noqa: TRY400 - expected failure, message suffices
                    "spool_ingest_failed", directory=str(folder), error=str(exc)
                )

    async def ingest_directory(self, folder: Path) -> None:
        """Drain one directory under its lock; stops at the first temporary refusal."""
        lock = await self.worker.run(_lock, folder)
        try:
            for segment in await self.worker.run(_sealed, folder):
                if not await self._segment(folder, segment):
                    return
        finally:
            await self.worker.run(lock.__exit__, None, None, None)

    async def _segment(self, folder: Path, segment: Path) -> bool:
        lines = await self.worker.run(_read, segment)
        bad = [line for line in lines if line.event is None]
        good = [line for line in lines if line.event is not None]
        for start in range(0, len(good), CHUNK):
            chunk = good[start : start + CHUNK]
            events: list[dict[str, Any]] = [line.event for line in chunk if line.event is not None]
            acks = await self.intake.accept(events, peer=None, source="spool")
            if any(self.intake.transient(ack) for ack in acks):
                return False
            self.metrics.spooled.inc(sum(ack.status == api.ACCEPTED for ack in acks))
            for line, ack in zip(chunk, acks, strict=True):
                if ack.status == api.REJECTED:
                    line.error = ack.error
                    bad.append(line)
        bad.sort(key=lambda line: line.line_no)
        if bad and not await self._stand_in(bad):
            return False
        await self.worker.run(self._finish, folder, segment, bad)
        return True

    async def _stand_in(self, bad: list[spool.SpoolLine]) -> bool:
        """Journal the ``audit.rejected`` stand-ins of ``bad``; False on a temporary refusal."""
        stand_ins = await self.worker.run(self._stand_ins, bad)
        acks = await self.intake.accept(stand_ins, peer=self.me, source="daemon")
        return not any(self.intake.transient(ack) for ack in acks)

    def _stand_ins(self, bad: list[spool.SpoolLine]) -> list[dict[str, Any]]:
        return [
            self.quarantine.line(line, "spool" if line.event is None else "ingest") for line in bad
        ]

    def _finish(self, folder: Path, segment: Path, bad: list[spool.SpoolLine]) -> None:
        if bad and not (folder / spool.REJECTED_DIR / f"{segment.name}.rejected").exists():
            spool.quarantine(folder, bad)
            self.log.warning(
                "spool_lines_rejected", segment=str(segment), lines=len(bad), pid=os.getpid()
            )
        spool.remove_segment(segment)
