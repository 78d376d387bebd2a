"""Client-side transport: how a captured, sanitized event leaves the process.

The daemon's event socket is tried first (:mod:`gitaudit.transport.socket`:
connect and acknowledgement within ``socket_timeout``); events it does not
take, or all of them when no daemon answers, go to the spool. If the
configured spool directory cannot be written, the event goes to an emergency
spool under ``$TMPDIR/gitaudit-<uid>/spool`` that ingest also drains, so a
read-only or missing spool directory loses nothing.

``os`` only on the delivery path: the git wrapper calls :func:`deliver` on every
git command.
"""

from __future__ import annotations

import os

from gitaudit import paths
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
    """Where the events went, and a warning for stderr when it was not the usual place.

    ``transport`` is ``"socket"`` (``path`` is the daemon's socket: every event
    was taken) or ``"spool"`` (``path`` is the spool directory that holds them).
    """

    __slots__ = ("path", "transport", "warning")

    def __init__(self, path: str, warning: str | None = None, transport: str = "spool") -> None:
        self.path = path
        self.warning = warning
        self.transport = transport


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
    """Durably hand sanitized events over; raises :class:`SpoolError` only if nothing worked.

    The daemon first; what it did not take (or everything, when it did not
    answer within ``socket_timeout``) goes to the spool.
    """
    found = paths.events_socket(settings.runtime_dir)
    if found is None:  # no daemon here: not even the socket client is imported (~0.6 ms)
        return _spool(events, settings)
    from gitaudit.transport import socket as daemon_socket

    try:
        path, events = daemon_socket.send(events, settings, found)
    except OSError:
        pass  # no daemon, or it did not answer in time: the spool keeps the events
    else:
        if not events:
            return Delivery(path, transport="socket")
    return _spool(events, settings)


def _spool(events: Sequence[dict[str, Any]], settings: Settings) -> Delivery:
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
