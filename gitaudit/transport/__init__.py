"""Client-side transport: how a captured, sanitized event leaves the process.

Today the one transport is the spool (the daemon socket joins it later, tried
first). If the configured spool directory cannot be written, the event goes to
an emergency spool under ``$TMPDIR/gitaudit-<uid>/spool`` that ingest also
drains, so a read-only or missing spool directory loses nothing.

``os`` only on the delivery path: the git wrapper calls :func:`deliver` on every
git command.
"""

from __future__ import annotations

import os

from gitaudit.errors import SpoolError
from gitaudit.transport import spool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path
    from typing import Any

    from gitaudit.config import Settings


def fallback_spool_dir() -> str:
    """Emergency spool used when the configured one cannot be written."""
    base = os.environ.get("TMPDIR") or "/tmp"  # noqa: S108 - private 0700 dir, ownership checked
    return os.path.join(base, f"gitaudit-{os.getuid()}", "spool")


def spool_dirs(settings: Settings) -> list[Path]:
    """Every spool directory ingest drains: the configured one, then the emergency one."""
    from pathlib import Path

    primary = Path(settings.effective_spool_dir)
    fallback = Path(fallback_spool_dir())
    return [primary] if primary == fallback else [primary, fallback]


class Delivery:
    """Where the events went, and a warning for stderr when it was not the usual place."""

    __slots__ = ("path", "warning")

    def __init__(self, path: str, warning: str | None = None) -> None:
        self.path = path
        self.warning = warning


def _owned_private(folder: str) -> bool:
    info = os.stat(folder)
    return info.st_uid == os.getuid() and (info.st_mode & 0o077) == 0


def _append_fallback(events: Sequence[dict[str, Any]], settings: Settings) -> str:
    fallback = fallback_spool_dir()
    os.makedirs(os.path.dirname(fallback), mode=0o700, exist_ok=True)
    spool.ensure_dir(fallback)
    if not _owned_private(os.path.dirname(fallback)) or not _owned_private(fallback):
        raise SpoolError(f"emergency spool {fallback} is not private to this user")
    spool.append(fallback, events, settings.spool_segment_bytes)
    return fallback


def deliver(events: Sequence[dict[str, Any]], settings: Settings) -> Delivery:
    """Durably hand sanitized events over; raises :class:`SpoolError` only if nothing worked."""
    primary = settings.effective_spool_dir
    try:
        spool.append(primary, events, settings.spool_segment_bytes)
    except SpoolError as first:
        try:
            fallback = _append_fallback(events, settings)
        except (SpoolError, OSError) as second:
            raise SpoolError(
                f"{first.message}; emergency spool failed too: {second}",
                first.hint,
            ) from second
        return Delivery(fallback, f"{first.message}; event kept in emergency spool {fallback}")
    return Delivery(primary)
