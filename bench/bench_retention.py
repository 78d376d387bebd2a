"""Benchmark: retention expiring half of a store while a writer appends.

    python bench/bench_retention.py [--rows 100000] [--batch 5000] [--seconds 0]
                                    [--nice 10] [--url URL | --postgresql]

Fills a fresh store (SQLite in a temporary directory; ``--url``: an empty
PostgreSQL database; ``--postgresql``: a throw-away cluster started with
``initdb`` as the tests do) with ``--rows`` realistic records in chain
``bench``, the first half recorded before a moment T, the second after. Then a
writer *process* (like the daemon: its own interpreter and connection) appends
batches of 10 events to its own chain in a loop and times each append:

1. baseline: the writer alone, before and again after the retention run (the load
   of a shared machine drifts), ``--seconds`` each (0: three times a dry run of the
   same retention, at least 10 s);
2. during retention (run at ``--nice``, 10 as gitaudit-retention.service runs it):
   ``gitaudit retention`` with ``retention_days=0`` as of T
   (so exactly the first half expires), archiving to a temporary directory, in
   batches of ``--batch``, while the writer appends again.

Prints the writer's p50/p99 append latency in both phases and their ratio
(target: p99 during retention <= 2x without), and retention's rows/s:
archived (gzip segments + manifests, fsynced) and overall (archive + delete).
Figures on a shared machine are noisy: compare the ratio, measured in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.bench_ingest import realistic_record  # noqa: E402
from gitaudit.config import Settings  # noqa: E402
from gitaudit.store import Store  # noqa: E402
from gitaudit.store.retention import Policy, RetentionOptions, recorder  # noqa: E402

TARGET_RATIO = 2.0
FILL_BATCH = 5000
WRITER_BATCH = 10


def fill(store: Store, rows: int) -> datetime:
    """Append ``rows`` records; return a moment between the two halves."""
    rng = random.Random(7)
    half = rows // 2

    def append(first: int, last: int) -> None:
        for start in range(first, last, FILL_BATCH):
            end = min(last, start + FILL_BATCH)
            store.append([realistic_record(i, rng) for i in range(start, end)])

    append(0, half)
    time.sleep(0.01)
    middle = datetime.now(UTC)
    time.sleep(0.01)
    append(half, rows)
    return middle


def writer_main(url: str, stop_file: str, out_file: str) -> None:
    """The writer process: append batches until ``stop_file`` exists; dump latencies."""
    rng = random.Random(os.getpid())
    latencies: list[tuple[float, float]] = []  # (when it ended, seconds)
    with Store.open(url, chain_id="writer", migrate=False) as store:
        index = 0
        while not os.path.exists(stop_file):
            batch = [realistic_record(index + i, rng) for i in range(WRITER_BATCH)]
            index += WRITER_BATCH
            begin = time.perf_counter()
            store.append(batch)
            latencies.append((time.time(), time.perf_counter() - begin))
            time.sleep(0.005)  # a daemon flushing often, not a tight loop
    Path(out_file).write_text(json.dumps(latencies))


class Writer:
    """A writer subprocess, started and stopped around one phase."""

    def __init__(self, url: str, tmp: Path, name: str) -> None:
        self.stop_file = tmp / f"{name}.stop"
        self.out_file = tmp / f"{name}.json"
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--writer", url, str(self.stop_file), str(self.out_file)],
            env=env,
        )
        time.sleep(1.0)  # let it import and connect before the phase starts

    def stop(self, since: float = 0.0, until: float = float("inf")) -> list[float]:
        """Stop the writer; the latencies of the appends that ended between the two times."""
        self.stop_file.touch()
        self.process.wait(timeout=120)
        timed: list[tuple[float, float]] = json.loads(self.out_file.read_text())
        return [latency for when, latency in timed if since <= when <= until]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def expire(
    store: Store, archive: Path | None, now: datetime, batch: int, dry_run: bool
) -> tuple[Any, float, float]:
    """Run retention; (report, archive seconds, total seconds)."""
    options = RetentionOptions(
        Policy(0), str(archive) if archive else None, batch, dry_run, now
    )  # fmt: skip
    marks: dict[str, float] = {}
    begin = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if "archived" not in marks and total and done >= total // 2:
            marks["archived"] = time.perf_counter() - begin

    report = store.expire(options, recorder(store, Settings(), "cli"), progress)
    total = time.perf_counter() - begin
    return report, marks.get("archived", total), total


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--writer":
        writer_main(*sys.argv[2:5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000, help="cleanup_batch_size")
    parser.add_argument("--url", default=None, help="an empty store (default: a SQLite file)")
    parser.add_argument("--postgresql", action="store_true", help="start a throw-away server")
    parser.add_argument("--seconds", type=float, default=0.0, help="baseline phase length")
    parser.add_argument(
        "--nice", type=int, default=10,
        help="niceness of the retention run (gitaudit-retention.service: Nice=10)",
    )  # fmt: skip
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-retention-")))
        url = args.url or f"sqlite:///{tmp / 'audit.db'}"
        if args.postgresql:
            url = stack.enter_context(throwaway_postgresql())
        run(args, tmp, url)
    return 0


@contextlib.contextmanager
def throwaway_postgresql() -> Iterator[str]:
    """A PostgreSQL cluster of its own (tests/pg.py's way), and the URL of an empty database."""
    from tests import pg

    run_as = pg._run_as()
    base = Path(tempfile.mkdtemp(prefix="bench-pg-", dir="/tmp"))
    if run_as:
        os.chown(base, run_as["user"], run_as["group"])
    try:
        data, port = pg._init_cluster(base)
        pg._start(base, data)
        try:
            server = pg.PgServer("127.0.0.1", port, data)
            pg._wait_ready(server)
            server.admin("CREATE DATABASE bench")
            yield server.url("bench")
        finally:
            pg._stop(base, data)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path, url: str) -> None:
    """Fill, measure the writer alone, then with retention; print the figures."""
    with Store.open(url, chain_id="bench") as store:
        begin = time.perf_counter()
        middle = fill(store, args.rows)
        took = time.perf_counter() - begin
        print(f"filled {args.rows} rows in {took:.1f}s ({url.split(':', 1)[0]})")
        with Store.open(url, chain_id="writer") as writer_store:  # registered up front
            writer_store.append([realistic_record(0, random.Random(2))])

        _, _, dry_seconds = expire(store, None, middle, args.batch, dry_run=True)
        seconds = args.seconds or max(10.0, 3 * dry_seconds)

        baseline = Writer(url, tmp, "baseline")
        since = time.time()
        time.sleep(seconds)
        alone = baseline.stop(since)

        during_writer = Writer(url, tmp, "during")
        os.nice(args.nice)  # this process only: the writer was started before
        since = time.time()
        report, archive_s, total_s = expire(store, tmp / "archive", middle, args.batch, False)
        during = during_writer.stop(since, time.time())

        after = Writer(url, tmp, "after")  # the load of a shared machine drifts: both sides
        since = time.time()
        time.sleep(seconds)
        alone += after.stop(since)

    expired = report.expired
    p99_alone, p99_during = percentile(alone, 0.99), percentile(during, 0.99)
    ratio = p99_during / p99_alone if p99_alone else float("inf")
    ms = 1000
    print(f"retention: expired {expired} of {args.rows} rows in {total_s:.1f}s, "
          f"batches of {args.batch}")  # fmt: skip
    print(f"  archived: {expired / archive_s:,.0f} rows/s ({archive_s:.1f}s); "
          f"archive + delete: {expired / total_s:,.0f} rows/s")  # fmt: skip
    print(f"writer alone:          {len(alone)} appends of {WRITER_BATCH}, "
          f"p50 {statistics.median(alone) * ms:.1f} ms, p99 {p99_alone * ms:.1f} ms")
    print(f"writer with retention: {len(during)} appends of {WRITER_BATCH}, "
          f"p50 {statistics.median(during) * ms:.1f} ms, p99 {p99_during * ms:.1f} ms")
    verdict = "ok" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(f"p99 ratio during/alone: {ratio:.2f}x (target <= {TARGET_RATIO}x): {verdict}")


if __name__ == "__main__":
    sys.exit(main())
