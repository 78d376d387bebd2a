"""How many spool segments wait to be ingested: a reader asks before it reads.

Kept apart from :mod:`gitaudit.store.ingest`, which validates records (pydantic, the
sanitizer): a reader with nothing waiting in the spool never imports it.
"""

from __future__ import annotations

import contextlib

from gitaudit.config import Settings
from gitaudit.transport import spool, spool_dirs

__all__ = ["pending_segments"]


def pending_segments(settings: Settings) -> int:
    """Spool segments waiting to be ingested (the active one counts when it holds data)."""
    count = 0
    for spool_dir in spool_dirs(settings):
        active = spool_dir / spool.ACTIVE_NAME
        with contextlib.suppress(OSError):
            count += active.stat().st_size > 0
        with contextlib.suppress(OSError):
            count += len(spool.sealed_segments(spool_dir))
    return count
