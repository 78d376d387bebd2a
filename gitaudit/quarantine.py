"""Quarantine: the one place a record that a stage cannot take becomes an ``audit.rejected`` event.

No stage drops a record silently. A spool or journal line that cannot be
read, an event that does not validate, a record the journal cannot write or
the store cannot insert is replaced, in the same place of the stream, by an
``audit.rejected`` event built here, which every later stage can take:

- ``details.stage``: where it was refused: ``spool`` (a spool line that is not
  readable: longer than the line limit, cut off, not JSON, not an object),
  ``ingest`` (a readable spool line that is not a valid event), ``journal``
  (a record the daemon's journal cannot write, or a journal line it cannot
  read back), ``writer`` (a record the store refused to insert);
- ``details.reason``: why (redacted, at most :data:`REASON_CHARS`);
- ``details.bytes`` and ``details.sha256``: size and SHA-256 of the raw record
  (the line's bytes; a record that never was a line is hashed as its
  ASCII JSON text), so a kept copy can be matched;
- ``details.excerpt``: its start, redacted by the sanitizer first and then cut
  to :data:`EXCERPT_CHARS` characters (control characters escaped);
  ``details.excerpt_truncated`` says whether anything was cut;
- ``details.origin``: ``file``, ``line`` and byte ``offset`` where known;
  ``details.original_id``: the record's own id, when it had one.

The id is derived from the stage, the origin and the record's hash (and the
time of the original's UUIDv7 id when it has one), so a run that is repeated
after a crash stores the stand-in once, as the store skips ids it holds.
The whole event goes through the sanitizer and the schema before it leaves.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from gitaudit.catalog import category_for, now_rfc3339, severity_for, uuid7
from gitaudit.events import validate_event
from gitaudit.sanitize import Redactor

if TYPE_CHECKING:
    from gitaudit.config import Settings
    from gitaudit.transport.spool import SpoolLine

OPERATION: Final = "audit.rejected"
STAGES: Final = ("spool", "ingest", "journal", "writer")
EXCERPT_CHARS: Final = 1024
REASON_CHARS: Final = 500
# Bytes of the raw record the sanitizer reads for the excerpt (a secret cut by the excerpt's
# end is redacted whole first); a JSON record no longer than that is redacted as data (its
# sensitive keys masked), and one up to PARSE_BYTES is read for its id and correlation id.
REDACT_WINDOW: Final = 64 * 1024
PARSE_BYTES: Final = 16 * 1024 * 1024


def _printable(text: str) -> str:
    """``text`` with control characters and lone surrogates escaped (``\\x00``, ``\\udcff``)."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        code = ord(char)
        if char.isprintable() or char == " ":
            out.append(char)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


def raw_bytes(record: Any) -> bytes:
    """The bytes a record stands for: ASCII JSON (NaN and odd values spelled out), else repr."""
    try:
        text = json.dumps(
            record, sort_keys=True, ensure_ascii=True, allow_nan=True, default=repr,
            separators=(",", ":"),
        )  # fmt: skip
    except (ValueError, TypeError, RecursionError):
        text = repr(record)
    return text.encode("utf-8", "backslashreplace")


def _v7_ms(event_id: object) -> int | None:
    """The millisecond time of a UUIDv7 id, None for anything else."""
    if not isinstance(event_id, str) or len(event_id) != 36 or event_id[14] != "7":
        return None
    try:
        return int(event_id[:8] + event_id[9:13], 16)
    except ValueError:
        return None


def _user() -> str | None:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return None


