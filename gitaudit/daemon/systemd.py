"""systemd integration without a dependency: sd_notify and socket activation.

Both are tiny protocols (``man sd_notify``, ``man sd_listen_fds``):

- notify: send ``READY=1``, ``STOPPING=1``, ``WATCHDOG=1``... as one datagram to
  the ``AF_UNIX`` socket named in ``$NOTIFY_SOCKET`` (a leading ``@`` means the
  abstract namespace). Without the variable every call is a no-op.
- socket activation: when ``$LISTEN_PID`` is this process, ``$LISTEN_FDS``
  listening sockets start at file descriptor 3, named by ``$LISTEN_FDNAMES``
  (colon-separated, from ``FileDescriptorName=``).
- watchdog: :class:`Watchdog` sends ``WATCHDOG=1`` only while the daemon is
  healthy, so systemd restarts one that stopped answering.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Final

LISTEN_FDS_START: Final = 3
_LISTEN_VARS: Final = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def _notify_address(raw: str) -> str | bytes:
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    return raw


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to systemd; False when not run by systemd.

    OS errors sending the datagram are returned as False too: a lost
    notification must never stop the daemon.
    """
    env = os.environ if environ is None else environ
    raw = env.get("NOTIFY_SOCKET")
    if not raw:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), _notify_address(raw))
    except OSError:
        return False
    return True


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``), or None."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2 / 1_000_000


Check = Callable[[], str | None]
"""A health check: None when fine, else what is wrong (for the log)."""


class Watchdog:
    """``WATCHDOG=1`` for systemd, withheld while any check reports a problem.

    :meth:`beat` is called every :func:`watchdog_interval` seconds by a task of
    the daemon's event loop, so a loop that stops turning (a blocking call, a
    SIGSTOP, a deadlock) stops the pings by itself; the checks catch what the
    loop cannot see, such as a journal write that never returns. Without
    pings for ``WatchdogSec=``, systemd kills the daemon and (``Restart=``)
    starts it again.
    """

    def __init__(self, checks: Sequence[Check], environ: Mapping[str, str] | None = None) -> None:
        self._checks = tuple(checks)
        self._environ = environ

    def beat(self) -> list[str]:
        """Ping systemd if every check passes; returns the problems (empty: pinged)."""
        problems = [problem for check in self._checks if (problem := check()) is not None]
        if not problems:
            notify("WATCHDOG=1", self._environ)
        return problems


def _socket_name(sock: socket.socket) -> str:
    try:
        name = sock.getsockname()
    except OSError:
        return ""
    return os.path.basename(name) if isinstance(name, str) else ""


def listen_fds(environ: MutableMapping[str, str] | None = None) -> dict[str, socket.socket]:
    """Sockets passed by systemd, keyed by name; removes the ``LISTEN_*`` variables.

    Each socket is keyed by its ``LISTEN_FDNAMES`` entry and also by the file
    name of its path (``events.sock``), so units need not name them.
    """
    env = os.environ if environ is None else environ
    pid, count = env.get("LISTEN_PID", ""), env.get("LISTEN_FDS", "")
    names = env.get("LISTEN_FDNAMES", "").split(":")
    for var in _LISTEN_VARS:
        env.pop(var, None)
    if not pid.isdigit() or int(pid) != os.getpid() or not count.isdigit():
        return {}
    found: dict[str, socket.socket] = {}
    for index in range(int(count)):
        fd = LISTEN_FDS_START + index
        os.set_inheritable(fd, False)
        sock = socket.socket(fileno=fd)
        if index < len(names) and names[index]:
            found[names[index]] = sock
        found.setdefault(_socket_name(sock), sock)
    return found
