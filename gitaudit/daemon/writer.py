"""The batch writer: journal segments into the store, in batches, off the event loop.

Every ``buffer_flush_interval`` seconds, or as soon as ``buffer_max_size``
events are journaled, the writer seals the active journal segment and commits
its records (in ``buffer_max_size`` chunks) on the store thread. A segment is
deleted only once all of its records are committed; then the publisher
(subscribers, sinks) gets them. Segments are committed oldest first.

No record stops the writer: one the store cannot take is stored as its
``audit.rejected`` stand-in (:meth:`gitaudit.store.Store.append`), which is
published in its place and counted in ``gitaudit_events_quarantined_total``.

When the store fails, ``store_up`` is cleared, the writer retries with
exponential backoff, and catches up when the store answers again; what the
intake does meanwhile depends on ``on_store_failure`` (see
:mod:`gitaudit.daemon.intake`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from gitaudit.config import Settings
from gitaudit.daemon.api import Publisher
from gitaudit.daemon.journal import Journal, SealedSegment, Worker
from gitaudit.daemon.logging import get_logger
from gitaudit.daemon.metrics import Metrics
from gitaudit.daemon.writer_process import StoreProcess
from gitaudit.errors import ConfigError, GitauditError, StoreError
from gitaudit.quarantine import OPERATION as QUARANTINE_OPERATION

if TYPE_CHECKING:
    from gitaudit.store import AppendResult

BACKOFF_START: Final = 0.25
BACKOFF_MAX: Final = 5.0
# Records kept in memory for segments waiting on the store; past this, read them back from disk.
MEMORY_RECORDS: Final = 200_000


class BatchWriter:
    """Moves journaled events into the store; one instance per daemon."""

    def __init__(
        self,
        journal: Journal,
        journal_worker: Worker,
        settings: Callable[[], Settings],
        metrics: Metrics,
        publisher: Publisher,
    ) -> None:
        self.journal = journal
        self.journal_worker = journal_worker
        self.store_worker = Worker("gitaudit-store")
        self.settings = settings
        self.metrics = metrics
        self.publisher = publisher
        self.store: StoreProcess | None = None
        self.store_up = asyncio.Event()
        self.segments: deque[SealedSegment] = deque()
        self.backlog = 0
        self._in_memory = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self._backoff = 0.0
        self._next_retry = 0.0
        self.log = get_logger(component="writer")

    # -- set-up -----------------------------------------------------------------------

    async def open_store(self) -> None:
        """Open the store; a StoreError leaves it closed (retried by :meth:`run`)."""
        try:
            self.store = await self.store_worker.run(StoreProcess.from_settings, self.settings())
        except ConfigError:
            raise
        except GitauditError as exc:
            self._mark_down(exc)
            return
        self._mark_up()

    def replay(self, segments: Sequence[SealedSegment]) -> None:
        """Queue segments a previous run left in the journal (read from disk when due)."""
        self.segments.extend(segments)

    def journaled(self, count: int) -> None:
        """Called after each durable journal write of ``count`` records."""
        self.backlog += count
        self.metrics.journal_backlog.set(self.backlog)
        if self.journal.active_count >= self.settings().buffer_max_size:
            self._wake.set()

    # -- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Flush on the interval, on size, and with backoff while the store is down."""
        while not self._stopping:
            delay = self._backoff or self.settings().buffer_flush_interval
            with contextlib.suppress(TimeoutError):  # the interval is up: flush what there is
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            if self._stopping:
                return
            if self._backoff and not self._retry_due():
                continue
            self._wake.clear()
            await self.flush()

    def _retry_due(self) -> bool:
        """While backing off, only a full backoff period (not a size wake-up) retries."""
        due = time.monotonic() >= self._next_retry
        if not due:
            self._wake.clear()
        return due

    def stop(self) -> None:
        """Make :meth:`run` return; the caller then does the final :meth:`flush`."""
        self._stopping = True
        self._wake.set()

    async def flush(self) -> bool:
        """Seal the active segment and commit every queued segment; False if the store failed."""
        sealed = await self.journal_worker.run(self.journal.seal)
        if sealed is not None:
            self._queue(sealed)
        while self.segments:
            if not await self._commit(self.segments[0]):
                return False
            self.segments.popleft()
        return True

    def _queue(self, sealed: SealedSegment) -> None:
        if self._in_memory + sealed.count > MEMORY_RECORDS:
            sealed.records = None  # a long outage: read it back from the journal file later
        else:
            self._in_memory += sealed.count
        self.segments.append(sealed)

    # -- committing one segment ----------------------------------------------------------

    async def _commit(self, segment: SealedSegment) -> bool:
        if self.store is None:
            await self.open_store()
            if self.store is None:
                self._schedule_retry()
                return False
        records = segment.records
        if records is None:
            unknown = segment.count < 0  # replayed from a previous run: not in the backlog yet
            records = await self.journal_worker.run(self.journal.load, segment)
            segment.records = records
            self._in_memory += len(records)
            if unknown:
                self.backlog += len(records)
                self.metrics.journal_backlog.set(self.backlog)
        try:
            await self._write_chunks(segment, records)
        except StoreError as exc:
            self._mark_down(exc)
            self._schedule_retry()
            if self.store is not None and not self.store.alive:
                await self.close_store()  # started afresh on the next attempt
            return False
        await self.journal_worker.run(self.journal.remove, segment)
        self._in_memory -= len(records)
        segment.records = None
        return True

    async def _write_chunks(self, segment: SealedSegment, records: list[dict[str, Any]]) -> None:
        size = self.settings().buffer_max_size
        assert self.store is not None  # noqa: S101 - checked by _commit
        while segment.done < len(records):
            chunk = records[segment.done : segment.done + size]
            started = time.perf_counter()
            result = await self.store_worker.run(self.store.append, chunk)
            self.metrics.batch_latency.observe(time.perf_counter() - started)
            segment.done += len(chunk)
            self.backlog = max(0, self.backlog - len(chunk))
            self.metrics.journal_backlog.set(self.backlog)
            self.metrics.written.inc(result.inserted)
            self._mark_up()
            added = committed(chunk, result)
            self._count_quarantined(added)
            self._publish(added)

    def _count_quarantined(self, added: list[dict[str, Any]]) -> None:
        for record in added:
            if record["operation"] == QUARANTINE_OPERATION:
                stage = str(record["details"].get("stage"))
                self.metrics.quarantined.labels(stage).inc()
                self.log.warning(
                    "record_quarantined", id=record["id"], stage=stage,
                    original_id=record["details"].get("original_id"),
                    reason=record["details"].get("reason"),
                )  # fmt: skip

    def _publish(self, chunk: list[dict[str, Any]]) -> None:
        try:
            self.publisher.publish(chunk)
        except Exception as exc:  # a publisher bug must not stop the store writes (logged)
            self.log.exception("publish_failed", error=str(exc), events=len(chunk))

    # -- store state --------------------------------------------------------------------

    def _schedule_retry(self) -> None:
        self._backoff = min(BACKOFF_MAX, max(BACKOFF_START, self._backoff * 2))
        self._next_retry = time.monotonic() + self._backoff

    def _mark_down(self, exc: GitauditError) -> None:
        """Log the failure (once per backoff period at most) and report the store down."""
        first = self.store_up.is_set() or self._backoff == 0.0
        self.log.error(
            "store_down" if first else "store_still_down",
            error=exc.message,
            backlog=self.backlog,
            retry_in=min(BACKOFF_MAX, max(BACKOFF_START, self._backoff * 2)),
        )
        self.store_up.clear()
        self.metrics.store_up.set(0)

    def _mark_up(self) -> None:
        if not self.store_up.is_set():
            if self._backoff:
                self.log.info("store_up", backlog=self.backlog)
            self.store_up.set()
            self.metrics.store_up.set(1)
        self._backoff = 0.0

    async def close(self) -> None:
        """Close the store and let the store thread end."""
        await self.close_store()
        self.store_worker.stop()

    async def close_store(self) -> None:
        """Close the store (its process ends); :meth:`_commit` opens it again when due."""
        if self.store is not None:
            store, self.store = self.store, None
            try:
                await asyncio.wait_for(self.store_worker.run(store.close), timeout=1.0)
            except TimeoutError:
                self.log.warning("store_close_timeout")


def committed(chunk: list[dict[str, Any]], result: AppendResult) -> list[dict[str, Any]]:
    """The records an append added, in order, with the integrity fields the store gave each
    (``chain_id``, ``seq``, ``prev_hash``, ``hash``; records already stored, or repeated in
    the chunk, are left out; a record the store replaced is given as its stand-in)."""
    out: list[dict[str, Any]] = []
    for index, original in enumerate(chunk):
        record = result.replaced.get(index, original)  # an audit.rejected stand-in
        position = result.positions.get(str(record["id"]))
        if position is not None and (not out or out[-1]["seq"] < position[0]):
            seq, prev_hash, digest = position
            out.append({**record, "chain_id": result.chain_id, "seq": seq,
                        "prev_hash": prev_hash, "hash": digest})
    return out

