"""Delivery of ``claude.request`` events off the caller's thread, and reporting once.

One daemon thread per process hands queued (already sanitized) events to
:func:`gitaudit.transport.deliver` (daemon socket, else spool, else the
emergency spool), batching what piled up, so an fsync or a busy daemon never
delays a Claude call. The queue is drained at interpreter exit (``atexit``,
which runs before daemon threads stop) and by :func:`flush`. A process killed
outright can lose what is still queued; a fork starts its own thread.

Problems are reported once per kind and process on stderr (``gitaudit: ...``):
a library inside someone else's tool must not flood its output.
"""

from __future__ import annotations

import atexit
import os
import queue
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Final

from gitaudit.capture.hookrun import one_line

if TYPE_CHECKING:
    from gitaudit.config import Settings

_FLUSH_AT_EXIT: Final = 10.0  # seconds the exit handler waits for queued events


# --- reporting, once per process --------------------------------------------------------

_reported: set[str] = set()
_report_lock = threading.Lock()


def report_once(kind: str, text: str) -> None:
    """One ``gitaudit: ...`` line on stderr per kind of problem and process."""
    with _report_lock:
        if kind in _reported:
            return
        _reported.add(kind)
    try:
        sys.stderr.write(f"gitaudit: {' '.join(text.split())}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr closed: the caller's call must still go on


# --- background delivery ------------------------------------------------------------------


class _Deliverer:
    """One daemon thread per process handing queued events to transport, in order."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[dict[str, Any], Settings]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def put(self, event: dict[str, Any], settings: Settings) -> None:
        if self._thread is None or self._pid != os.getpid():
            self._start()
        self._queue.put((event, settings))

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._pid == os.getpid():
                return
            if self._pid != os.getpid():  # a forked child: the parent's thread is not here
                self._queue = queue.Queue()
                self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, name="gitaudit-claude-delivery", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:  # what piled up meanwhile goes in one delivery per settings
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._deliver(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    @staticmethod
    def _deliver(batch: list[tuple[dict[str, Any], Settings]]) -> None:
        from gitaudit.transport import deliver

        groups: dict[int, tuple[Settings, list[dict[str, Any]]]] = {}
        for event, settings in batch:
            groups.setdefault(id(settings), (settings, []))[1].append(event)
        for settings, events in groups.values():
            try:
                delivery = deliver(events, settings)
            except Exception as exc:  # noqa: BLE001 - nothing may escape the delivery thread
                report_once(
                    "delivery",
                    f"{len(events)} claude.request event(s) could not be recorded: {one_line(exc)}",
                )
                continue
            if delivery.warning:
                report_once("delivery-warning", delivery.warning)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event was handed over; False if ``timeout`` ran out."""
        if self._thread is None or self._pid != os.getpid():
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True


_DELIVERER = _Deliverer()


def enqueue(event: dict[str, Any], settings: Settings) -> None:
    """Queue a sanitized event for delivery (daemon socket, else spool) with ``settings``."""
    _DELIVERER.put(event, settings)


def flush(timeout: float | None = None) -> bool:
    """Block until every recorded event was delivered (socket or spool); False on timeout."""
    return _DELIVERER.flush(timeout)


def _flush_at_exit() -> None:
    if not _DELIVERER.flush(_FLUSH_AT_EXIT):
        report_once("exit", "claude.request events still queued at exit were not recorded")


atexit.register(_flush_at_exit)
