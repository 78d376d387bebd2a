"""The store writer's own process: ``Store.append`` off the daemon's interpreter.

The intake (sanitizer, validation, dedupe) and the store append both cost CPU
per event; in one interpreter the GIL serializes them. :class:`StoreProcess`
runs the store in a child (``python -m gitaudit.daemon.writer_process FD``)
and talks to it over a socket pair with :mod:`multiprocessing.connection`
framing: the parent sends ``("open", settings)``, ``("append", records)``,
``("partitions",)`` or ``("close",)``; the child answers ``("ok", value)`` or ``("error", kind,
message, hint)``. Its methods block, so the batch writer calls them from its
store thread exactly as it called the in-process :class:`gitaudit.store.Store`.

The journal stays the parent's: a segment is removed only after the child
answered that its records are committed. The child dies with the daemon:
``PR_SET_PDEATHSIG`` (Linux) kills it when the parent goes, and an EOF on the
socket (the parent's end closed) ends it elsewhere. A child killed in the
middle of a transaction commits nothing; the records are still journaled and
the store skips ids it already holds, so nothing is stored twice.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import traceback
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Final

from gitaudit.config import Settings
from gitaudit.daemon.runtime import tune_gc
from gitaudit.errors import ConfigError, GitauditError, StoreError

if TYPE_CHECKING:
    from gitaudit.store import Store

PR_SET_PDEATHSIG: Final = 1
_ERRORS: Final[dict[str, type[GitauditError]]] = {
    "ConfigError": ConfigError,
    "StoreError": StoreError,
}
CLOSE_TIMEOUT: Final = 0.9


class StoreProcess:
    """A :class:`gitaudit.store.Store` look-alike (``append``, ``close``) in a child process."""

    def __init__(self, settings: Settings) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "gitaudit.daemon.writer_process", str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            parent.close()
            raise StoreError(f"cannot start the store writer process: {exc}") from exc
        finally:
            child.close()
        self._conn = Connection(parent.detach())
        try:
            self._call("open", settings.as_dict())
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreProcess:
        """Start the child and open the configured store there (StoreError/ConfigError)."""
        return cls(settings)

    @property
    def alive(self) -> bool:
        """Whether the child still runs."""
        return self._process.poll() is None

    def append(self, records: list[dict[str, Any]]) -> Any:
        """Append records in the child; returns its :class:`gitaudit.store.AppendResult`."""
        return self._call("append", records)

    def ensure_partitions(self) -> list[str]:
        """Create the PostgreSQL partitions ahead in the child; the names created."""
        created: list[str] = self._call("partitions")
        return created

    def close(self) -> None:
        """Close the store and end the child (killed if it does not end in time)."""
        with contextlib.suppress(OSError, EOFError, GitauditError):
            self._conn.send(("close",))
        with contextlib.suppress(OSError):
            self._conn.close()
        try:
            self._process.wait(CLOSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _call(self, *request: Any) -> Any:
        try:
            self._conn.send(request)
            answer = self._conn.recv()
        except (OSError, EOFError) as exc:
            raise StoreError(
                f"the store writer process is gone (exit status {self._process.poll()})",
                "see the daemon's log; the events stay in the journal and are retried",
            ) from exc
        if answer[0] == "ok":
            return answer[1]
        _, kind, message, hint = answer
        raise _ERRORS.get(kind, StoreError)(message, hint)


# -- the child ---------------------------------------------------------------------------


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _handle(store: Store | None, request: Any) -> tuple[Store | None, Any]:
    """The store after ``request`` (``open`` or ``append``) and the answer's value."""
    from gitaudit.store import Store

    if request[0] == "open":
        return Store.from_settings(Settings(request[1]), source="daemon"), None
    if store is None:
        raise StoreError("the store is not open")
    if request[0] == "partitions":
        return store, store.ensure_partitions()
    return store, store.append(request[1])


def serve(conn: Connection, parent: int) -> None:
    """Answer the parent's requests until it closes the connection or says ``close``."""
    store: Store | None = None
    if os.getppid() != parent:
        return  # the parent died before the death signal was armed
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            break
        if request[0] == "close":
            break
        try:
            store, value = _handle(store, request)
        except GitauditError as exc:
            conn.send(("error", type(exc).__name__, exc.message, exc.hint))
            continue
        except Exception as exc:  # noqa: BLE001 - answered, so the child outlives a bad request
            traceback.print_exc()
            message = f"the store writer failed: {type(exc).__name__}: {exc}"
            conn.send(("error", "StoreError", message, "see the daemon's log; retried"))
            continue
        conn.send(("ok", value))
    if store is not None:
        store.close()


def main(argv: list[str]) -> int:
    """Entry point of the child: ``python -m gitaudit.daemon.writer_process FD``."""
    parent = os.getppid()
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when we stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    conn = Connection(int(argv[0]))
    tune_gc()
    try:
        serve(conn, parent)
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
