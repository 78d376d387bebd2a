"""The daemon's listeners: listen queues as long as the kernel allows (git blocks on a
full one), and the metrics endpoint (addresses, paths) as Prometheus scrapes it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gitaudit.daemon.metrics import parse_host_port
from gitaudit.daemon.runtime import somaxconn
from tests.daemon.daemon_harness import DaemonRun, Daemons, free_port, wait_for
from tests.gitfixtures import REAL_GIT

SS_HINT = "ss is missing: install iproute2 (apt-get install -y --no-install-recommends iproute2)"
STALLED_COMMANDS = 1000  # issue 8: git hung at the 102nd command (asyncio's backlog of 100)


def listen_queue(*filters: str) -> int:
    """The listen backlog ss reports (Send-Q of a listening socket) for one socket."""
    ss = shutil.which("ss")
    if ss is None:
        pytest.fail(SS_HINT)
    out = subprocess.run([ss, "-lnH", *filters], capture_output=True, text=True, check=True)
    rows = [line.split() for line in out.stdout.splitlines() if line.strip()]
    assert len(rows) == 1, out.stdout
    state = rows[0].index("LISTEN")
    return int(rows[0][state + 2])


def kernel_cap() -> int:
    cap = somaxconn()
    assert cap is not None, "/proc/sys/net/core/somaxconn is unreadable here"
    return cap


def test_every_listener_has_the_largest_backlog_the_kernel_allows(daemons: Daemons) -> None:
    run = daemons().start()
    cap = kernel_cap()
    for name in ("events.sock", "trace2.sock", "subscribe.sock"):
        assert listen_queue("-x", "src", str(run.runtime / name)) == cap, name
    assert listen_queue("-t", f"sport = :{run.port}") == cap
    assert run.stop() == 0


def test_git_never_waits_for_a_stopped_daemon_within_the_bound(daemons: Daemons) -> None:
    """git connects to trace2.sock with a blocking connect(): with the daemon stopped, each
    git process takes a slot of the listen queue. 1,000 of them all complete."""
    run = daemons().start()
    repo = run.root / "repo"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(run.root),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TRACE2_EVENT": f"af_unix:stream:{run.runtime / 'trace2.sock'}",
    }
    subprocess.run([REAL_GIT, "init", "-q", str(repo)], env=env, check=True)
    run.signal(signal.SIGSTOP)
    try:
        for number in range(1, STALLED_COMMANDS + 1):
            try:
                done = subprocess.run([REAL_GIT, "rev-parse", "--git-dir"], cwd=repo, env=env,
                                      capture_output=True, timeout=30)
            except subprocess.TimeoutExpired:
                pytest.fail(f"git command {number} hung on the stopped daemon's trace2 socket")
            assert done.returncode == 0, done.stderr
    finally:
        run.signal(signal.SIGCONT)
    # the daemon, continued, reads what was queued meanwhile and stops cleanly
    wait_for(lambda: run.metric_sum("gitaudit_events_received_total") >= STALLED_COMMANDS,
             "the queued git commands to be received")
    assert run.stop() == 0


# --- the metrics endpoint ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("[::1]:9464", ("::1", 9464)),
        ("::1:9464", ("::1", 9464)),
        ("localhost:1", ("localhost", 1)),
        (":9464", ("127.0.0.1", 9464)),
        ("9464", ("127.0.0.1", 9464)),
        (" [::]:80 ", ("::", 80)),
    ],
)
def test_parse_host_port(address: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(address) == expected


@pytest.mark.parametrize("address", ["host", "host:", "host:0", "host:65536", "[::1:9464", "h:x"])
def test_parse_host_port_refuses(address: str) -> None:
    with pytest.raises(ValueError, match=r"port|brackets"):
        parse_host_port(address)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - http only
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_on_a_bracketed_ipv6_address_and_only_at_slash_metrics(tmp_path: Path) -> None:
    port = free_port()
    run = DaemonRun(config={"metrics_address": f"[::1]:{port}"})
    try:
        run.start()
        status, body = _get(f"http://[::1]:{port}/metrics")
        assert status == 200
        assert "gitaudit_events_received" in body
        for path in ("/", "/metricsx", "/other", "/metrics/"):
            status, body = _get(f"http://[::1]:{port}{path}")
            assert status == 404, path
            assert "/metrics" in body and "gitaudit_events" not in body
        assert listen_queue("-t", f"sport = :{port}") == kernel_cap()
        assert run.stop() == 0
    finally:
        run.cleanup()


def test_an_unusable_metrics_address_is_a_clear_startup_error(daemons: Daemons) -> None:
    run = daemons(config={"metrics_address": "[::1:9464"})
    run.start(wait=False)
    assert run.process is not None
    assert run.process.wait(60) == 2
    assert "cannot serve metrics on [::1:9464" in run.log()
    assert "[::1]:9464 for IPv6" in run.log()
