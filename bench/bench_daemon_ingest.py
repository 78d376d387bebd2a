"""Benchmark: 8 concurrent socket clients -> daemon -> committed rows, against two baselines.

    python bench/bench_daemon_ingest.py [--events 100000] [--clients 8] [--batch 50]

Starts a real daemon (``python -m gitaudit daemon``) on a fresh SQLite store,
then 8 client processes send N realistic events over the event socket, each
line carrying ``--batch`` events and up to ``--window`` lines in flight per
connection; the time runs from the first send until the last row is committed
(polled in the store). Then, in the same run and on the same kind of SQLite
file (same schema, triggers and connection settings), the very rows the
daemon committed are inserted again:

(a) the naive way: one INSERT and one commit per event (timed on a sample of
    ``--naive-sample`` rows, rate extrapolated);
(b) one SQLAlchemy ``executemany`` of all rows in one transaction.

Prints events/s for each, the ratios (targets: >= 20x (a), >= 0.3x (b)) and the
client-side p50/p99 acknowledgement latency (send of a line to its ack).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
for entry in (str(REPO_ROOT), str(REPO_ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from bench_ingest import realistic_record, stored_rows  # noqa: E402

from gitaudit.store import migrate  # noqa: E402
from gitaudit.store.engine import create_store_engine  # noqa: E402
from gitaudit.store.tables import chains, events  # noqa: E402

TARGET_NAIVE = 20.0
TARGET_EXECUTEMANY = 0.3


def _client(
    path: str, seed: int, count: int, batch: int, window: int, start: Any, out: Any
) -> None:
    """One client process: send ``count`` events, return per-line ack latencies."""
    rng = random.Random(seed)
    lines = []
    for first in range(0, count, batch):
        chunk = [
            realistic_record(seed * count + first + i, rng)
            for i in range(min(batch, count - first))
        ]
        for offset, record in enumerate(chunk):  # one command each: no cross-path duplicates
            record["correlation_id"] = f"bench-{seed}-{first + offset}"
        lines.append(json.dumps({"type": "events", "events": chunk}).encode() + b"\n")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    reader = sock.makefile("rb")
    start.wait()
    sent_at: list[float] = []
    latencies: list[float] = []
    accepted = 0
    for line in lines:
        if len(sent_at) - len(latencies) >= window:
            accepted += _read_ack(reader, sent_at, latencies)
        sent_at.append(time.perf_counter())
        sock.sendall(line)
    while len(latencies) < len(sent_at):
        accepted += _read_ack(reader, sent_at, latencies)
    sock.close()
    out.put((accepted, latencies))


def _read_ack(reader: Any, sent_at: list[float], latencies: list[float]) -> int:
    answer = json.loads(reader.readline())
    latencies.append(time.perf_counter() - sent_at[len(latencies)])
    return sum(ack["status"] == "accepted" for ack in answer["acks"])


def start_daemon(
    home: Path, url: str, chain_id: str = "bench", extra_config: str = ""
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a daemon whose directories, config and log are in ``home``, storing into ``url``;
    returns the process and its event socket once that answers."""
    config = home / "config.toml"
    config.write_text(
        f'runtime_dir = "{home / "run"}"\njournal_dir = "{home / "journal"}"\n'
        f'database_url = "{url}"\nmetrics_address = ""\nlevel = "all"\n'
        f'chain_id = "{chain_id}"\n' + extra_config
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITAUDIT_")}
    env.update(GITAUDIT_CONFIG=str(home / "none.toml"), PYTHONPATH=str(REPO_ROOT))
    log = (home / "daemon.log").open("wb")
    process = subprocess.Popen(
        # BENCH_PY_ARGS="-m cProfile -o daemon.prof" profiles the daemon's main thread
        [sys.executable, *os.environ.get("BENCH_PY_ARGS", "").split(),
         "-m", "gitaudit", "daemon", "--config", str(config)],
        env=env, stdout=log, stderr=log,
    )  # fmt: skip
    path = home / "run" / "events.sock"
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.connect(str(path))
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the daemon did not start; see {home / 'daemon.log'}") from None
            time.sleep(0.05)
    return process, path


def _start_daemon(work: Path, extra_config: str = "") -> tuple[subprocess.Popen[bytes], str, Path]:
    url = f"sqlite:///{work / 'daemon.db'}"
    process, path = start_daemon(work, url, extra_config=extra_config)
    return process, url, path


def _committed(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def run_daemon(work: Path, args: argparse.Namespace) -> tuple[float, list[float], str]:
    """Seconds from the first send to the last commit, the ack latencies, the store URL."""
    process, url, path = _start_daemon(work)
    try:
        start = multiprocessing.Event()
        out: Any = multiprocessing.Queue()
        share = [
            args.events // args.clients + (i < args.events % args.clients)
            for i in range(args.clients)
        ]
        clients = [
            multiprocessing.Process(
                target=_client, args=(str(path), i + 1, n, args.batch, args.window, start, out)
            )
            for i, n in enumerate(share)
        ]
        for client in clients:
            client.start()
        time.sleep(1.0)  # let every client build its lines and connect (not timed)
        began = time.perf_counter()
        start.set()
        results = [out.get(timeout=600) for _ in clients]
        accepted = sum(count for count, _ in results)
        if accepted != args.events:
            raise SystemExit(f"only {accepted} of {args.events} events accepted")
        deadline = time.monotonic() + 600
        while _committed(work / "daemon.db") < accepted:
            if time.monotonic() > deadline:
                raise SystemExit(f"events not committed in time; see {work / 'daemon.log'}")
            time.sleep(0.01)
        elapsed = time.perf_counter() - began
        for client in clients:
            client.join()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    return elapsed, sorted(lat for _, lats in results for lat in lats), url


def _fresh(work: Path, name: str, chain_rows: list[dict[str, Any]]) -> Any:
    url = f"sqlite:///{work / name}"
    migrate(url)
    engine = create_store_engine(url)
    with engine.begin() as conn:
        conn.execute(chains.insert(), chain_rows)
    return engine


def time_naive(work: Path, chain_rows: list[dict[str, Any]], rows: list[dict[str, Any]]) -> float:
    """Events/s of one INSERT + commit per event."""
    engine = _fresh(work, "naive.db", chain_rows)
    try:
        started = time.perf_counter()
        for row in rows:
            with engine.begin() as conn:
                conn.execute(events.insert(), row)
        return len(rows) / (time.perf_counter() - started)
    finally:
        engine.dispose()


def time_executemany(
    work: Path, chain_rows: list[dict[str, Any]], rows: list[dict[str, Any]]
) -> float:
    """Events/s of one executemany of every row in one transaction."""
    engine = _fresh(work, "executemany.db", chain_rows)
    try:
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(events.insert(), rows)
        return len(rows) / (time.perf_counter() - started)
    finally:
        engine.dispose()


def _percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(fraction * len(values)))]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in total (100000)")
    parser.add_argument("--clients", type=int, default=8, help="client processes (8)")
    parser.add_argument("--batch", type=int, default=50, help="events per request line (50)")
    parser.add_argument("--window", type=int, default=4, help="lines in flight per client (4)")
    parser.add_argument("--naive-sample", type=int, default=2000, help="rows timed for (a)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ga-bench-", dir="/tmp") as tmp:  # short socket path
        work = Path(tmp)
        elapsed, latencies, url = run_daemon(work, args)
        chain_rows, rows = stored_rows(url)
        naive = time_naive(work, chain_rows, rows[: args.naive_sample])
        bulk = time_executemany(work, chain_rows, rows)
    rate = args.events / elapsed
    print(
        f"daemon, {args.clients} clients, {args.batch} events/line: "
        f"{rate:10,.0f} events/s  ({args.events} events in {elapsed:.2f}s, send to commit)"
    )
    print(
        f"(a) one INSERT + commit per event: {naive:10,.0f} events/s  "
        f"-> daemon is {rate / naive:6.1f}x  (target >= {TARGET_NAIVE}x)"
    )
    print(
        f"(b) executemany, one transaction:  {bulk:10,.0f} events/s  "
        f"-> daemon is {rate / bulk:6.2f}x  (target >= {TARGET_EXECUTEMANY}x)"
    )
    print(
        f"ack latency per line: p50 {_percentile(latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {_percentile(latencies, 0.99) * 1000:.1f} ms ({len(latencies)} lines)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
