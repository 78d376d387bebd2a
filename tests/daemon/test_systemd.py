"""systemd integration: sd_notify datagrams and socket activation with real file descriptors."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from gitaudit.daemon import systemd
from tests.daemon.daemon_harness import Daemons, make_event

# Moves the inherited sockets to fds 3 and 4, sets LISTEN_PID to its own pid (kept by
# exec) and execs the daemon: what systemd does for a socket-activated service.
LAUNCHER = """
import os, sys
events_fd, trace2_fd = int(sys.argv[1]), int(sys.argv[2])
os.dup2(events_fd, 3); os.dup2(trace2_fd, 4)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="2", LISTEN_FDNAMES="events:trace2")
os.execv(sys.executable, [sys.executable, "-m", "gitaudit", *sys.argv[3:]])
"""


def test_notify_sends_one_datagram(tmp_path: Path) -> None:
    folder = tmp_path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(folder / "n.sock"))
        listener.settimeout(10)
        assert systemd.notify("READY=1\nSTATUS=ok", {"NOTIFY_SOCKET": str(folder / "n.sock")})
        assert listener.recv(100) == b"READY=1\nSTATUS=ok"


def test_notify_abstract_namespace() -> None:
    name = f"gitaudit-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        listener.settimeout(10)
        assert systemd.notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name})
        assert listener.recv(100) == b"STOPPING=1"


def test_notify_without_systemd_is_a_no_op() -> None:
    assert systemd.notify("READY=1", {}) is False
    assert systemd.notify("READY=1", {"NOTIFY_SOCKET": "/nonexistent/sock"}) is False


def test_watchdog_interval() -> None:
    assert systemd.watchdog_interval({}) is None
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "4000000"}) == 2.0
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "10", "WATCHDOG_PID": "1"}) is None
    pid = str(os.getpid())
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": pid}) == 0.5


def test_listen_fds_for_another_pid_is_ignored_and_cleared() -> None:
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"}
    assert systemd.listen_fds(env) == {}
    assert env == {}


def test_socket_activation_serves_the_passed_sockets(daemons: Daemons) -> None:
    run = daemons()
    run.runtime.mkdir()
    listeners = []
    for name in ("events.sock", "trace2.sock"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(run.runtime / name))
        sock.listen(16)
        listeners.append(sock)
    fds = [sock.fileno() for sock in listeners]
    argv = [
        sys.executable,
        "-c",
        LAUNCHER,
        *map(str, fds),
        "daemon",
        "--config",
        str(run.config_file),
    ]
    run.start(argv=argv, pass_fds=fds)
    for sock in listeners:
        sock.close()  # the daemon holds its own copies now
    acks = run.send([make_event()])
    assert acks[0]["status"] == "accepted"
    stored = run.wait_stored([acks[0]["id"]])
    assert stored[0]["actor"]["verified"] is True
    assert '"activated": true' in run.log()
    assert run.stop() == 0
    # systemd owns activated sockets: the daemon leaves their files alone
    assert (run.runtime / "events.sock").exists()
    assert (run.runtime / "trace2.sock").exists()


def test_socket_activation_needs_no_names(daemons: Daemons) -> None:
    """Without FileDescriptorName= (names are the unit's) sockets are matched by file name."""
    run = daemons()
    run.runtime.mkdir()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(run.runtime / "events.sock"))
    sock.listen(16)
    launcher = (
        "import os, sys\n"
        "os.dup2(int(sys.argv[1]), 3)\n"
        "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1',\n"
        "                  LISTEN_FDNAMES='gitaudit.socket')\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'gitaudit', *sys.argv[2:]])\n"
    )
    argv = [
        sys.executable,
        "-c",
        launcher,
        str(sock.fileno()),
        "daemon",
        "--config",
        str(run.config_file),
    ]
    run.start(argv=argv, pass_fds=[sock.fileno()])
    sock.close()
    assert run.send([make_event()])[0]["status"] == "accepted"
    assert run.stop() == 0
