"""Readers at scale on PostgreSQL: search, stats, trace and reports, each beside its
no-index baseline, with the plans.

    python bench/bench_pg_readers.py [--events 10000000] [--runs 9] [--base-runs 1] [--url URL]

Starts a throw-away PostgreSQL cluster (or uses ``--url``, an empty database),
migrates it to head (monthly partitions, the reader indexes, the GIN search index
of revision 0005) and fills ``events`` server-side (``INSERT ... SELECT
generate_series``: 10 million rows through the writer would take hours here) with
the event mix of ``bench/readers_data.py``: full event bodies (the search index and
the readers read them), 200 users (one busy: ~7 %), 300 repositories, 20 hosts over
90 days, the 1,000-event job ``job-trace``, the rare word ``zebracorn`` in 20 commit
messages and the common ``origin`` in almost every event. The rows are not
hash-chained (``hash`` is a counter): no reader checks it, and ``bench_verify.py``
measures verification. The indexes are dropped while filling and built after it
from their own definitions (as fast as PostgreSQL builds them), then ANALYZE runs.

Then it runs the measurements of ``bench/bench_readers.py`` (same functions):
``--grep`` rare and common against ``body LIKE`` in time order, ``stats --by day``
(whole store, last 7 days) and ``trace`` against the same code with
``enable_indexscan``, ``enable_bitmapscan`` and ``enable_indexonlyscan`` off, the
plans (EXPLAIN ANALYZE), then the reports (skipped where the command is missing).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Connection, text

from bench.bench_readers import in_process, reader_env, reports
from bench.common import pg_bench_store
from bench.readers_data import CHAIN, COMMON, RARE, SPAN_S, START, TRACE_JOB
from gitaudit.store.partitions import ensure_partitions

# Weights of readers_data.OPS as cumulative percentages.
OPERATION = """CASE
    WHEN w < 30 THEN 'git.fetch' WHEN w < 50 THEN 'git.commit' WHEN w < 62 THEN 'git.push'
    WHEN w < 72 THEN 'git.pull' WHEN w < 82 THEN 'git.checkout' WHEN w < 85 THEN 'git.clone'
    WHEN w < 88 THEN 'git.rebase' WHEN w < 91 THEN 'git.merge' WHEN w < 96 THEN 'ref.update'
    WHEN w < 97 THEN 'conflict.detected' WHEN w < 98 THEN 'conflict.resolved'
    ELSE 'git.other' END"""

FILL = f"""
INSERT INTO events (id, chain_id, seq, occurred_at, recorded_at, operation, category, outcome,
    severity, source, correlation_id, parent_id, actor_user, actor_uid, actor_git_name,
    actor_git_email, actor_host, repo_name, repo_path, repo_branch, duration_ms, body,
    prev_hash, hash)
SELECT id, CAST(:chain AS text), n, at, at, op, 'update', outcome, severity, 'trace2', corr,
    NULL, usr, 1000, initcap(usr), usr || '@example.com', host, repo, '/src/' || repo, branch,
    dur,
    jsonb_build_object(
        'id', id, 'schema_version', 1,
        'occurred_at', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'duration_ms', dur, 'operation', op, 'category', 'update', 'outcome', outcome,
        'severity', severity, 'source', 'trace2', 'correlation_id', corr, 'parent_id', NULL,
        'actor', jsonb_build_object('uid', 1000, 'user', usr, 'git_name', initcap(usr),
            'git_email', usr || '@example.com', 'host', host, 'verified', true),
        'repo', jsonb_build_object('path', '/src/' || repo, 'name', repo, 'branch', branch,
            'remote', 'https://git.example.com/' || repo || '.git'),
        'result', jsonb_build_object('exit_code', CASE WHEN failed THEN 1 ELSE 0 END,
            'error', CASE WHEN failed THEN 'fatal: could not read from remote' END),
        'details', CASE
            WHEN op = 'git.commit' THEN jsonb_build_object('remote', 'origin', 'argv',
                jsonb_build_array('git', 'commit', '-m', CASE WHEN rare
                    THEN 'add the {RARE} parser'
                    ELSE 'fix ' || (ARRAY['parser', 'cli', 'docs'])[1 + h1 % 3] END))
            WHEN op = 'git.push' THEN jsonb_build_object('remote', 'origin',
                'argv', jsonb_build_array('git', 'push', 'origin'),
                'refs', jsonb_build_array(jsonb_build_object(
                    'ref', 'refs/heads/main', 'forced', h2 % 50 = 0)))
            ELSE jsonb_build_object('remote', 'origin',
                'argv', jsonb_build_array('git', split_part(op, '.', 2), 'origin')) END,
        'chain_id', CAST(:chain AS text), 'seq', n, 'prev_hash', lpad(to_hex(n - 1), 64, '0'),
        'hash', lpad(to_hex(n), 64, '0'))::text,
    lpad(to_hex(n - 1), 64, '0'), lpad(to_hex(n), 64, '0')
