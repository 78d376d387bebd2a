"""The spool: append-only JSON-lines segment files, one event per line.

The same format serves as the daemon's journal. Layout of a spool directory::

    active.jsonl                 the segment writers append to (mode 0600)
    seg-<ns>-<pid>.jsonl         sealed segments, oldest first by name
    rejected/<segment>.rejected  raw copies of lines that could not be taken (each is stored
                                 as an ``audit.rejected`` event, see gitaudit.quarantine)
    .lock                        flock taken by ingest so one reader drains at a time

Writers take an exclusive ``flock`` on ``active.jsonl``, check it is still the
file at that path (an ingest may have sealed it meanwhile), make sure the
previous line ended (a crashed writer may have left half a line), append their
lines with one ``write`` and ``fsync`` before unlocking. Sealing renames the
active file under the same lock, so no writer ever appends to a sealed segment.

A process that ends right after its append (the git wrapper, see
:func:`sync_in_background`) leaves the ``fsync`` to a forked child: the lines
are written before it exits (every reader sees them, and no process dying
loses them); only their way from the page cache to the disk, which on a busy
disk takes milliseconds, is no longer waited for. The child holds the
descriptor, and with it the flock, until the data is on disk.

The writer side (:func:`append`) uses ``os`` and plain strings only: the git
wrapper calls it on every git command. Reader-side functions take
:class:`pathlib.Path` objects.
"""

from __future__ import annotations

import fcntl
import os
import time

from gitaudit.errors import SpoolError
from gitaudit.jsonfast import compact_encoder
from gitaudit.limits import SPOOL_LINE_MAX_BYTES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path
    from typing import Any

    StrPath = str | os.PathLike[str]

ACTIVE_NAME = "active.jsonl"
SEGMENT_PREFIX = "seg-"
SEGMENT_SUFFIX = ".jsonl"
REJECTED_DIR = "rejected"
LOCK_NAME = ".lock"
MAX_LINE_BYTES = SPOOL_LINE_MAX_BYTES


_DUMPS = compact_encoder(ensure_ascii=True)


def encode_line(event: dict[str, Any]) -> bytes:
    """One event as one spool line: compact ASCII JSON, so any string survives."""
    return _DUMPS(event).encode("ascii") + b"\n"