class Quarantine:
    """Builds ``audit.rejected`` events for one owner (``source``: ``daemon`` or ``cli``).

    Configured once (sanitizer, who and where); :meth:`event` per refused record.
    """

    def __init__(self, source: str, redactor: Redactor | None = None) -> None:
        self.source = source
        self.redactor = redactor or Redactor()
        self.actor = {"uid": os.getuid(), "user": _user(), "host": os.uname().nodename}

    @classmethod
    def from_settings(cls, settings: Settings, source: str) -> Quarantine:
        """With the configured sanitizer (sensitive fields, pseudonymized identities)."""
        from gitaudit.pipeline import Pipeline

        return cls(source, Pipeline(settings).redactor)

    def event(
        self,
        raw: bytes | Mapping[str, Any],
        *,
        stage: str,
        reason: str,
        origin: Mapping[str, Any] | None = None,
        size: int | None = None,
        when: float | None = None,
    ) -> dict[str, Any]:
        """The validated ``audit.rejected`` record standing for ``raw`` (a line or a record).

        ``size`` is the record's full length when ``raw`` is only its start;
        ``when`` (epoch seconds, e.g. the segment's mtime) times the id when the
        record has no UUIDv7 id of its own, so a repeated run derives the same id.
        """
        data = raw if isinstance(raw, bytes) else raw_bytes(raw)
        parsed = raw if isinstance(raw, Mapping) else self._parse(data)
        digest = hashlib.sha256(data).hexdigest()
        original = parsed.get("id") if parsed is not None else None
        excerpt, cut = self._excerpt(data, parsed)
        seed = hashlib.sha256(
            json.dumps([stage, dict(origin or {}), digest], sort_keys=True, default=str).encode()
        ).digest()
        ms = _v7_ms(original)
        if ms is None and when is not None:
            ms = int(when * 1000)
        details: dict[str, Any] = {
            "stage": stage,
            "reason": _printable(self.redactor(reason)[:REASON_CHARS]),
            "bytes": len(data) if size is None else size,
            "sha256": digest,
            "excerpt": excerpt,
            "excerpt_truncated": cut or (size is not None and size > len(data)),
            "origin": dict(origin) if origin else None,
            "original_id": _printable(original[:100]) if isinstance(original, str) else None,
        }
        correlation = parsed.get("correlation_id") if parsed is not None else None
        event_id = uuid7(ms, seed)
        event = {
            "id": event_id,
            "schema_version": 1,
            "occurred_at": now_rfc3339(),
            "duration_ms": None,
            "operation": OPERATION,
            "category": category_for(OPERATION),
            "outcome": "failure",
            "severity": severity_for(OPERATION, details, "failure"),
            "source": self.source,
            "correlation_id": _printable(correlation)
            if isinstance(correlation, str) and 0 < len(correlation) <= 200
            else event_id,
            "parent_id": None,
            "actor": dict(self.actor),
            "repo": None,
            "result": {"exit_code": None, "error": details["reason"]},
            "details": details,
        }
        return validate_event(self.redactor.redact_event(event)).to_record()

    def line(self, line: SpoolLine, stage: str, reason: str | None = None) -> dict[str, Any]:
        """The stand-in for one spool or journal line (origin: file, line, offset)."""
        try:
            when: float | None = line.segment.stat().st_mtime
        except OSError:
            when = None
        origin = {"file": str(line.segment), "line": line.line_no, "offset": line.offset}
        return self.event(
            line.raw,
            stage=stage,
            reason=reason or line.error or "unreadable line",
            origin=origin,
            when=when,
        )

    @staticmethod
    def _parse(data: bytes) -> Mapping[str, Any] | None:
        if len(data) > PARSE_BYTES:
            return None
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            return None
        return value if isinstance(value, dict) else None

    def _excerpt(self, data: bytes, parsed: Mapping[str, Any] | None) -> tuple[str, bool]:
        """The record's start, redacted, then cut to EXCERPT_CHARS, then made printable."""
        text: str | None = None
        if parsed is not None and len(data) <= REDACT_WINDOW:  # else the text window is enough
            try:
                text = json.dumps(
                    self.redactor(dict(parsed)), sort_keys=True, ensure_ascii=False,
                    allow_nan=True, default=repr, separators=(",", ":"),
                )  # fmt: skip
            except (ValueError, TypeError, RecursionError):
                text = None
        cut = False
        if text is None:
            window = data[:REDACT_WINDOW]
            cut = len(data) > len(window)
            text = self.redactor(window.decode("utf-8", "backslashreplace"))
        if len(text) > EXCERPT_CHARS:
            text, cut = text[:EXCERPT_CHARS], True
        return _printable(text), cut
