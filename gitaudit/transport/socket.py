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


def send(
    events: Sequence[dict[str, Any]], settings: Settings, path: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Hand ``events`` to the daemon; returns (socket path, events it did not take).

    ``path`` is the socket (default: :func:`socket_path`). Raises
    :class:`Unavailable` (an ``OSError``) when no daemon answered within
    ``settings.socket_timeout``: the caller spools.
    """
    path = path or socket_path(settings)
    if path is None:
        raise Unavailable("no gitaudit daemon socket")
    request = (
        b'{"type":"events","events":['
        + b",".join(encode_line(event)[:-1] for event in events)
        + b"]}\n"
    )
    statuses = _statuses(_exchange(path, request, settings.socket_timeout), len(events))
    left = [event for event, status in zip(events, statuses, strict=True) if status not in _TAKEN]
    return path, left


_TAKEN = frozenset({"accepted", "filtered", "sampled", "duplicate"})
