"""Benchmark: Claude Code-shaped OTLP/HTTP batches -> daemon -> committed rows, against the
daemon's socket ingest of the same number of events in the same run.

    python bench/bench_otlp_ingest.py [--events 20000] [--clients 8] [--batch 50]

(a) OTLP: ``--clients`` processes each hold one kept-alive HTTP/1.1 connection to
    the daemon's OTLP receiver and POST protobuf ``ExportLogsServiceRequest``
    bodies of ``--batch`` ``claude_code.api_request`` records (the attributes
    Claude Code 2.1.197 sends), one request at a time, as Claude Code's
    exporter does; time from the first POST until the last row is committed.
(b) socket: the same number of events through the event socket, with
    ``bench/bench_daemon_ingest.py``'s harness (same clients, same batch size,
    ``--window`` lines in flight), on a fresh daemon and store.

Prints events/s of both and the ratio (a)/(b); target >= 0.3x.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
for entry in (str(REPO_ROOT), str(REPO_ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from bench_daemon_ingest import _committed, _start_daemon, run_daemon  # noqa: E402

from tests.claude_code.otlp_client import api_request, export_request  # noqa: E402

TARGET = 0.3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _otlp_client(port: int, seed: int, count: int, batch: int, start: Any, out: Any) -> None:
    """One exporter: ``count`` records in requests of ``batch``, one at a time."""
    session, prompt = str(uuid.UUID(int=seed)), str(uuid.uuid4())
    bodies = []
    for first in range(0, count, batch):
        records = [api_request(session, first + i, prompt)
                   for i in range(min(batch, count - first))]  # fmt: skip
        bodies.append(export_request(records).SerializeToString())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.connect()
    start.wait()
    statuses: dict[int, int] = {}
    for body in bodies:
        conn.request("POST", "/v1/logs", body=body,
                     headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
        response = conn.getresponse()
        response.read()
        statuses[response.status] = statuses.get(response.status, 0) + 1
    conn.close()
    out.put(statuses)


def run_otlp(work: Path, args: argparse.Namespace) -> float:
    """Seconds from the first POST to the last commit."""
    port = _free_port()
    process, _, _ = _start_daemon(work, f'otlp_address = "127.0.0.1:{port}"\n')
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"no OTLP receiver; see {work / 'daemon.log'}") from None
                time.sleep(0.05)
        start = multiprocessing.Event()
        out: Any = multiprocessing.Queue()
        share = [args.events // args.clients + (i < args.events % args.clients)
                 for i in range(args.clients)]  # fmt: skip
        clients = [
            multiprocessing.Process(target=_otlp_client,
                                    args=(port, i + 1, n, args.batch, start, out))
            for i, n in enumerate(share)
        ]  # fmt: skip
        for client in clients:
            client.start()
        time.sleep(1.0)  # every client builds its bodies and connects (not timed)
        began = time.perf_counter()
        start.set()
        statuses: dict[int, int] = {}
        for _ in clients:
            for status, count in out.get(timeout=600).items():
                statuses[status] = statuses.get(status, 0) + count
        if set(statuses) != {200}:
            raise SystemExit(f"answers other than 200: {statuses}")
        deadline = time.monotonic() + 600
        while _committed(work / "daemon.db") < args.events:
            if time.monotonic() > deadline:
                raise SystemExit(f"records not committed in time; see {work / 'daemon.log'}")
            time.sleep(0.01)
        elapsed = time.perf_counter() - began
        for client in clients:
            client.join()
    finally:
        process.terminate()
        process.wait(60)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    """Run both and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events in total (20000)")
    parser.add_argument("--clients", type=int, default=8, help="client processes (8)")
    parser.add_argument("--batch", type=int, default=50, help="records per request (50)")
    parser.add_argument("--window", type=int, default=4,
                        help="socket lines in flight per client (4)")  # fmt: skip
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ga-bench-", dir="/tmp") as tmp:
        otlp_dir, socket_dir = Path(tmp) / "otlp", Path(tmp) / "socket"
        otlp_dir.mkdir()
        socket_dir.mkdir()
        otlp = args.events / run_otlp(otlp_dir, args)
        socket_elapsed, _, _ = run_daemon(socket_dir, args)
        sock = args.events / socket_elapsed
    print(f"(a) OTLP/HTTP protobuf, {args.clients} exporters, {args.batch} records/request: "
          f"{otlp:10,.0f} events/s  (send to commit)")  # fmt: skip
    print(f"(b) event socket, {args.clients} clients, {args.batch} events/line:          "
          f"{sock:10,.0f} events/s  (send to commit)")  # fmt: skip
    print(f"OTLP / socket: {otlp / sock:.2f}x  (target >= {TARGET}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
