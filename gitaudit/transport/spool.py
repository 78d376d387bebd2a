"""The spool: append-only JSON-lines segment files, one event per line.

The same format serves as the daemon's journal. Layout of a spool directory::

    active.jsonl                 the segment writers append to (mode 0600)
    seg-<ns>-<pid>.jsonl         sealed segments, oldest first by name
    rejected/<segment>.rejected  lines that could not be parsed, kept for forensics
    .lock                        flock taken by ingest so one reader drains at a time

Writers take an exclusive ``flock`` on ``active.jsonl``, check it is still the
file at that path (an ingest may have sealed it meanwhile), make sure the
previous line ended (a crashed writer may have left half a line), append their
lines with one ``write`` and ``fsync`` before unlocking. Sealing renames the
active file under the same lock, so no writer ever appends to a sealed segment.

Stdlib only: the git wrapper calls :func:`append` on every git command.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitaudit.errors import SpoolError

ACTIVE_NAME = "active.jsonl"
SEGMENT_PREFIX = "seg-"
SEGMENT_SUFFIX = ".jsonl"
REJECTED_DIR = "rejected"
LOCK_NAME = ".lock"
MAX_LINE_BYTES = 1024 * 1024


def encode_line(event: dict[str, Any]) -> bytes:
    """One event as one spool line (ASCII JSON, so any string survives)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"


def ensure_dir(spool_dir: Path) -> None:
    """Create the spool directory (mode 0700) if it is missing."""
    try:
        spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SpoolError(
            f"cannot create spool directory {spool_dir}: {exc.strerror}",
            "set GITAUDIT_SPOOL_DIR to a writable directory",
        ) from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _locked_active(spool_dir: Path) -> Iterator[int]:
    """Open ``active.jsonl`` and hold its flock; retries if it was sealed meanwhile."""
    path = spool_dir / ACTIVE_NAME
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                yield fd
                return
        finally:
            os.close(fd)
    raise SpoolError(f"spool segment {path} keeps changing under us", "check for a runaway ingest")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _seal_locked(spool_dir: Path, fd: int) -> Path | None:
    if os.fstat(fd).st_size == 0:
        return None
    target = spool_dir / f"{SEGMENT_PREFIX}{time.time_ns():020d}-{os.getpid()}{SEGMENT_SUFFIX}"
    os.rename(spool_dir / ACTIVE_NAME, target)
    _fsync_dir(spool_dir)
    return target


def append(spool_dir: Path, events: Iterable[dict[str, Any]], segment_bytes: int) -> None:
    """Durably append events to the active segment (flock, one write, fsync).

    Raises :class:`SpoolError` when the directory cannot be written.
    """
    data = b"".join(encode_line(event) for event in events)
    if not data:
        return
    ensure_dir(spool_dir)
    try:
        with _locked_active(spool_dir) as fd:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # close a line a crashed writer left open
            _write_all(fd, data)
            os.fsync(fd)
            if size + len(data) >= segment_bytes:
                _seal_locked(spool_dir, fd)
    except OSError as exc:
        raise SpoolError(
            f"cannot write spool segment in {spool_dir}: {exc.strerror or exc}",
            "make the directory writable or set GITAUDIT_SPOOL_DIR",
        ) from exc


def seal_active(spool_dir: Path) -> Path | None:
    """Seal the active segment so it can be ingested; returns the sealed path, if any."""
    if not (spool_dir / ACTIVE_NAME).exists():
        return None
    try:
        with _locked_active(spool_dir) as fd:
            return _seal_locked(spool_dir, fd)
    except OSError as exc:
        raise SpoolError(
            f"cannot seal spool segment in {spool_dir}: {exc.strerror}",
            "make the spool directory writable by this user",
        ) from exc


def sealed_segments(spool_dir: Path) -> list[Path]:
    """Sealed segments, oldest first."""
    if not spool_dir.is_dir():
        return []
    return sorted(
        path
        for path in spool_dir.iterdir()
        if path.name.startswith(SEGMENT_PREFIX) and path.name.endswith(SEGMENT_SUFFIX)
    )


@dataclass(frozen=True)
class SpoolLine:
    """One line of a segment: the parsed event, or why it could not be parsed."""

    segment: Path
    line_no: int
    event: dict[str, Any] | None
    error: str | None
    raw: bytes


def parse_line(segment: Path, line_no: int, raw: bytes, complete: bool) -> SpoolLine:
    """Parse one raw line (pure: no I/O)."""
    if not complete:
        return SpoolLine(segment, line_no, None, "truncated line (no newline at end)", raw)
    if len(raw) > MAX_LINE_BYTES:
        return SpoolLine(segment, line_no, None, f"line longer than {MAX_LINE_BYTES} bytes", raw)
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return SpoolLine(segment, line_no, None, f"not JSON: {exc}", raw)
    if not isinstance(value, dict):
        return SpoolLine(segment, line_no, None, "not a JSON object", raw)
    return SpoolLine(segment, line_no, value, None, raw)


def read_segment(segment: Path) -> Iterator[SpoolLine]:
    """Every non-blank line of a sealed segment, in order."""
    with segment.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            complete = raw.endswith(b"\n")
            body = raw.rstrip(b"\r\n")
            if not body.strip():
                continue
            yield parse_line(segment, line_no, body, complete)


def quarantine(spool_dir: Path, bad: list[SpoolLine]) -> Path | None:
    """Keep unparseable lines under ``rejected/`` (mode 0600); returns the file written."""
    if not bad:
        return None
    folder = spool_dir / REJECTED_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / (bad[0].segment.name + ".rejected")
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        _write_all(fd, b"".join(line.raw + b"\n" for line in bad))
        os.fsync(fd)
    finally:
        os.close(fd)
    return target


def remove_segment(segment: Path) -> None:
    """Delete a segment whose events are all committed to the store."""
    segment.unlink(missing_ok=True)
    _fsync_dir(segment.parent)


@contextmanager
def drain_lock(spool_dir: Path) -> Iterator[None]:
    """Exclusive lock held while one process drains this spool directory."""
    ensure_dir(spool_dir)
    fd = os.open(spool_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
