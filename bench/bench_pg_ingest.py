"""Benchmark: 3 daemons writing one PostgreSQL concurrently, against a raw COPY of the same rows.

    python bench/bench_pg_ingest.py [--events 60000] [--daemons 3] [--clients 2] [--batch 50]

Starts a throw-away PostgreSQL cluster (or uses ``--url``, an empty database;
the throw-away one runs with fsync off like the test cluster, which favours
neither side), then ``--daemons`` real daemons (``python -m gitaudit daemon``),
each with its own chain (``host-1``...), fed by ``--clients`` socket client
processes each. The time runs from the first send until the last row is
committed (polled in the store). In the same run, the very rows the daemons
committed are then written again into a fresh, identical database:

- **raw COPY**: one ``COPY events FROM STDIN`` of all rows in one transaction
  (the ceiling; target: the daemons reach >= 0.3x of it);
- **bulk paths**, as the batch writer would use them (one transaction per
  ``--chunk`` rows, the daemon's ``buffer_max_size``): COPY, a multi-row
  ``INSERT ... VALUES (...), (...)``, and SQLAlchemy's executemany. The writer
  keeps the fastest (COPY, see ``gitaudit/store/writer.py``).

Prints events/s for each, the ratio, and every daemon's p50/p99 acknowledgement
latency (client side: send of a line to its ack).
"""

from __future__ import annotations

