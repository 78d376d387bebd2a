"""Benchmark: reader questions on a large partitioned PostgreSQL store, p95 with the plan used.

    python bench/bench_pg_queries.py [--rows 10000000] [--months 12] [--runs 40] [--url URL]

Starts a throw-away PostgreSQL cluster (or uses ``--url``, an empty database),
migrates it (revision 0002: monthly partitions, the query indexes) and fills
``events`` server-side with ``INSERT ... SELECT generate_series`` (the fastest
way to make rows; the bodies are realistic in size but not hash-chained, since
only the indexed columns matter here): ``--rows`` events spread over
``--months`` months, 2,000 actors, 500 repositories, 200 hosts, ten events per
correlation id, one event in five a push. Then, after ANALYZE, it runs each
question ``--runs`` times with random parameters and prints p50/p95 and the
plan of one run (EXPLAIN ANALYZE). Target: p95 < 100 ms each.

1. last 100 events of one actor
2. all pushes to one repository in one month
3. one correlation id
4. events of one host in one day
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import Connection, text  # noqa: E402

from bench.common import pg_bench_store  # noqa: E402
from gitaudit.store.partitions import ensure_partitions, month_of, next_month  # noqa: E402

TARGET_MS = 100.0
ACTORS, REPOS, HOSTS, PER_CORRELATION = 2000, 500, 200, 10
OPERATIONS = ("git.push", "git.fetch", "git.commit", "git.pull", "git.rebase")
START = datetime(2025, 1, 1, tzinfo=UTC)

FILL = """
INSERT INTO events
SELECT
    gen_random_uuid()::text, 'bench', n,
    :start + (n::double precision / :rows) * (:span * interval '1 second'),
    :start + (n::double precision / :rows) * (:span * interval '1 second'),
    (ARRAY['git.push','git.fetch','git.commit','git.pull','git.rebase'])[1 + n % 5],
    'update', CASE WHEN n % 17 = 0 THEN 'failure' ELSE 'success' END, 'low', 'wrapper',
    'job-' || (n / :per_correlation), NULL,
    'user' || (hashint % :actors), 1000 + hashint % :actors,
    'User ' || (hashint % :actors), 'user' || (hashint % :actors) || '@example.com',
    'host' || ((hashint / 7) % :hosts),
    'repo' || ((hashint / 13) % :repos), '/src/repo' || ((hashint / 13) % :repos), 'main',
    12.5,
    '{"actor":{"user":"user' || (hashint % :actors) || '"},"details":{"remote":"origin",'
        || '"refs":[{"ref":"refs/heads/main","forced": false}]},"padding":"'
        || repeat('x', 200) || '"}',
    lpad(to_hex(n), 64, '0'), lpad(to_hex(n + 1), 64, '0')
