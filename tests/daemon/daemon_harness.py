"""Running the real daemon (``python -m gitaudit daemon``) in tests.

:class:`DaemonRun` owns a short temporary directory (Unix socket paths are
limited to 108 bytes) with the runtime dir, journal, a SQLite store (or the
URL given), a TOML config file and the daemon's stderr log. Helpers send
NDJSON over the real socket, scrape ``/metrics`` over HTTP and read the store.
Waiting is polling with generous deadlines: the tests assert outcomes, never
timings.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from gitaudit.catalog import uuid7
from tests.gitfixtures import GitSandbox, gitaudit_command

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def short_dir(prefix: str = "ga-d-") -> Path:
    """A new directory under /tmp, world-traversable (clients may run as nobody)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    folder.chmod(0o755)
    return folder


def make_event(index: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid event as a client would send it."""
    event: dict[str, Any] = {
        "id": uuid7(),
        "schema_version": 1,
        "occurred_at": "2026-11-22T10:00:00Z",
        "duration_ms": 12.5,
        "operation": "git.commit",
        "category": "create",
        "outcome": "success",
        "severity": "low",
        "source": "wrapper",
        "correlation_id": f"test-{index}",
        "actor": {"uid": os.getuid(), "user": "someone", "host": "testhost"},
        "repo": {"path": "/src/repo", "name": "repo", "branch": "main"},
        "result": {"exit_code": 0, "error": None},
        "details": {"n": index},
    }
    event.update(overrides)
    return event


def wait_for(check: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def toml_value(value: Any) -> str:
    """A TOML literal for a str, number, bool or list of those (JSON syntax is valid TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


class Client:
    """One connection to the event socket, speaking NDJSON."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.reader = self.sock.makefile("rb")

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are."""
        self.sock.sendall(data)

    def answer(self) -> dict[str, Any]:
        """Read one answer line."""
        line = self.reader.readline()
        assert line.endswith(b"\n"), f"connection closed mid-answer: {line!r}"
        value: dict[str, Any] = json.loads(line)
        return value

    def send(self, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send one events line and return its acks."""
        self.send_raw(json.dumps({"type": "events", "events": list(events)}).encode() + b"\n")
        answer = self.answer()
        assert answer["type"] == "ack", answer
        acks: list[dict[str, Any]] = answer["acks"]
        return acks

    def close(self) -> None:
        """Close the connection."""
        self.reader.close()
        self.sock.close()


class DaemonRun:
    """A daemon process with its own directories, config and store."""

    def __init__(
        self,
        *,
        database_url: str | None = None,
        config: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        root: Path | None = None,
    ) -> None:
        self.root = root or short_dir()
        self.runtime = self.root / "run"
        self.journal = self.root / "journal"
        self.database_url = database_url or f"sqlite:///{self.root / 'audit.db'}"
        self.port = free_port()
        self.config_file = self.root / "config.toml"
        self.log_file = self.root / "daemon.log"
        self.config: dict[str, Any] = {
            "runtime_dir": str(self.runtime),
            "journal_dir": str(self.journal),
            "database_url": self.database_url,
            "metrics_address": f"127.0.0.1:{self.port}",
            "level": "all",
            "buffer_flush_interval": 0.2,
            "shutdown_timeout": 20.0,
            **(config or {}),
        }
        self.write_config()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GITAUDIT_", "NOTIFY_"))},
            "GITAUDIT_CONFIG": str(self.root / "no-such-config.toml"),
            "XDG_CONFIG_HOME": str(self.root / "xdg-config"),
            "XDG_STATE_HOME": str(self.root / "xdg-state"),
            "XDG_DATA_HOME": str(self.root / "xdg-data"),
            "PYTHONPATH": str(PROJECT_ROOT),
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def events_socket(self) -> Path:
        """Path of events.sock."""
        return self.runtime / "events.sock"

    def write_config(self, **changes: Any) -> None:
        """(Re)write the config file with ``changes`` applied."""
        self.config.update(changes)
        lines = [f"{key} = {toml_value(value)}" for key, value in self.config.items()]
        self.config_file.write_text("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        """argv that runs this daemon."""
        return [sys.executable, "-m", "gitaudit", "daemon", "--config", str(self.config_file)]

    def start(self, wait: bool = True, **popen: Any) -> DaemonRun:
        """Start the daemon (and wait until its event socket answers)."""
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                popen.pop("argv", None) or self.command(),
                env=self.env,
                stdout=log,
                stderr=log,
                cwd=self.root,
                **popen,
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        """Wait until a client can connect to the event socket."""

        def connectable() -> bool:
            self.assert_running()
            try:
                Client(self.events_socket, timeout=5).close()
            except OSError:
                return False
            return True

        wait_for(connectable, "the daemon's event socket")

    def assert_running(self) -> None:
        """Fail with the daemon's log if it exited."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"daemon exited with {self.process.returncode}:\n{self.log_file.read_text()}"
            )

    def client(self) -> Client:
        """A new connection to the event socket."""
        return Client(self.events_socket)

    def send(self, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send events over a fresh connection; return the acks."""
        client = self.client()
        try:
            return client.send(events)
        finally:
            client.close()

    def signal(self, signum: int) -> None:
        """Send a signal to the daemon."""
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, timeout: float = DEADLINE) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL and reap."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(DEADLINE)

    def metrics(self) -> dict[str, float]:
        """Scrape /metrics: sample name with labels -> value."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as rsp:
            body = rsp.read().decode()
        samples: dict[str, float] = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def metric_sum(self, prefix: str) -> float:
        """Sum of every sample whose name (labels included) starts with ``prefix``."""
        return sum(value for name, value in self.metrics().items() if name.startswith(prefix))

    def stored(self) -> list[dict[str, Any]]:
        """Every stored event, in chain order, identities revealed as readers show them."""
        from gitaudit.store.subjects import reveal_bodies

        engine = create_engine(self.database_url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            with engine.connect() as conn:
                rows = conn.scalars(text("SELECT body FROM events ORDER BY chain_id, seq"))
                return [json.loads(body) for body in reveal_bodies(conn, list(rows))]
        finally:
            engine.dispose()

    def stored_ids(self) -> list[str]:
        """Ids of every stored event (repeated if stored twice)."""
        return [event["id"] for event in self.stored()]

    def wait_stored(self, ids: Iterable[str], timeout: float = DEADLINE) -> list[dict[str, Any]]:
        """Wait until every id is in the store; returns the stored events."""
        wanted = set(ids)

        def done() -> list[dict[str, Any]] | None:
            try:
                events = self.stored()
            except Exception:  # noqa: BLE001 - the store may not exist yet: keep polling
                return None
            return events if wanted <= {event["id"] for event in events} else None

        try:
            found: list[dict[str, Any]] = wait_for(done, f"{len(wanted)} event(s) stored", timeout)
        except AssertionError as exc:
            if self.process is not None and self.process.poll() is None:
                self.signal(signal.SIGUSR1)  # the daemon dumps its thread stacks to the log
                time.sleep(1)
            raise AssertionError(f"{exc}; daemon log ends:\n{self.log()[-6000:]}") from None
        return found

    def log(self) -> str:
        """The daemon's stderr so far."""
        return self.log_file.read_text(errors="replace")

    def cleanup(self) -> None:
        """Stop the daemon if running and remove the directory."""
        if self.process is not None and self.process.poll() is None:
            self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


class Daemons:
    """Fixture helper: every daemon a test starts is stopped and cleaned up afterwards."""

    def __init__(self) -> None:
        self.runs: list[DaemonRun] = []

    def __call__(self, **kwargs: Any) -> DaemonRun:
        run = DaemonRun(**kwargs)
        self.runs.append(run)
        return run

    def cleanup(self) -> None:
        """Kill what is still running; remove the directories."""
        for run in self.runs:
            run.cleanup()


def send_trace2_to(run: DaemonRun, sandbox: GitSandbox) -> DaemonRun:
    """Plain git in ``sandbox`` sends trace2 to ``run`` (`gitaudit trace2 enable --global`);
    the wrapper and hooks deliver their events to it."""
    enabled = subprocess.run(
        [*gitaudit_command(), "trace2", "enable", "--global", "--socket",
         str(run.runtime / "trace2.sock")],
        env=sandbox.environ(), capture_output=True, check=False,
    )
    assert enabled.returncode == 0, enabled.stderr
    sandbox.env["GITAUDIT_RUNTIME_DIR"] = str(run.runtime)
    return run
