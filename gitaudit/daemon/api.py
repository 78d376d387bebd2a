"""Contracts between the daemon's parts.

The server owns the event socket, the journal and the batch writer and exposes
itself to the other parts as an :class:`Intake` (where events come in) and uses
a :class:`Publisher` (where committed events go out: live subscribers, sinks).
"""

from __future__ import annotations

import functools
import pwd
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

ACCEPTED = "accepted"  # durable in the journal
FILTERED = "filtered"  # dropped by policy (still acknowledged: the client need not retry)
SAMPLED = "sampled"  # dropped by sampling (acknowledged)
DUPLICATE = "duplicate"  # already seen (same event id, or the same git command from another path)
REJECTED = "rejected"  # invalid, or refused (store down with on_store_failure=reject)


@functools.lru_cache(maxsize=1024)
def login_name(uid: int) -> str | None:
    """Login name of ``uid`` (cached: NSS lookups cost ~40 µs and uids repeat)."""
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return None
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass(frozen=True)
class Peer:
    """Who is on the other end of a Unix socket, as the kernel says (SO_PEERCRED)."""

    pid: int
    uid: int
    gid: int
    # (pid, start time) of the process and its ancestors, read from /proc while it still
    # ran (trace2: at connect; gitaudit.daemon.agents); None when nobody looked
    lineage: tuple[tuple[int, int], ...] | None = None

    @property
    def user(self) -> str | None:
        """Login name of ``uid``, if the system knows it."""
        return login_name(self.uid)

    @classmethod
    def of(cls, sock: socket.socket) -> Peer:
        """Read the peer credentials of a connected Unix socket."""
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
        return cls(pid=pid, uid=uid, gid=gid)


@dataclass(frozen=True)
class Ack:
    """The daemon's answer for one submitted event."""

    id: str | None
    status: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the client may forget the event (it will not be lost)."""
        return self.status != REJECTED


class Intake(Protocol):
    """Where every event enters the daemon (socket clients, trace2, spool watcher).

    ``accept`` applies policy, the sanitizer and validation, stamps verified
    actor fields from ``peer``, de-duplicates, appends accepted events to the
    journal (fsync, shared by concurrent callers) and returns one
    :class:`Ack` per event, in order, once they are durable. ``valid_text``
    promises that every string is valid Unicode (no lone surrogates), which
    spares the intake that check.
    """

    async def accept(
        self,
        events: Sequence[dict[str, Any]],
        *,
        peer: Peer | None,
        source: str,
        valid_text: bool = False,
    ) -> list[Ack]: ...


class Publisher(Protocol):
    """Receives events right after the batch writer committed them to the store.

    ``publish`` must never block or raise: slow consumers drop and count.
    """

    def publish(self, events: Sequence[dict[str, Any]]) -> None: ...
