"""A live trace2 receiver for tests: a real Unix socket served by :class:`Trace2Receiver`.

The receiver runs on its own asyncio loop in a thread; the test runs real git
(with ``GIT_TRACE2_EVENT=af_unix:stream:<socket>``) in the main thread and
waits for the records the collecting intake received. The intake is our own
protocol (``gitaudit.daemon.api.Intake``), so a collecting one is a real
implementation, not a mock of anything third-party.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gitaudit.config import Settings
from gitaudit.daemon.api import ACCEPTED, Ack, Peer
from gitaudit.daemon.metrics import Metrics
from gitaudit.daemon.trace2_receiver import Trace2Receiver


class CollectingIntake:
    """Accepts everything and keeps it; ``stall`` makes ``accept`` wait until released."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.peers: list[Peer | None] = []
        self.calls = 0
        self.stall: asyncio.Event | None = None
        self._lock = threading.Lock()

    async def accept(
        self, events: Sequence[dict[str, Any]], *, peer: Peer | None, source: str
    ) -> list[Ack]:
        assert source == "trace2"
        self.calls += 1
        if self.stall is not None:
            await self.stall.wait()
        with self._lock:
            self.events.extend(events)
            self.peers.extend([peer] * len(events))
        return [Ack(event.get("id"), ACCEPTED) for event in events]

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)


class LiveReceiver:
    """Context manager: a receiver listening on ``<short tmp dir>/trace2.sock``."""

    def __init__(self, settings: Settings | None = None, grace: float = 0.2,
                 max_wait: float = 10.0) -> None:
        # a short directory: Unix socket paths are limited to ~108 bytes
        self.folder = Path(tempfile.mkdtemp(prefix="ga-t2-", dir="/tmp"))
        self.socket = self.folder / "trace2.sock"
        self.intake = CollectingIntake()
        self.metrics = Metrics()
        self.settings = settings or Settings()
        self.grace = grace
        self.max_wait = max_wait
        self.loop = asyncio.new_event_loop()
        self.receiver: Trace2Receiver | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def target(self) -> str:
        """The value for ``GIT_TRACE2_EVENT``."""
        return f"af_unix:stream:{self.socket}"

    def __enter__(self) -> LiveReceiver:
        self._thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the receiver's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        self.receiver = Trace2Receiver(self.intake, self.settings, self.metrics,
                                       grace=self.grace, max_wait=self.max_wait)
        self._server = await asyncio.start_unix_server(self.receiver.handle, str(self.socket))

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self.intake.stall is not None:
            self.intake.stall.set()
        if self.receiver is not None:
            await self.receiver.shutdown(5.0)

    def stall_intake(self) -> None:
        """Make the intake's ``accept`` block until :meth:`release_intake`."""
        async def make() -> None:
            self.intake.stall = asyncio.Event()
        self.call(make())

    def release_intake(self) -> None:
        async def release() -> None:
            if self.intake.stall is not None:
                self.intake.stall.set()
        self.call(release())

    def stats(self) -> dict[str, int]:
        async def read() -> dict[str, int]:
            assert self.receiver is not None
            return self.receiver.stats()
        result: dict[str, int] = self.call(read())
        return result

    def wait_events(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The records received once there are at least ``count`` (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.intake.snapshot()
            if len(events) >= count:
                return events
            time.sleep(0.02)
        raise AssertionError(f"expected {count} trace2 records, got {self.intake.snapshot()}")

    def settle(self, seconds: float | None = None) -> list[dict[str, Any]]:
        """Wait past the grace period, then return everything received."""
        time.sleep(seconds if seconds is not None else self.grace * 4 + 0.3)
        return self.intake.snapshot()