import argparse
import multiprocessing
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
for entry in (str(REPO_ROOT), str(REPO_ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from bench_daemon_ingest import _client, _percentile, start_daemon  # noqa: E402
from bench_ingest import stored_rows  # noqa: E402
from sqlalchemy import Connection, Engine, func, select, text  # noqa: E402

from gitaudit.store import migrate  # noqa: E402
from gitaudit.store.engine import create_store_engine  # noqa: E402
from gitaudit.store.tables import chains, events  # noqa: E402
from gitaudit.store.writer import insert_rows  # noqa: E402

TARGET = 0.3
_MAX_PARAMETERS = 65_535


def _start_daemon(work: Path, url: str, number: int) -> tuple[subprocess.Popen[bytes], Path]:
    home = work / f"d{number}"
    home.mkdir()
    return start_daemon(home, url, f"host-{number}")


def _committed(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(events)) or 0)


def run_daemons(work: Path, url: str, args: argparse.Namespace) -> tuple[float, list[list[float]]]:
    """Seconds from the first send to the last commit; each daemon's ack latencies."""
    started = [_start_daemon(work, url, number + 1) for number in range(args.daemons)]
    engine = create_store_engine(url)
    try:
        start = multiprocessing.Event()
        outs: list[Any] = [multiprocessing.Queue() for _ in started]  # one per daemon
        per_client = args.events // (args.daemons * args.clients)
        clients = []
        for number, (_, path) in enumerate(started):
            for client in range(args.clients):
                seed = number * args.clients + client + 1
                clients.append(multiprocessing.Process(
                    target=_client,
                    args=(str(path), seed, per_client, args.batch, args.window, start,
                          outs[number]),
                ))  # fmt: skip
        for process in clients:
            process.start()
        time.sleep(1.0)  # let every client build its lines and connect (not timed)
        began = time.perf_counter()
        start.set()
        results = [[out.get(timeout=900) for _ in range(args.clients)] for out in outs]
        total = per_client * len(clients)
        if sum(count for daemon in results for count, _ in daemon) != total:
            raise SystemExit("not every event was accepted")
        deadline = time.monotonic() + 900
        while _committed(engine) < total:
            if time.monotonic() > deadline:
                raise SystemExit(f"events not committed in time; see the logs in {work}")
            time.sleep(0.02)
        elapsed = time.perf_counter() - began
        for process in clients:
            process.join()
    finally:
        engine.dispose()
        for process, _ in started:
            process.send_signal(signal.SIGTERM)
        for process, _ in started:
            process.wait(60)
    return elapsed, [[lat for _, lats in daemon for lat in lats] for daemon in results]


def _fresh(url: str, chain_rows: list[dict[str, Any]]) -> Engine:
    migrate(url)
    engine = create_store_engine(url)
    with engine.begin() as conn:
        conn.execute(chains.insert(), chain_rows)
    return engine


def _multirow(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """``INSERT ... VALUES (...), (...), ...``: one statement per page of rows, through the
    driver (SQLAlchemy would compile a new statement for every page)."""
    names = [column.name for column in events.columns]
    step = _MAX_PARAMETERS // len(names)
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        for first in range(0, len(rows), step):
            page = rows[first : first + step]
            marks = ", ".join(["(" + ", ".join(["%s"] * len(names)) + ")"] * len(page))
            sql = f"INSERT INTO events ({', '.join(names)}) VALUES {marks}"  # noqa: S608
            cursor.execute(sql.encode(), [row[name] for row in page for name in names])


def _executemany(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(events.insert(), rows)


def time_path(
    url: str,
    chain_rows: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    write: Callable[[Connection, list[dict[str, Any]]], None],
    chunk: int,
) -> float:
    """Events/s writing ``rows`` with ``write``, one transaction per ``chunk`` rows."""
    engine = _fresh(url, chain_rows)
    try:
        started = time.perf_counter()
        for first in range(0, len(rows), chunk):
            with engine.begin() as conn:
                write(conn, rows[first : first + chunk])
        return len(rows) / (time.perf_counter() - started)
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000, help="events in total (60000)")
    parser.add_argument("--daemons", type=int, default=3, help="daemons, one chain each (3)")
    parser.add_argument("--clients", type=int, default=2, help="client processes per daemon (2)")
    parser.add_argument("--batch", type=int, default=50, help="events per request line (50)")
    parser.add_argument("--window", type=int, default=4, help="lines in flight per client (4)")
    parser.add_argument("--chunk", type=int, default=1000, help="rows per bulk transaction")
    parser.add_argument("--url", help="server URL without database (default: a throw-away one)")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        if args.url is None:
            from tests.pg import throwaway_cluster

            server = stack.enter_context(throwaway_cluster())

            def database(name: str) -> str:
                server.admin(f"CREATE DATABASE {name}")
                return server.url(name)
        else:

            def database(name: str) -> str:
                engine = create_store_engine(f"{args.url}/postgres")
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text(f"CREATE DATABASE {name}"))
                engine.dispose()
                return f"{args.url}/{name}"

        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ga-pgb-", dir="/tmp")))
        url = database("daemons")
        migrate(url)
        elapsed, latencies = run_daemons(work, url, args)
        chain_rows, rows = stored_rows(url)
        raw = time_path(database("raw"), chain_rows, rows, insert_rows, len(rows))
        paths = {
            "COPY": time_path(database("copy"), chain_rows, rows, insert_rows, args.chunk),
            "multi-row INSERT": time_path(
                database("multirow"), chain_rows, rows, _multirow, args.chunk
            ),
            "executemany": time_path(
                database("executemany"), chain_rows, rows, _executemany, args.chunk
            ),
        }
    rate = len(rows) / elapsed
    print(
        f"{args.daemons} daemons x {args.clients} clients, {args.batch} events/line: "
        f"{rate:10,.0f} events/s  ({len(rows)} events in {elapsed:.2f}s, send to commit)"
    )
    print(
        f"raw COPY, one transaction:     {raw:10,.0f} events/s  -> daemons are "
        f"{rate / raw:5.2f}x  (target >= {TARGET}x)"
    )
    for name, value in paths.items():
        print(f"bulk path {name + ',':<18} {args.chunk} rows/transaction: {value:10,.0f} events/s")
    for number, lats in enumerate(latencies, 1):
        lats.sort()
        print(
            f"daemon host-{number}: ack latency per line p50 "
            f"{_percentile(lats, 0.5) * 1000:.1f} ms, p99 {_percentile(lats, 0.99) * 1000:.1f} ms "
            f"({len(lats)} lines)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
