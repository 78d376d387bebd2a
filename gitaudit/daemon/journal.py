"""The daemon's journal: spool-format segments that hold events until the store has them.

An acknowledged event is in the journal (written and fsynced) before its ack
leaves; it leaves the journal only when the batch writer committed it.

- :class:`Journal` owns one directory (``journal_dir``), locked for the
  daemon's lifetime so two daemons never share it. Its file operations block,
  so the daemon calls them from one :class:`Worker` thread; that thread also
  keeps the list of records in the active segment, so sealing hands exactly
  the records that file holds to the writer (:class:`SealedSegment`).
- :class:`GroupCommitter` makes concurrent callers share one write + fsync:
  submissions that arrive while a write is in flight go out together in the
  next one; an idle committer waits a few hundred microseconds for company.

No single record stops the journal: a record that cannot be written as a line
(NaN, a value JSON has no spelling for) is journaled as its ``audit.rejected``
stand-in, and a line that cannot be read back on replay (cut off, not JSON, not
a valid event) is replaced by one too (:mod:`gitaudit.quarantine`); the raw
line is also kept under ``rejected/``.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import ValidationError

from gitaudit.errors import SpoolError
from gitaudit.events import describe_invalid, validate_event
from gitaudit.quarantine import Quarantine
from gitaudit.transport import spool

T = TypeVar("T")

GROUP_COMMIT_WINDOW: Final = 0.0003
# spool.append never seals the journal by size: the writer seals it before every flush
# attempt, so a segment holds what one flush interval brought, and seal() knows its records.
_NEVER_SEAL: Final = 1 << 62


class Worker:
    """One daemon thread running blocking calls in order; ``await worker.run(fn, ...)``.

    Daemon threads, not an executor: a store write stuck past the shutdown
    timeout must not keep the process alive (its events stay in the journal).
    ``busy_since`` (``time.monotonic()`` when the running call started, None
    while idle) lets the watchdog see a call that never returns.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.busy_since: float | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the thread; return its result or raise its exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, args, future, loop))
        return await future

    def stuck_for(self) -> float:
        """Seconds the running call has taken so far (0.0 while idle)."""
        started = self.busy_since
        return 0.0 if started is None else time.monotonic() - started

    def stalled(self, limit: float) -> str | None:
        """A watchdog check: what is wrong if the running call took longer than ``limit`` s."""
        took = self.stuck_for()
        return f"{self.name}: one call running for {took:.0f} s" if took > limit else None

    def stop(self) -> None:
        """Let the thread end after the calls already queued."""
        self._queue.put(None)

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            fn, args, future, loop = item
            self.busy_since = time.monotonic()
            try:
                outcome: tuple[bool, Any] = (True, fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                outcome = (False, exc)
            finally:
                self.busy_since = None
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:
                return  # the event loop is closed: the daemon is exiting


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():
        return  # the caller was cancelled (shutdown timeout)
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


@dataclass
class SealedSegment:
    """A sealed journal (or replayed) segment and the records it holds.

    ``records`` is None when they were not kept in memory (replay, or a large
    backlog): the writer reads the file. ``done`` counts records committed.
    """

    path: Path
    records: list[dict[str, Any]] | None
    count: int
    done: int = 0
    bad: list[spool.SpoolLine] = field(default_factory=list)


class JournalLockedError(SpoolError):
    """Another daemon holds this journal directory."""


class Journal:
    """The journal directory. Every method but :meth:`open` runs on the journal worker."""

    def __init__(self, directory: Path, quarantine: Quarantine | None = None) -> None:
        self.directory = directory
        self.quarantine = quarantine or Quarantine("daemon")
        self._lock_fd = -1
        self._active: list[dict[str, Any]] = []
        self.quarantined = 0  # records replaced by their audit.rejected stand-in (a counter)

    def open(self) -> list[SealedSegment]:
        """Lock the directory and seal what a previous run left; returns segments to replay."""
        spool.ensure_dir(self.directory)
        fd = os.open(self.directory / spool.LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalLockedError(
                f"journal {self.directory} is in use by another gitaudit daemon",
                "stop the other daemon, or give this one its own GITAUDIT_JOURNAL_DIR",
            ) from None
        self._lock_fd = fd
        spool.seal_active(self.directory)
        return [SealedSegment(path, None, -1) for path in spool.sealed_segments(self.directory)]

    def close(self) -> None:
        """Release the directory lock."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    @property
    def active_count(self) -> int:
        """Records in the active segment (read from any thread; a hint only)."""
        return len(self._active)

    def append(self, records: list[dict[str, Any]]) -> None:
        """Durably append records to the active segment (one write, one fsync).

        A record that cannot be encoded is journaled as its ``audit.rejected`` stand-in.
        """
        lines: list[bytes] = []
        written: list[dict[str, Any]] = []
        for original in records:
            record = original
            try:
                line = spool.encode_line(record)
            except (ValueError, TypeError, OverflowError, RecursionError) as exc:
                record = self.quarantine.event(
                    original, stage="journal", reason=f"cannot be written to the journal: {exc}"
                )
                line = spool.encode_line(record)
                self.quarantined += 1
            lines.append(line)
            written.append(record)
        spool.append_lines(self.directory, b"".join(lines), _NEVER_SEAL)
        self._active.extend(written)

    def seal(self) -> SealedSegment | None:
        """Seal the active segment; returns it with exactly the records it holds."""
        records, self._active = self._active, []
        path = spool.seal_active(self.directory)
        if path is None:
            return None
        return SealedSegment(path, records, len(records))

    def load(self, segment: SealedSegment) -> list[dict[str, Any]]:
        """Read a segment's records from disk (validated again).

        A bad line goes to ``bad`` and its ``audit.rejected`` stand-in takes its place.
        """
        records: list[dict[str, Any]] = []
        segment.bad = []
        for line in spool.read_segment(segment.path):
            if line.event is not None:
                try:
                    records.append(validate_event(line.event).to_record())
                    continue
                except ValidationError as exc:
                    line.error = describe_invalid(exc)
            segment.bad.append(line)
            records.append(self.quarantine.line(line, "journal"))
            self.quarantined += 1
        segment.count = len(records)
        return records

    def remove(self, segment: SealedSegment) -> None:
        """Delete a fully committed segment (its unparseable lines kept under rejected/)."""
        if segment.bad:
            spool.quarantine(self.directory, segment.bad)
        spool.remove_segment(segment.path)

    def backlog_files(self) -> int:
        """Sealed segments on disk (for status logs)."""
        return len(spool.sealed_segments(self.directory))


class GroupCommitter:
    """Shares one journal write + fsync among every submission that arrives meanwhile."""

    def __init__(
        self,
        journal: Journal,
        worker: Worker,
        on_durable: Callable[[int], None],
        window: float = GROUP_COMMIT_WINDOW,
    ) -> None:
        self.journal = journal
        self.worker = worker
        self.on_durable = on_durable
        self.window = window
        self._pending: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._closing = False

    async def submit(self, records: list[dict[str, Any]]) -> None:
        """Return once ``records`` are durable in the journal; raise SpoolError/OSError if not."""
        if self._closing:
            raise SpoolError("the daemon is shutting down", "retry, or let the client spool")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((records, future))
        self._wake.set()
        await future

    def close(self) -> None:
        """Refuse new submissions; :meth:`run` returns once the pending ones are written."""
        self._closing = True
        self._wake.set()

    async def run(self) -> None:
        """Write pending submissions, grouped, until closed and drained."""
        while True:
            await self._wake.wait()
            if not self._pending:
                self._wake.clear()
                if self._closing:
                    return
                continue
            await asyncio.sleep(self.window)  # idle until now: let concurrent clients join
            while self._pending:
                await self._write_group()
            self._wake.clear()

    async def _write_group(self) -> None:
        group, self._pending = self._pending, []
        records = [record for batch, _ in group for record in batch]
        try:
            await self.worker.run(self.journal.append, records)
        except Exception as exc:  # noqa: BLE001 - told to the submitters; the committer goes on
            failure = exc if isinstance(exc, SpoolError | OSError) else SpoolError(
                f"journal write failed: {type(exc).__name__}: {exc}"
            )
            for _, future in group:
                if not future.done():
                    future.set_exception(failure)
            return
        for _, future in group:
            if not future.done():
                future.set_result(None)
        self.on_durable(len(records))
