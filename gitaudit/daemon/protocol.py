"""The event socket's wire format: NDJSON framing and parsing (pure: no I/O).

Framing: one JSON object per line, lines end with ``\\n``. A line longer than
``max_message_bytes`` (newline excluded) is answered once with an error and
discarded up to the next newline, so a connection never buffers more than
``max_message_bytes`` plus one read. Blank lines are ignored.

Requests::

    {"type": "event",  "event":  {...}}
    {"type": "events", "events": [{...}, ...]}

Answers, one line per request line, in order::

    {"type": "ack", "acks": [{"id": "...", "status": "accepted", "error": null}, ...]}
    {"type": "error", "error": "not JSON: ...", "line": 3}

``status`` is one of ``accepted`` (durable in the journal), ``filtered``,
``sampled``, ``duplicate`` (all three: nothing to retry) or ``rejected``
(invalid, or refused: the client keeps the event, e.g. in its spool).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from gitaudit.daemon.api import Ack

MAX_DEPTH: Final = 64
READ_CHUNK: Final = 64 * 1024


@dataclass(frozen=True)
class Overlong:
    """Marks a line that exceeded the size limit (its bytes are discarded)."""

    size_limit: int


Frame = bytes | Overlong


class Framer:
    """Splits a byte stream into lines with bounded memory.

    ``feed`` returns the complete lines (without the newline) and one
    :class:`Overlong` marker per line that grew past ``max_bytes``; ``pending``
    tells whether a partial line is buffered (a disconnect now truncates it).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._discarding = False

    @property
    def pending(self) -> bool:
        """Whether part of a line is buffered (or being discarded)."""
        return bool(self._buffer) or self._discarding

    @property
    def buffered(self) -> int:
        """Bytes held for the current partial line."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Consume ``data``; return the frames it completed, in order."""
        frames: list[Frame] = []
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            if end < 0:
                self._partial(data[start:], frames)
                break
            self._complete(data[start:end], frames)
            start = end + 1
        return frames

    def _partial(self, chunk: bytes, frames: list[Frame]) -> None:
        if self._discarding:
            return
        if len(self._buffer) + len(chunk) > self.max_bytes:
            self._buffer.clear()
            self._discarding = True
            frames.append(Overlong(self.max_bytes))
            return
        self._buffer += chunk

    def _complete(self, chunk: bytes, frames: list[Frame]) -> None:
        if self._discarding:
            self._discarding = False
            return
        if len(self._buffer) + len(chunk) > self.max_bytes:
            self._buffer.clear()
            frames.append(Overlong(self.max_bytes))
            return
        line = bytes(self._buffer) + chunk if self._buffer else bytes(chunk)
        self._buffer.clear()
        if line.strip():
            frames.append(line)


class ProtocolError(ValueError):
    """A request line that cannot be understood; ``reason`` is a short metric label."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether containers nest deeper than ``limit`` (level by level: no recursion).

    ``value`` comes from :func:`json.loads`, so its containers are exactly dict and list.
    """
    level: list[Any] = [value] if type(value) in _CONTAINERS else []
    depth = 1
    while level:
        if depth > limit:
            return True
        below: list[Any] = []
        for item in level:
            children = item.values() if type(item) is dict else item
            below += [child for child in children if type(child) in _CONTAINERS]
        level = below
        depth += 1
    return False


_CONTAINERS: Final = (dict, list)


def _decode(line: bytes) -> Any:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"invalid UTF-8 at byte {exc.start}", "utf8") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise ProtocolError(f"JSON nested deeper than {MAX_DEPTH} levels", "depth") from None
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}", "json") from None


def _events_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    kind = message.get("type")
    if kind == "event":
        event = message.get("event")
        if not isinstance(event, dict):
            raise ProtocolError("'event' must be a JSON object", "type")
        return [event]
    if kind == "events":
        events = message.get("events")
        if not isinstance(events, list):
            raise ProtocolError("'events' must be a JSON array of objects", "type")
        if not all(isinstance(event, dict) for event in events):
            raise ProtocolError("every item of 'events' must be a JSON object", "type")
        return events
    if not isinstance(kind, str):
        raise ProtocolError('\'type\' must be the string "event" or "events"', "type")
    raise ProtocolError(f"unknown message type {kind[:40]!r}: expected event or events", "type")


def surrogate_free(line: bytes) -> bool:
    """Whether the strings a valid request ``line`` decodes to are all valid Unicode.

    UTF-8 input cannot hold surrogates; only a JSON escape such as ``\\ud800`` makes one.
    """
    return b"\\ud" not in line and b"\\uD" not in line


def parse_request(line: bytes) -> list[dict[str, Any]]:
    """The events a request line carries; raises :class:`ProtocolError` when malformed."""
    message = _decode(line)
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object", "type")
    if _depth_exceeds(message, MAX_DEPTH):
        raise ProtocolError(f"JSON nested deeper than {MAX_DEPTH} levels", "depth")
    return _events_of(message)


def _dump(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"


def encode_acks(acks: Sequence[Ack]) -> bytes:
    """The answer line for a request whose events were handled."""
    items = [{"id": ack.id, "status": ack.status, "error": ack.error} for ack in acks]
    return _dump({"type": "ack", "acks": items})


def encode_error(error: str, line_no: int) -> bytes:
    """The answer line for a malformed request line (``line_no`` counts from 1)."""
    return _dump({"type": "error", "error": error, "line": line_no})


def encode_request(events: Sequence[dict[str, Any]]) -> bytes:
    """A request line carrying ``events`` (clients; tests)."""
    return _dump({"type": "events", "events": list(events)})


def parse_answer(line: bytes) -> dict[str, Any]:
    """Decode an answer line (clients; tests); raises ValueError if it is not one."""
    value = json.loads(line)
    if not isinstance(value, dict) or value.get("type") not in {"ack", "error"}:
        raise ValueError(f"not an answer line: {line[:80]!r}")
    return value
