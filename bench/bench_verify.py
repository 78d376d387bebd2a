"""Benchmark: `gitaudit verify` against reading and hashing the same rows with no checks at all.

    python bench/bench_verify.py [--rows 200000] [--engine sqlite|postgresql|both] [--jobs N...]
                                 [--sqlite-path FILE]

Fills a store with N realistic events (through the store writer, in one chain
per 100,000 rows so ``--jobs`` has chains to share out), then times, in the same
run:

- ``gitaudit verify --no-ingest`` as a subprocess, end to end (startup included);
- the floor: reading the same rows' stored bodies in seq order with the bare
  driver (stdlib ``sqlite3``; ``psycopg`` with a server-side cursor) and hashing
  each body's bytes with ``hashlib.sha256``, nothing else.

Prints rows/s for both and their ratio (target: >= 0.3x, issue 13), by wall time
and by CPU time (user + system of the verify process and its workers; of this
process for the floor): on a shared, loaded machine wall times swing with the
load, CPU times much less. PostgreSQL
runs on a throw-away cluster started like the test suite's (``tests/pg.py``),
unless ``--pg-url`` names a database.

On SQLite it also prints, in the same run, what bounds any verify written in
Python (the evidence when the target is missed): ``needed`` reads what verify must
compare (the 22 indexed columns and the body) with the bare driver, decodes each
body once with msgspec and hashes it, with no check at all; ``startup`` is the CPU
time of ``gitaudit verify`` on an empty store. ``--sqlite-path`` keeps the filled
store in FILE and reuses it on the next run (filling 1,000,000 rows takes minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
for entry in (REPO_ROOT, REPO_ROOT / "bench"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from bench_ingest import realistic_record  # noqa: E402

from gitaudit.store import Store  # noqa: E402

TARGET_RATIO = 0.3
CHAIN_ROWS = 100_000
BATCH = 5_000


def populate(url: str, rows: int) -> None:
    """``rows`` realistic events in chains of CHAIN_ROWS, appended in batches of BATCH."""
    rng = random.Random(13)
    done = 0
    chain = 0
    while done < rows:
        size = min(CHAIN_ROWS, rows - done)
        with Store.open(url, chain_id=f"bench-{chain:03d}") as store:
            for start in range(0, size, BATCH):
                count = min(BATCH, size - start)
                store.append([realistic_record(done + start + i, rng) for i in range(count)])
        done += size
        chain += 1


def floor_sqlite(path: Path) -> tuple[int, float, float]:
    """Rows, wall and CPU seconds: stdlib sqlite3 reads every body in order, hashlib hashes it."""
    cpu = time.process_time()
    start = time.perf_counter()
    count = 0
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for (body,) in conn.execute("SELECT body FROM events ORDER BY chain_id, seq"):
            hashlib.sha256(body.encode("utf-8")).digest()
            count += 1
    return count, time.perf_counter() - start, time.process_time() - cpu


def needed_sqlite(path: Path) -> tuple[int, float, float]:
    """Rows, wall and CPU seconds: the bare driver reads the indexed columns and the body,
    msgspec decodes each body once, hashlib hashes it: no comparison, no link, no check."""
    import msgspec

    from gitaudit.store.tables import DENORMALIZED

    decode = msgspec.json.Decoder().decode
    columns = ", ".join(DENORMALIZED)
    cpu = time.process_time()
    start = time.perf_counter()
    count = 0
    with contextlib.closing(sqlite3.connect(path)) as conn:
        query = f"SELECT {columns}, body FROM events ORDER BY chain_id, seq"  # noqa: S608
        for row in conn.execute(query):
            body = row[-1]
            decode(body)
            hashlib.sha256(body.encode("utf-8")).digest()
            count += 1
    return count, time.perf_counter() - start, time.process_time() - cpu


def floor_postgresql(url: str) -> tuple[int, float, float]:
    """Rows, wall and CPU seconds: psycopg (server-side cursor) reads every body, hashlib
    hashes it (the server's own CPU is not counted, as for verify)."""
    import psycopg
    from sqlalchemy import make_url

    parsed = make_url(url)
    conninfo = (
        f"host={parsed.host} port={parsed.port} user={parsed.username} dbname={parsed.database}"
    )
    cpu = time.process_time()
    start = time.perf_counter()
    count = 0
    with psycopg.connect(conninfo) as conn, conn.cursor(name="floor") as cursor:
        cursor.itersize = 5000
        cursor.execute("SELECT body FROM events ORDER BY chain_id, seq")
        for (body,) in cursor:
            hashlib.sha256(body.encode("utf-8")).digest()
            count += 1
    return count, time.perf_counter() - start, time.process_time() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def startup_cpu(tmp: Path) -> float:
    """CPU seconds of ``gitaudit verify --no-ingest`` on an empty store: the fixed cost."""
    url = f"sqlite:///{tmp / 'empty.db'}"
    Store.open(url, chain_id="bench-empty").close()
    return time_verify(url, 1)[1]


def time_verify(url: str, jobs: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``gitaudit verify --no-ingest`` on ``url`` (must exit 0)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITAUDIT_", "XDG_"))}
    scratch = Path(tempfile.mkdtemp(prefix="bench-verify-env-"))
    env.update(
        GITAUDIT_DATABASE_URL=url,
        GITAUDIT_CONFIG=str(scratch / "none.toml"),
        GITAUDIT_SPOOL_DIR=str(scratch / "spool"),
        XDG_DATA_HOME=str(scratch),
        PYTHONPATH=str(REPO_ROOT),
    )
    argv = [sys.executable, "-m", "gitaudit", "verify", "--no-ingest"]
    if jobs > 1:
        argv += ["--jobs", str(jobs)]
    cpu = _children_cpu()
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    shutil.rmtree(scratch, ignore_errors=True)
    if result.returncode != 0:
        raise SystemExit(f"verify failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return elapsed, cpu


@contextlib.contextmanager
def throwaway_postgresql() -> Iterator[str]:
    """A PostgreSQL cluster like the test suite's; yields the URL of an empty database."""
    from tests import pg

    run_as = pg._run_as()
    # nobody must reach the data directory: /tmp is world-traversable (as in tests/pg.py)
    scratch = "/tmp" if run_as else None  # noqa: S108
    base = Path(tempfile.mkdtemp(prefix="gitaudit-pg-bench-", dir=scratch))
    if run_as:
        os.chown(base, run_as["user"], run_as["group"])
    data, port = pg._init_cluster(base)
    pg._start(base, data)
    try:
        server = pg.PgServer("127.0.0.1", port, data)
        pg._wait_ready(server)
        server.admin("CREATE DATABASE bench")
        yield server.url("bench")
    finally:
        pg._stop(base, data)
        shutil.rmtree(base, ignore_errors=True)


def report(
    engine: str,
    rows: int,
    verify: tuple[float, float],
    floor: tuple[int, float, float],
    jobs: int,
) -> None:
    floor_rows, floor_s, floor_cpu = floor
    assert floor_rows == rows, (floor_rows, rows)
    verify_s, verify_cpu = verify
    print(f"{engine}: {rows} rows, gitaudit verify --jobs {jobs}")
    for what, mine, base in (("wall", verify_s, floor_s), ("cpu", verify_cpu, floor_cpu)):
        ratio = base / mine
        verdict = "ok" if ratio >= TARGET_RATIO else "BELOW TARGET"
        print(
            f"  {what:4}: verify {mine:7.2f} s {rows / mine:10,.0f} rows/s | floor (driver + "
            f"hashlib) {base:6.2f} s {rows / base:10,.0f} rows/s | ratio {ratio:.2f}x "
            f"(target >= {TARGET_RATIO}x): {verdict}"
        )


def bounds(
    rows: int,
    floor: tuple[int, float, float],
    needed: tuple[int, float, float],
    startup: float,
) -> None:
    """What bounds a verify in Python, against the floor measured just before it."""
    floor_cpu, needed_cpu = floor[2], needed[2]
    print(
        f"  bound: needed (22 columns + body read, body decoded once, hashed; no checks) "
        f"{needed_cpu:6.2f} s cpu {rows / needed_cpu:10,.0f} rows/s | ratio to the floor "
        f"{floor_cpu / needed_cpu:.2f}x"
    )
    best = floor_cpu / (needed_cpu + startup)
    print(
        f"  bound: startup (gitaudit verify on an empty store) {startup:.2f} s cpu; "
        f"needed + startup: ratio {best:.2f}x at {rows} rows"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument(
        "--jobs", type=int, nargs="+", default=[1], help="gitaudit verify --jobs N (several: each)"
    )
    parser.add_argument("--pg-url", help="an empty PostgreSQL database to use instead")
    parser.add_argument("--sqlite-path", type=Path, help="keep (and reuse) the SQLite store here")
    args = parser.parse_args()
    if args.engine in ("sqlite", "both"):
        tmp = Path(tempfile.mkdtemp(prefix="bench-verify-"))
        try:
            path = args.sqlite_path or tmp / "audit.db"
            url = f"sqlite:///{path}"
            if not path.exists():
                started = time.perf_counter()
                populate(url, args.rows)
                print(f"(filled {args.rows} rows in {time.perf_counter() - started:.1f} s)")
            for jobs in args.jobs:
                floor = floor_sqlite(path)
                report("sqlite", args.rows, time_verify(url, jobs), floor, jobs)
            bounds(args.rows, floor_sqlite(path), needed_sqlite(path), startup_cpu(tmp))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.engine in ("postgresql", "both"):
        with contextlib.ExitStack() as stack:
            url = args.pg_url or stack.enter_context(throwaway_postgresql())
            started = time.perf_counter()
            populate(url, args.rows)
            print(f"(filled {args.rows} rows in {time.perf_counter() - started:.1f} s)")
            for jobs in args.jobs:
                floor = floor_postgresql(url)
                report("postgresql", args.rows, time_verify(url, jobs), floor, jobs)


if __name__ == "__main__":
    main()