FROM (
    SELECT n, h1, h2, rare, gen_random_uuid()::text AS id,
        CAST(:start AS timestamptz)
            + ((n - 1 + (h2 / 7 % 1000) / 1000.0) * CAST(:step AS float8))
            * interval '1 second' AS at,
        CASE WHEN rare THEN 'git.commit' ELSE {OPERATION} END AS op,
        CASE WHEN h1 % 100 < 7 THEN 'busy' ELSE 'user' || (h1 / 100 % 200) END AS usr,
        'repo' || (h2 % 300) AS repo, 'host' || (h2 / 300 % 20) AS host,
        CASE WHEN h2 / 6000 % 2 = 0 THEN 'main' ELSE 'dev' END AS branch,
        h3 / 100 % 100 < 5 AS failed,
        CASE WHEN h3 / 100 % 100 < 5 THEN 'failure' ELSE 'success' END AS outcome,
        CASE WHEN h3 / 10000 % 100 = 0 THEN 'high' ELSE 'low' END AS severity,
        CASE WHEN n BETWEEN CAST(:trace_first AS bigint) AND CAST(:trace_first AS bigint) + 999
             THEN CAST(:trace AS text)
             ELSE 'job-' || (h1 % 1000000000) END AS corr,
        round(exp(4 + 2 * ((h1 / 1000 % 1000 + h2 / 1000 % 1000 + h3 / 1000000 % 1000)
            / 1000.0 - 1.5))::numeric, 3)::float8 AS dur
    FROM (
        SELECT n, abs(hashint8extended(n, 1)) AS h1, abs(hashint8extended(n, 2)) AS h2,
            abs(hashint8extended(n, 3)) AS h3, abs(hashint8extended(n, 3)) % 100 AS w,
            n % CAST(:rare_every AS bigint) = 7 AS rare
        FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n
    ) AS hashed
) AS shaped
"""  # noqa: S608 - constants only


def _secondary_indexes(conn: Connection) -> list[tuple[str, str]]:
    """The events table's indexes that back no constraint: name and definition."""
    rows = conn.execute(text(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = 'events' AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = 'events'::regclass)")).all()
    return [(str(name), str(sql).replace(" ON ONLY ", " ON ", 1)) for name, sql in rows]


def fill(conn: Connection, rows: int, chunk: int = 500_000) -> tuple[float, float]:
    """Insert ``rows`` events (indexes dropped, then rebuilt); seconds to fill, to index."""
    ensure_partitions(conn, START, months_ahead=4)
    conn.execute(text("INSERT INTO chains VALUES (:chain, now(), 'sha256', NULL)"),
                 {"chain": CHAIN})  # fmt: skip
    indexes = _secondary_indexes(conn)
    for name, _ in indexes:
        conn.execute(text(f'DROP INDEX "{name}"'))
    conn.commit()
    started = time.perf_counter()
    params = {"chain": CHAIN, "start": START, "step": SPAN_S / rows, "trace": TRACE_JOB,
              "trace_first": rows // 2, "rare_every": max(1, rows // 20)}  # fmt: skip
    for first in range(1, rows + 1, chunk):
        last = min(rows, first + chunk - 1)
        conn.execute(text(FILL), {**params, "first": first, "last": last})
        conn.commit()
        print(f"  {last:,} rows ({time.perf_counter() - started:.0f} s)", file=sys.stderr,
              flush=True)  # fmt: skip
    filled = time.perf_counter() - started
    conn.execute(text("SET maintenance_work_mem = '1GB'"))
    for name, sql in indexes:
        began = time.perf_counter()
        conn.execute(text(sql))
        conn.commit()
        print(f"  index {name}: {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    conn.execute(text("ANALYZE events"))
    conn.commit()
    return filled, time.perf_counter() - started - filled


def main(argv: list[str] | None = None) -> int:
    """Build the store, run the measurements, print figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events (10000000)")
    parser.add_argument("--runs", type=int, default=9, help="runs per query (9)")
    parser.add_argument("--base-runs", type=int, default=1, help="runs without the index (1)")
    parser.add_argument("--url", help="an empty PostgreSQL database (default: a throw-away one)")
    parser.add_argument("--no-reports", action="store_true", help="skip the reports")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        url, engine = pg_bench_store(stack, args.url)
        with engine.connect() as conn:
            print(f"filling {args.events:,} events ...", file=sys.stderr, flush=True)
            filled, indexed = fill(conn, args.events)
            total = conn.scalar(text(
                "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
                "WHERE inhparent = 'events'::regclass"))  # fmt: skip
            print(f"{args.events:,} events ({int(total or 0) / 2**30:.1f} GiB with indexes), "
                  f"filled in {filled:.0f} s, indexed in {indexed:.0f} s; the words: "
                  f"{RARE!r} (rare), {COMMON!r} (common)")
        print(f"load average {os.getloadavg()[0]:.1f} at start", flush=True)
        in_process(url, args.runs, args.base_runs, explain=True)
        if not args.no_reports:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            reports(reader_env(url, scratch), args.events, None, scratch)
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
