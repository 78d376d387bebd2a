"""systemd integration: sd_notify datagrams and socket activation with real file descriptors."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import threading
from pathlib import Path

import pytest

from gitaudit.daemon import systemd
from gitaudit.daemon.journal import Worker
from tests.daemon.daemon_harness import DaemonRun, Daemons, make_event, wait_for

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


def start_activated(run: DaemonRun) -> None:
    """Start ``run`` as systemd would start a socket-activated service: events.sock and
    trace2.sock bound (backlog 16) and passed as fds 3 and 4."""
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


def test_socket_activation_serves_the_passed_sockets(daemons: Daemons) -> None:
    run = daemons()
    start_activated(run)
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


def test_watchdog_pings_only_while_every_check_passes(tmp_path: Path) -> None:
    """A journal call that does not return withholds WATCHDOG=1; pings resume after it."""
    path = str(tmp_path / "notify.sock")
    release = threading.Event()
    worker = Worker("gitaudit-journal")

    async def stuck_call() -> None:
        await worker.run(release.wait)

    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        listener.setblocking(False)
        dog = systemd.Watchdog([lambda: worker.stalled(0.0)], {"NOTIFY_SOCKET": path})
        assert dog.beat() == []
        assert listener.recv(100) == b"WATCHDOG=1"

        async def scenario() -> list[str]:
            call = asyncio.ensure_future(stuck_call())
            while worker.stuck_for() == 0.0:
                await asyncio.sleep(0.01)
            problems = dog.beat()
            release.set()
            await call
            return problems

        problems = asyncio.run(scenario())
        assert problems and "gitaudit-journal" in problems[0]
        with pytest.raises(BlockingIOError):
            listener.recv(100)  # nothing was sent: sendto is synchronous
        assert dog.beat() == []
        assert listener.recv(100) == b"WATCHDOG=1"
    worker.stop()


def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        return handle.read().rsplit(")", 1)[1].split()[0] == "T"


def test_a_stopped_daemon_stops_its_watchdog_pings(daemons: Daemons) -> None:
    run = daemons(env={"WATCHDOG_USEC": "200000"})
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(run.root / "notify.sock"))
    run.env["NOTIFY_SOCKET"] = str(run.root / "notify.sock")
    run.start()
    notify.settimeout(60)
    while notify.recv(4096) != b"WATCHDOG=1":
        pass
    assert run.process is not None
    run.signal(signal.SIGSTOP)
    try:
        wait_for(lambda: _stopped(run.process.pid), "the daemon to stop")  # type: ignore[union-attr]
        notify.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                notify.recv(4096)  # what it sent before it stopped
        notify.settimeout(1.0)  # ten intervals without a ping
        with pytest.raises(TimeoutError):
            notify.recv(4096)
    finally:
        run.signal(signal.SIGCONT)
    notify.settimeout(60)
    while notify.recv(4096) != b"WATCHDOG=1":
        pass
    notify.close()
    assert run.stop() == 0


def test_the_socket_activated_listeners_get_the_largest_backlog_too(daemons: Daemons) -> None:
    """asyncio listens again on passed sockets: the daemon asks for the kernel's bound then,
    not for asyncio's default of 100 (nor keeps what the unit's Backlog= gave)."""
    from tests.daemon.test_listeners import kernel_cap, listen_queue

    run = daemons()
    start_activated(run)
    wait_for(lambda: '"event": "ready"' in run.log(), "the daemon to finish its startup")
    for name in ("events.sock", "trace2.sock"):
        assert listen_queue("-x", "src", str(run.runtime / name)) == kernel_cap(), name
    assert run.stop() == 0
