"""Interpreter tuning shared by the daemon's processes (the core and the store writer)."""

from __future__ import annotations

import gc
from typing import Final

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
