"""Benchmark: the repo watcher inside a real daemon: latency, and idle CPU over many repositories.

    python bench/bench_watcher.py [--writes 20] [--window 1.0] [--repos 1000] [--idle 20]

(a) Latency from a pygit2 ref write (a branch created in a watched
    repository) to its ``ref.update`` row being in the store, p50/p99 over
    ``--writes`` writes, against a baseline measured in the same run on the
    same daemon: an event sent over the daemon's event socket until its row is
    stored. ``--window`` seconds of the watcher's figure are the configured
    wait for git's own events (``watch_window``): the watcher's own cost is
    what is left after subtracting it.
(b) Idle CPU (utime + stime from ``/proc/<pid>/stat``) of a daemon watching
    ``--repos`` repositories for ``--idle`` seconds, against the same daemon
    watching none, one after the other in the same run.

Both daemons use a fresh SQLite store and ``buffer_flush_interval`` 0.05 s.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT), str(ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from common import isolated_env  # noqa: E402

from gitaudit.catalog import now_rfc3339, uuid7  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


class Daemon:
    """A daemon subprocess with its own directories."""

    def __init__(self, root: Path, env: dict[str, str], **config: Any) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.db = root / "audit.db"
        self.log = root / "daemon.log"
        settings = {
            "runtime_dir": str(root / "run"), "journal_dir": str(root / "journal"),
            "database_url": f"sqlite:///{self.db}", "metrics_address": "", "level": "all",
            "buffer_flush_interval": 0.05, **config,
        }  # fmt: skip
        (root / "config.toml").write_text(
            "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items()))
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gitaudit", "daemon", "--config", str(root / "config.toml")],
                env=env, stdout=log, stderr=log, cwd=root,
            )
        self.wait((root / "run" / "events.sock").exists, "the event socket")
        if config.get("watch_repos"):
            self.wait(lambda: '"event": "watching"' in self.log.read_text(), "the watcher")

    def wait(self, check: Any, what: str, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"daemon: no {what}:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.01)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime

    def stored(self, needle: str) -> bool:
        try:
            with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5) as conn:
                row = conn.execute("SELECT 1 FROM events WHERE body LIKE ? LIMIT 1",
                                   (f"%{needle}%",)).fetchone()
        except sqlite3.Error:
            return False
        return row is not None

    def wait_stored(self, needle: str) -> float:
        while not self.stored(needle):
            if self.process.poll() is not None:
                raise SystemExit(self.log.read_text()[-3000:])
            time.sleep(0.002)
        return time.perf_counter()

    def send(self, event: dict[str, Any]) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(self.root / "run" / "events.sock"))
            sock.sendall(json.dumps({"type": "events", "events": [event]}).encode() + b"\n")
            sock.recv(65536)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


def socket_event(index: int) -> dict[str, Any]:
    return {
        "id": uuid7(), "schema_version": 1, "occurred_at": now_rfc3339(), "duration_ms": 3.0,
        "operation": "git.commit", "category": "create", "outcome": "success",
        "severity": "low", "source": "wrapper", "correlation_id": f"bench-{index}",
        "actor": {"uid": os.getuid(), "user": "bench", "host": "bench"},
        "repo": {"path": "/srv/bench", "name": "bench", "branch": "main"},
        "result": {"exit_code": 0, "error": None}, "details": {"marker": f"sock-{uuid7()}"},
    }  # fmt: skip


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def latency(tmp: Path, env: dict[str, str], writes: int, window: float) -> None:
    import pygit2

    repo = tmp / "latency-repo"
    subprocess.run(["git", "init", "-q", str(repo)], env=env, check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "base"],
                   env=env, check=True)
    daemon = Daemon(tmp / "d-latency", env, watch_repos=[str(repo)], watch_window=window)
    try:
        lib = pygit2.Repository(str(repo))
        commit = lib.head.peel(pygit2.Commit)
        socket_times: list[float] = []
        watch_times: list[float] = []
        for index in range(writes):
            event = socket_event(index)
            start = time.perf_counter()
            daemon.send(event)
            socket_times.append(daemon.wait_stored(event["details"]["marker"]) - start)
            name = f"bench-{index}-{uuid7()[-12:]}"
            start = time.perf_counter()
            lib.create_branch(name, commit)
            watch_times.append(daemon.wait_stored(f"refs/heads/{name}") - start)
    finally:
        daemon.stop()
    sock50, sock99 = percentiles(socket_times)
    watch50, watch99 = percentiles(watch_times)
    print(f"(a) latency to the stored row, {writes} writes each:")
    print(f"    baseline: event over the socket   p50 {sock50 * 1000:8.1f} ms  "
          f"p99 {sock99 * 1000:8.1f} ms")
    print(f"    pygit2 ref write -> watcher row   p50 {watch50 * 1000:8.1f} ms  "
          f"p99 {watch99 * 1000:8.1f} ms   (window {window * 1000:.0f} ms of it)")
    print(f"    without the window                p50 {(watch50 - window) * 1000:8.1f} ms  "
          f"p99 {(watch99 - window) * 1000:8.1f} ms")
    print(f"    ratio watcher/socket p50: {watch50 / sock50:.1f}x; "
          f"(watcher - window)/socket p50: {(watch50 - window) / sock50:.1f}x")


def idle_cpu(tmp: Path, env: dict[str, str], count: int, seconds: float) -> None:
    base = tmp / "many"
    base.mkdir()
    repos = []
    for index in range(count):
        path = base / f"r{index:05d}"
        subprocess.run(["git", "init", "-q", "--bare", str(path)], env=env, check=True)
        repos.append(str(path))
    figures = {}
    for label, watched in (("watching none", []), (f"watching {count}", repos)):
        daemon = Daemon(tmp / f"d-{len(watched)}", env, watch_repos=watched)
        try:
            time.sleep(2.0)  # settle after startup
            before = daemon.cpu_seconds()
            time.sleep(seconds)
            figures[label] = daemon.cpu_seconds() - before
        finally:
            daemon.stop()
    none, many = figures["watching none"], figures[f"watching {count}"]
    print(f"(b) idle CPU (utime+stime) over {seconds:.0f} s:")
    for label, used in figures.items():
        print(f"    daemon {label:18s} {used:6.2f} s  ({used / seconds * 100:5.2f} % of a core)")
    extra = (many - none) / seconds * 100
    ratio = f"{many / none:.2f}x" if none > 0 else "n/a (baseline used no measurable CPU)"
    print(f"    ratio: {ratio}; the watcher adds {extra:.2f} % of a core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=20.0)
    args = parser.parse_args()
    compileall.compile_dir(str(ROOT / "gitaudit"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="ga-bw-", dir="/tmp") as folder:
        tmp = Path(folder)
        env = isolated_env(tmp, PYTHONPATH=str(ROOT))
        del env["GITAUDIT_RUNTIME_DIR"]  # each daemon's config names its own
        latency(tmp, env, args.writes, args.window)
        idle_cpu(tmp, env, args.repos, args.idle)


if __name__ == "__main__":
    main()