def ensure_dir(spool_dir: StrPath) -> None:
    """Create the spool directory (mode 0700) if it is missing."""
    try:
        os.makedirs(spool_dir, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise SpoolError(
            f"cannot create spool directory {spool_dir}: {exc.strerror}",
            "set GITAUDIT_SPOOL_DIR to a writable directory",
        ) from exc


def _fsync_dir(path: StrPath) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_active(spool_dir: StrPath) -> int:
    """Open ``active.jsonl`` and take its flock; retries if it was sealed meanwhile.

    Returns the locked descriptor; closing it releases the lock.
    """
    path = os.path.join(spool_dir, ACTIVE_NAME)
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass  # sealed between our open and our stat: open the new active file
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise SpoolError(f"spool segment {path} keeps changing under us", "check for a runaway ingest")


_detached_sync = False
_CLOSE_BELOW = 1024  # a detached child closes every inherited descriptor below this one


def sync_in_background() -> None:
    """From now on :func:`append` leaves its ``fsync`` to a forked child (see module doc).

    For a process that ends right after appending, as the git wrapper does:
    the caller then never waits for the disk. Where no child can be forked,
    the ``fsync`` is done in place, as usual.
    """
    global _detached_sync  # noqa: PLW0603 - a process-wide choice, made once by the entry point
    _detached_sync = True


def _sync(fd: int) -> None:
    if not (_detached_sync and _sync_in_child(fd)):
        os.fsync(fd)


def _sync_in_child(fd: int) -> bool:
    """``fsync(fd)`` in a child nobody waits for; False if no child could be forked."""
    try:
        pid = os.fork()
    except OSError:
        return False
    if pid:
        return True
    try:  # the child: no terminal (Ctrl-C meant for git cannot cut it short), no pipe of the
        os.setsid()  # caller held open (its reader sees EOF when the wrapper exits), one fsync
        os.closerange(0, fd)
        os.closerange(fd + 1, max(_CLOSE_BELOW, fd + 1))
        os.fsync(fd)
    finally:
        os._exit(0)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _seal_locked(spool_dir: StrPath, fd: int) -> str | None:
    if os.fstat(fd).st_size == 0:
        return None
    name = f"{SEGMENT_PREFIX}{time.time_ns():020d}-{os.getpid()}{SEGMENT_SUFFIX}"
    target = os.path.join(spool_dir, name)
    os.rename(os.path.join(spool_dir, ACTIVE_NAME), target)
    _fsync_dir(spool_dir)
    return target


def append(spool_dir: StrPath, events: Iterable[dict[str, Any]], segment_bytes: int) -> None:
    """Durably append events to the active segment (flock, one write, fsync).

    Raises :class:`SpoolError` when the directory cannot be written.
    """
    append_lines(spool_dir, b"".join(encode_line(event) for event in events), segment_bytes)


def append_lines(spool_dir: StrPath, data: bytes, segment_bytes: int) -> None:
    """Durably append already encoded lines (see :func:`append`)."""
    if not data:
        return
    ensure_dir(spool_dir)
    try:
        fd = _lock_active(spool_dir)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # close a line a crashed writer left open
            _write_all(fd, data)
            _sync(fd)
            if size + len(data) >= segment_bytes:
                _seal_locked(spool_dir, fd)
        finally:
            os.close(fd)
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
        fd = _lock_active(spool_dir)
        try:
            sealed = _seal_locked(spool_dir, fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise SpoolError(
            f"cannot seal spool segment in {spool_dir}: {exc.strerror}",
            "make the spool directory writable by this user",
        ) from exc
    return None if sealed is None else spool_dir / os.path.basename(sealed)


def sealed_segments(spool_dir: Path) -> list[Path]:
    """Sealed segments, oldest first."""
    if not spool_dir.is_dir():
        return []
    return sorted(
        path
        for path in spool_dir.iterdir()
        if path.name.startswith(SEGMENT_PREFIX) and path.name.endswith(SEGMENT_SUFFIX)
    )


class SpoolLine:
    """One line of a segment: the parsed event, or why it could not be parsed."""

    __slots__ = ("error", "event", "line_no", "offset", "raw", "segment")

    def __init__(
        self,
        segment: Path,
        line_no: int,
        event: dict[str, Any] | None,
        error: str | None,
        raw: bytes,
        offset: int | None = None,
    ) -> None:
        self.segment = segment
        self.line_no = line_no
        self.event = event
        self.error = error
        self.raw = raw
        self.offset = offset  # of the line's first byte in the segment, where known

    def __repr__(self) -> str:
        return f"SpoolLine({self.segment.name}:{self.line_no}, error={self.error!r})"


def parse_line(
    segment: Path, line_no: int, raw: bytes, complete: bool, offset: int | None = None
) -> SpoolLine:
    """Parse one raw line (pure: no I/O)."""

    def bad(error: str) -> SpoolLine:
        return SpoolLine(segment, line_no, None, error, raw, offset)

    if not complete:
        return bad("truncated line (no newline at end)")
    if len(raw) > MAX_LINE_BYTES:
        return bad(f"line of {len(raw)} bytes, longer than the limit of {MAX_LINE_BYTES}")
    import json

    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return bad(f"not JSON: {exc}")
    except RecursionError:  # anyone who may write the spool may nest a line that deep
        return bad("not JSON: nested too deeply")
    if not isinstance(value, dict):
        return bad("not a JSON object")
    return SpoolLine(segment, line_no, value, None, raw, offset)


def read_segment(segment: Path) -> Iterator[SpoolLine]:
    """Every non-blank line of a sealed segment, in order."""
    with segment.open("rb") as handle:
        offset = 0
        for line_no, raw in enumerate(handle, start=1):
            start, offset = offset, offset + len(raw)
            complete = raw.endswith(b"\n")
            body = raw.rstrip(b"\r\n")
            if not body.strip():
                continue
            yield parse_line(segment, line_no, body, complete, start)


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


class drain_lock:  # noqa: N801 - used like a function: `with drain_lock(folder):`
    """Exclusive lock held while one process drains this spool directory."""

    __slots__ = ("fd", "spool_dir")

    def __init__(self, spool_dir: Path) -> None:
        self.spool_dir = spool_dir
        self.fd = -1

    def __enter__(self) -> None:
        ensure_dir(self.spool_dir)
        self.fd = os.open(self.spool_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc_info: object) -> None:
        os.close(self.fd)
