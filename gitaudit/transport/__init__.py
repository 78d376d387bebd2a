"""Client-side transport: how a captured, sanitized event leaves the process.

Today the one transport is the spool (the daemon socket joins it later, tried
first). If the configured spool directory cannot be written, the event goes to
an emergency spool under ``$TMPDIR/gitaudit-<uid>/spool`` that ingest also
drains, so a read-only or missing spool directory loses nothing.

Stdlib only: the git wrapper calls :func:`deliver` on every git command.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitaudit.config import Settings
from gitaudit.errors import SpoolError
from gitaudit.transport import spool


def fallback_spool_dir() -> Path:
    """Emergency spool used when the configured one cannot be written."""
    return Path(os.environ.get("TMPDIR") or "/tmp") / f"gitaudit-{os.getuid()}" / "spool"  # noqa: S108


def spool_dirs(settings: Settings) -> list[Path]:
    """Every spool directory ingest drains: the configured one, then the emergency one."""
    primary = settings.effective_spool_dir
    fallback = fallback_spool_dir()
    return [primary] if primary == fallback else [primary, fallback]


@dataclass(frozen=True)
class Delivery:
    """Where the events went, and a warning for stderr when it was not the usual place."""

    path: Path
    warning: str | None = None


def _owned_private(folder: Path) -> bool:
    info = folder.stat()
    return info.st_uid == os.getuid() and (info.st_mode & 0o077) == 0


def deliver(events: Sequence[dict[str, Any]], settings: Settings) -> Delivery:
    """Durably hand sanitized events over; raises :class:`SpoolError` only if nothing worked."""
    primary = settings.effective_spool_dir
    try:
        spool.append(primary, events, settings.spool_segment_bytes)
    except SpoolError as first:
        fallback = fallback_spool_dir()
        try:
            fallback.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            spool.ensure_dir(fallback)
            if not _owned_private(fallback.parent) or not _owned_private(fallback):
                raise SpoolError(f"emergency spool {fallback} is not private to this user")
            spool.append(fallback, events, settings.spool_segment_bytes)
        except (SpoolError, OSError) as second:
            raise SpoolError(
                f"{first.message}; emergency spool failed too: {second}",
                first.hint,
            ) from second
        return Delivery(fallback, f"{first.message}; event kept in emergency spool {fallback}")
    return Delivery(primary)
