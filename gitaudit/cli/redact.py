"""``gitaudit redact``: copy standard input to standard output with secrets redacted.

Streams: input is read in chunks and written out a batch of complete lines at a
time, so ``tail -f log | gitaudit redact`` shows lines as they arrive and memory
stays small whatever the input size. No rule spans lines except private-key
blocks, so a batch ends before a ``-----BEGIN ... PRIVATE KEY-----`` line whose
END has not arrived yet (held back up to 1 MiB, then redacted as a truncated
key), before a ``name: ...`` line whose ``value: ...`` may be on the next, and
before the ``machine``/``login`` lines of a ``.netrc`` entry whose ``password``
may follow.

Bytes are decoded as UTF-8 with ``surrogateescape``: invalid bytes pass through
unchanged. A line longer than 64 MiB is cut at its last blank (or at 64 MiB).
Names in text are redacted according to the ``sensitive_fields`` setting.
"""

from __future__ import annotations

import re
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO

CHUNK_BYTES = 64 * 1024
MAX_LINE_BYTES = 64 * 1024 * 1024
KEY_HOLD_BYTES = 1024 * 1024
_PAIR_HOLD_LINES = 4
_PAIR_LABEL = re.compile(
    rb"(?im)(?:name|key)[\"']?[ \t]*[:=]|^[ \t]*(?:machine|login|account)[ \t]"  # .netrc
)


def _open_key_block(buffer: bytearray, end: int) -> int:
    """Start of the line holding an unterminated private-key BEGIN in ``buffer[:end]``, or -1."""
    begin = buffer.rfind(b"-----BEGIN", 0, end)
    if begin == -1 or buffer.find(b"-----END", begin, end) != -1:
        return -1
    if buffer.find(b"PRIVATE KEY", begin, min(end, begin + 80)) == -1:
        return -1
    if end - begin > KEY_HOLD_BYTES:
        return -1  # not a key that will end: let the truncated-key rule have it
    return buffer.rfind(b"\n", 0, begin) + 1


def _pair_start(buffer: bytearray, cut: int) -> int:
    """Move ``cut`` back before trailing ``name: X`` / ``key: X`` / ``machine X`` lines.

    Their value (or the entry's ``password``) may be on the next line.
    """
    for _ in range(_PAIR_HOLD_LINES):
        start = buffer.rfind(b"\n", 0, cut - 1) + 1
        if _PAIR_LABEL.search(buffer, start, min(cut, start + 200)) is None:
            break
        cut = start
        if cut == 0:
            break
    return cut


def _flush_point(buffer: bytearray, scanned: int) -> int:
    """How many leading bytes of ``buffer`` can be redacted and written now."""
    newline = buffer.rfind(b"\n", scanned)
    if newline == -1:
        if len(buffer) < MAX_LINE_BYTES:
            return 0
        blank = max(buffer.rfind(b" "), buffer.rfind(b"\t"))
        return blank + 1 if blank > 0 else len(buffer)
    cut = _pair_start(buffer, newline + 1)
    held = _open_key_block(buffer, cut)
    return cut if held == -1 else held


def _emit(data: bytes | bytearray, redact: Callable[[str], str], dst: BinaryIO) -> None:
    text = redact(data.decode("utf-8", "surrogateescape"))
    try:
        out = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a custom redactor put a lone surrogate in: never fail
        out = text.encode("utf-8", "replace")
    dst.write(out)
    dst.flush()


def redact_stream(src: BinaryIO, dst: BinaryIO, redact: Callable[[str], str] | None = None) -> None:
    """Copy ``src`` to ``dst``, redacting text as it goes (default: :func:`gitaudit.redact`)."""
    if redact is None:
        from gitaudit.sanitize import redact as default_redact

        redact = default_redact
    read = getattr(src, "read1", src.read)
    pending = bytearray()
    scanned = 0
    while chunk := read(CHUNK_BYTES):
        pending += chunk
        cut = _flush_point(pending, scanned)
        if cut:
            _emit(pending[:cut], redact, dst)
            del pending[:cut]
        scanned = len(pending)
    if pending:
        _emit(pending, redact, dst)


def redact_command() -> None:
    """Read text on standard input and write it with secrets replaced by [REDACTED:<kind>].

    Example: git config --list --show-origin | gitaudit redact
    """
    from gitaudit.config import load
    from gitaudit.sanitize import Redactor

    redactor = Redactor(sensitive_fields=load().sensitive_fields)
    try:
        redact_stream(sys.stdin.buffer, sys.stdout.buffer, redactor.redact_text)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly like cat, without a traceback
        # from the interpreter flushing stdout at exit.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(1) from None
