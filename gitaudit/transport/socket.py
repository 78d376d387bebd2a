"""The thin synchronous client of the daemon's event socket (wrapper, hooks, CLI).

:func:`send` connects to ``events.sock`` in the first runtime directory that
has one (``paths.client_runtime_dirs``), writes one ``{"type":"events",...}``
line and waits for the answer line, all within ``settings.socket_timeout``
seconds. It returns the events the daemon did not take (``rejected``: the
caller spools them); it raises :class:`Unavailable` when no daemon answered in
time, and the caller spools everything.

On the hot path, so: ``_socket`` rather than :mod:`socket` (which imports
``enum``, milliseconds), the C JSON encoder of :mod:`gitaudit.transport.spool`,
the C JSON scanner of :mod:`gitaudit.capture.trace2`, no ``typing`` at runtime.
"""

from __future__ import annotations

import _socket
import time

from gitaudit import paths
from gitaudit.transport.spool import encode_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from gitaudit.config import Settings

READ_CHUNK = 65536
MAX_ANSWER_BYTES = 16 * 1024 * 1024


class Unavailable(OSError):  # noqa: N818 - reads as "daemon unavailable" at the raise site
    """No daemon answered (no socket, refused, timed out, or a garbled answer)."""


def socket_path(settings: Settings) -> str | None:
    """The first existing ``events.sock`` a client should use, or None."""
    return paths.events_socket(settings.runtime_dir)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise Unavailable("the gitaudit daemon did not answer in time")
    return left


def _exchange(path: str, request: bytes, timeout: float) -> bytes:
    """Send one request line, return the answer line (without the newline)."""
    deadline = time.monotonic() + timeout
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(_remaining(deadline))
        sock.connect(path)
        sock.settimeout(_remaining(deadline))
        sock.sendall(request)
        answer = b""
        while not answer.endswith(b"\n"):
            sock.settimeout(_remaining(deadline))
            chunk = sock.recv(READ_CHUNK)
            if not chunk or len(answer) > MAX_ANSWER_BYTES:
                raise Unavailable("the gitaudit daemon closed the connection without answering")
            answer += chunk
        return answer[: answer.index(b"\n")]
    except TimeoutError as exc:
        raise Unavailable("the gitaudit daemon did not answer in time") from exc
    finally:
        sock.close()


def _statuses(answer: bytes, count: int) -> list[str | None]:
    from gitaudit.capture.trace2 import json_decoder

    try:
        message = json_decoder()(answer)
    except ValueError as exc:
        raise Unavailable(f"garbled answer from the gitaudit daemon: {exc}") from exc
    acks = message.get("acks") if isinstance(message, dict) else None
    if message.get("type") != "ack" or not isinstance(acks, list) or len(acks) != count:
        raise Unavailable(f"unexpected answer from the gitaudit daemon: {answer[:200]!r}")
    return [ack.get("status") if isinstance(ack, dict) else None for ack in acks]


def _requests(
    events: Sequence[dict[str, Any]], limit: int
) -> tuple[list[tuple[bytes, list[int]]], list[int]]:
    """Request lines of at most ``limit`` bytes (newline excluded) holding ``events``, with the
    indexes each carries; and the indexes of events too big for any request (spooled)."""
    requests: list[tuple[bytes, list[int]]] = []
    alone: list[int] = []
    parts: list[bytes] = []
    carried: list[int] = []
    size = len(_HEAD) + len(_TAIL)
    for index, event in enumerate(events):
        line = encode_line(event)[:-1]
        if len(_HEAD) + len(line) + len(_TAIL) > limit:
            alone.append(index)
            continue
        if parts and size + 1 + len(line) > limit:
            requests.append((_HEAD + b",".join(parts) + _TAIL + b"\n", carried))
            parts, carried, size = [], [], len(_HEAD) + len(_TAIL)
        size += len(line) + (1 if parts else 0)
        parts.append(line)
        carried.append(index)
    if parts:
        requests.append((_HEAD + b",".join(parts) + _TAIL + b"\n", carried))
    return requests, alone


def send(
    events: Sequence[dict[str, Any]], settings: Settings, path: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Hand ``events`` to the daemon; returns (socket path, events it did not take).

    ``path`` is the socket (default: :func:`socket_path`). Events go in request
    lines of at most ``max_message_bytes`` (an event bigger than that on its own
    is not sent: it is returned, so the caller spools it). Raises
    :class:`Unavailable` (an ``OSError``) when no daemon answered the first
    request within ``settings.socket_timeout``: the caller spools; a later
    request that fails leaves its events (and the rest) to the caller too.
    """
    path = path or socket_path(settings)
    if path is None:
        raise Unavailable("no gitaudit daemon socket")
    requests, left_over = _requests(events, settings.max_message_bytes)
    left = set(left_over)
    for number, (request, carried) in enumerate(requests):
        try:
            statuses = _statuses(_exchange(path, request, settings.socket_timeout), len(carried))
        except OSError:  # Unavailable, or refused: the first failure is the caller's to spool
            if number == 0:
                raise
            for later in requests[number:]:
                left.update(later[1])
            break
        left.update(
            index for index, status in zip(carried, statuses, strict=True) if status not in _TAKEN
        )
    return path, [event for index, event in enumerate(events) if index in left]


_HEAD = b'{"type":"events","events":['
_TAIL = b"]}"
_TAKEN = frozenset({"accepted", "filtered", "sampled", "duplicate"})
