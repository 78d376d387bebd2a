"""Interpreter and kernel tuning shared by the daemon's processes and listeners.

- :func:`tune_gc`: garbage-collector thresholds (the core and the store writer).
- :data:`LISTEN_BACKLOG`: the backlog every listening socket is given. git
  connects to ``trace2.sock`` with a blocking ``connect()``: while the daemon
  does not accept (stopped, hung, restarting), each git process waits for a
  free slot in the listen queue, so the queue must be as long as the kernel
  allows. ``listen()`` caps the value at ``net.core.somaxconn``, so asking for
  the largest ``int`` gets exactly that bound, even where ``/proc/sys`` is
  hidden (``ProcSubset=pid``). asyncio's ``start_unix_server`` and
  ``socketserver`` call ``listen()`` again with their own defaults (100 and 5):
  every listener passes this value to them too.
"""

from __future__ import annotations

import gc
from typing import Final

LISTEN_BACKLOG: Final = 2**31 - 1  # listen() caps it at net.core.somaxconn
SOMAXCONN_FILE: Final = "/proc/sys/net/core/somaxconn"

# Young-generation threshold raised from 700: per-event garbage is acyclic and freed at once
# by reference counting, so frequent collections only rescan live objects.
GC_THRESHOLDS: Final = (50_000, 20, 100)


def tune_gc() -> None:
    """Collect less often, and never rescan what startup built.

    Each event allocates many short-lived dicts while the process keeps large
    long-lived tables (seen ids, the deduper, the sanitizer's cache, SQLAlchemy's
    metadata); with Python's default thresholds the collector's rescans cost
    about as much as the intake's own work. Measured with
    ``bench/bench_daemon_ingest.py`` (README, "Benchmarks").
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def somaxconn() -> int | None:
    """The kernel's cap on a listen queue (``net.core.somaxconn``), None if unreadable.

    For logs and diagnostics only: :data:`LISTEN_BACKLOG` gets this bound
    without reading it.
    """
    try:
        with open(SOMAXCONN_FILE, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None