FROM (
    SELECT n, abs(hashint4(n::int)) AS hashint FROM generate_series(:first, :last) AS n
) AS numbers
"""

QUERIES = {
    "last 100 events of one actor": (
        "SELECT body FROM events WHERE actor_user = :actor ORDER BY occurred_at DESC LIMIT 100"
    ),
    "pushes to one repository in one month": (
        "SELECT body FROM events WHERE repo_name = :repo AND operation = 'git.push' "
        "AND occurred_at >= :month AND occurred_at < :month_end ORDER BY occurred_at"
    ),
    "one correlation id": (
        "SELECT body FROM events WHERE correlation_id = :correlation ORDER BY occurred_at"
    ),
    "events of one host in one day": (
        "SELECT body FROM events WHERE actor_host = :host "
        "AND occurred_at >= :day AND occurred_at < :day_end ORDER BY occurred_at"
    ),
}


def fill(conn: Connection, rows: int, months: int, chunk: int = 1_000_000) -> float:
    """Insert ``rows`` events (commits per chunk); seconds taken."""
    span = 0.0
    month = month_of(START)
    for _ in range(months):
        month = next_month(month)
    end = datetime(month.year, month.month, 1, tzinfo=UTC)
    span = (end - START).total_seconds() - 1
    ensure_partitions(conn, START, months_ahead=months)
    conn.execute(text("INSERT INTO chains VALUES ('bench', now(), 'sha256', NULL)"))
    conn.commit()
    started = time.perf_counter()
    for first in range(1, rows + 1, chunk):
        last = min(rows, first + chunk - 1)
        conn.execute(
            text(FILL),
            {"start": START, "rows": rows, "span": span, "per_correlation": PER_CORRELATION,
             "actors": ACTORS, "hosts": HOSTS, "repos": REPOS, "first": first, "last": last},
        )  # fmt: skip
        conn.commit()
        print(f"  {last:,} rows", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    conn.execute(text("ANALYZE events"))
    conn.commit()
    return elapsed


def parameters(rng: random.Random, rows: int, months: int) -> dict[str, Any]:
    """Random values for every query's parameters."""
    month = START + timedelta(days=30 * rng.randrange(months))
    month = month.replace(day=1)
    following = next_month(month.date())
    day = START + timedelta(days=rng.randrange(months * 28))
    return {
        "actor": f"user{rng.randrange(ACTORS)}",
        "repo": f"repo{rng.randrange(REPOS)}",
        "month": month,
        "month_end": datetime(following.year, following.month, 1, tzinfo=UTC),
        "correlation": f"job-{rng.randrange(rows // PER_CORRELATION)}",
        "host": f"host{rng.randrange(HOSTS)}",
        "day": day,
        "day_end": day + timedelta(days=1),
    }


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_queries(conn: Connection, rows: int, months: int, runs: int) -> bool:
    """Time every query; print p50/p95, result sizes and one plan; True if all meet target."""
    rng = random.Random(7)
    ok = True
    for name, sql in QUERIES.items():
        timings, sizes = [], []
        for _ in range(runs):
            params = parameters(rng, rows, months)
            started = time.perf_counter()
            sizes.append(len(conn.execute(text(sql), params).all()))
            timings.append((time.perf_counter() - started) * 1000)
        p95 = _percentile(timings, 0.95)
        ok &= p95 < TARGET_MS
        print(
            f"\n== {name}: p50 {_percentile(timings, 0.5):.1f} ms, p95 {p95:.1f} ms "
            f"(target < {TARGET_MS:.0f} ms) over {runs} runs; "
            f"{min(sizes)}..{max(sizes)} rows returned"
        )
        plan = conn.execute(
            text(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}"),
            parameters(rng, rows, months),
        )
        for (line,) in plan:
            print(f"   {line}")
    return ok


def main(argv: list[str] | None = None) -> int:
    """Build the store, run the questions, print figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="events (10000000)")
    parser.add_argument("--months", type=int, default=12, help="months they span (12)")
    parser.add_argument("--runs", type=int, default=40, help="runs per question (40)")
    parser.add_argument("--url", help="an empty PostgreSQL database (default: a throw-away one)")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        _, engine = pg_bench_store(stack, args.url)
        with engine.connect() as conn:
            print(f"filling {args.rows:,} rows over {args.months} months ...", file=sys.stderr)
            seconds = fill(conn, args.rows, args.months)
            size = conn.scalar(text("SELECT pg_size_pretty(pg_total_relation_size('events'))"))
            parts = conn.scalar(
                text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass")
            )
            total = sum(
                int(conn.scalar(text(f"SELECT pg_total_relation_size('{name}')")) or 0)
                for (name,) in conn.execute(
                    text("SELECT inhrelid::regclass::text FROM pg_inherits "
                         "WHERE inhparent = 'events'::regclass")
                )
            )  # fmt: skip
            print(
                f"{args.rows:,} rows in {parts} partitions ({total / 2**30:.2f} GiB with "
                f"indexes; parent {size}), filled in {seconds:.0f}s "
                f"({args.rows / seconds:,.0f} rows/s)"
            )
            ok = run_queries(conn, args.rows, args.months, args.runs)
    print(f"\nall p95 under {TARGET_MS:.0f} ms: {'yes' if ok else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
