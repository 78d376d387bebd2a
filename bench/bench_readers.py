"""Readers at scale: search, stats, trace, a page of `log`, and streaming the whole store.

    python bench/bench_readers.py [--events N] [--db PATH] [--runs R]

Writes N events (default 1,000,000) with :mod:`bench.readers_data` into a SQLite file
(reused when PATH already holds a store), then measures, in this same run:

- ``log --grep`` for a rare word (20 events) and a common one (almost every event):
  p50/p95 of the query (newest 20), and the same search done without the index
  (``body LIKE '%word%'`` in time order): the ratio is what the index buys;
- ``stats --by day`` (whole store), ``trace`` of the 1,000-event job;
- ``gitaudit log --limit 20`` wall time, process start included, beside a bare
  ``python -c pass`` and beside the same query forced off its index
  (``NOT INDEXED``), for ``--actor`` of the busiest actor and ``--op --repo --since``;
- ``gitaudit log --format jsonl`` of every event: wall time and peak RSS
  (``/usr/bin/time -v``), the memory that streaming keeps constant.

Figures on a busy machine are noisy: compare the ratios printed beside them.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.readers_data import RARE, SESSION, TRACE_JOB, generate
from gitaudit.store import EventFilter, Store
from gitaudit.store.reader import ordered_query
from gitaudit.store.stats import group_stats
from gitaudit.store.trace import trace


def _runs(function: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        out.append(time.perf_counter() - start)
    return out


def _p(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(quantile * (len(ordered) - 1)))]


def _line(name: str, seconds: list[float], baseline: list[float] | None = None) -> None:
    p50, p95 = statistics.median(seconds) * 1000, _p(seconds, 0.95) * 1000
    text = f"  {name:<44} p50 {p50:9.1f} ms  p95 {p95:9.1f} ms"
    if baseline:
        ratio = statistics.median(baseline) / statistics.median(seconds)
        text += (f"   without its index: p50 {statistics.median(baseline) * 1000:9.1f} ms "
                 f"({ratio:,.1f}x the indexed time)")
    print(text)


def _in_process(url: str, runs: int) -> None:
    with Store.open(url, chain_id="bench", migrate=False) as store:
        print(f"in-process queries on {store.count():,} events ({runs} runs each):")
        for word in (RARE, "origin"):
            flt = EventFilter(grep=word, limit=20)
            indexed = _runs(lambda flt=flt: list(store.iter_query(flt)), runs)
            like = EventFilter(limit=20)
            with store.reading() as conn:
                sql = str(ordered_query(conn, like).compile(
                    conn, compile_kwargs={"literal_binds": True}))
            scan = sql.replace("FROM events", f"FROM events WHERE body LIKE '%{word}%'", 1)
            if "WHERE" in sql:
                scan = sql.replace("WHERE", f"WHERE body LIKE '%{word}%' AND", 1)

            def unindexed(scan: str = scan) -> None:
                with store.reading() as conn:
                    conn.exec_driver_sql(scan).all()

            _line(f"--grep {word} --limit 20", indexed, _runs(unindexed, max(1, runs // 3)))
        with store.reading() as conn:
            _line("stats --by day (whole store)", _runs(
                lambda: group_stats(conn, EventFilter(), "day"), max(1, runs // 3)))
            sizes = [trace(conn, TRACE_JOB).count, trace(conn, SESSION).count]
            _line(f"trace {TRACE_JOB} ({sizes[0]} events)",
                  _runs(lambda: trace(conn, TRACE_JOB), runs))


def _cli(env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gitaudit", *args, "--no-ingest"], env=env,
                   stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _unindexed_sql(url: str, flt: EventFilter) -> Callable[[], object]:
    def run() -> None:
        with Store.open(url, chain_id="bench", migrate=False) as store, store.reading() as conn:
            sql = str(ordered_query(conn, flt).compile(
                conn, compile_kwargs={"literal_binds": True}))
            conn.exec_driver_sql(sql.replace("FROM events", "FROM events NOT INDEXED")).all()
    return run


def _wall(url: str, env: dict[str, str], runs: int) -> None:
    print(f"\nwall time of a whole command, process start included ({runs} runs each):")
    bare = _runs(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), runs)
    _line("python -c pass", bare)
    floor = _runs(lambda: subprocess.run(
        [sys.executable, "-c", "import typer, sqlalchemy.engine"], check=True), runs)
    _line("python -c 'import typer, sqlalchemy.engine'", floor)
    since = datetime(2026, 10, 1, tzinfo=UTC)
    cases = [
        ("gitaudit log --limit 20", ("log", "--limit", "20"), EventFilter(limit=20)),
        ("gitaudit log --actor busy --limit 100", ("log", "--actor", "busy", "--limit", "100"),
         EventFilter(actor="busy", limit=100)),
        ("gitaudit log --op git.push --repo repo5 --since",
         ("log", "--op", "git.push", "--repo", "repo5", "--since", since.isoformat(),
          "--limit", "100"),
         EventFilter(operations=("git.push",), repo="repo5", since=since, limit=100)),
        (f"gitaudit log --grep {RARE}", ("log", "--grep", RARE, "--limit", "20"), None),
        ("gitaudit stats --by day", ("stats", "--by", "day"), None),
        (f"gitaudit trace {TRACE_JOB}", ("trace", TRACE_JOB), None),
    ]
    for name, args, flt in cases:
        wall = _runs(lambda args=args: _cli(env, *args), runs)
        baseline = _runs(_unindexed_sql(url, flt), max(1, runs // 3)) if flt else None
        _line(name, wall, baseline)
        print(f"    ({statistics.median(wall) / statistics.median(bare):.1f}x a bare interpreter "
              f"start, {statistics.median(wall) / statistics.median(floor):.1f}x importing Typer "
              "and SQLAlchemy alone; 'without its index': the query alone, forced off it)")


def _stream(env: dict[str, str]) -> None:
    print("\nstreaming every event (gitaudit log --format jsonl > /dev/null):")
    done = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-m", "gitaudit", "log", "--format", "jsonl",
         "--no-ingest"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        check=True)  # fmt: skip
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", done.stderr)
    print(f"  peak RSS {int(rss.group(1)) / 1024 if rss else 0:,.0f} MiB, "
          f"wall {wall.group(1) if wall else '?'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--no-stream", action="store_true", help="skip the full jsonl stream")
    options = parser.parse_args()
    path = options.db or Path(tempfile.gettempdir()) / f"gitaudit-readers-{options.events}.db"
    url = f"sqlite:///{path}"
    if not path.exists():
        seconds = generate(url, options.events)
        print(f"generated {options.events:,} events in {seconds:.0f}s into {path}")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GITAUDIT_", "XDG_")) and key != "PYTHONDONTWRITEBYTECODE"}
    env.update(GITAUDIT_DATABASE_URL=url, GITAUDIT_SPOOL_DIR=str(path.parent / "no-spool"),
               GITAUDIT_CONFIG=str(path.parent / "none.toml"))  # fmt: skip
    _in_process(url, options.runs)
    _wall(url, env, options.runs)
    if not options.no_stream:
        _stream(env)


if __name__ == "__main__":
    main()
