"""Readers at scale: search, stats, trace, a page of `log`, reports and streaming the whole store.

    python bench/bench_readers.py [--events N] [--db PATH] [--runs R] [--base-runs B]
        [--explain] [--no-wall] [--no-stream] [--no-reports]

Uses a SQLite store of N events (default 1,000,000; 10,000,000 works too) made by
:mod:`bench.readers_data` (its bulk path) and kept in the temporary directory
(``gitaudit-bench-1m.db``, ``gitaudit-bench-10m.db``) for the next run, or PATH.
Then it measures, in this same run, each query beside the same query without
its index (the ratio is what the index buys):

- ``log --grep`` for a rare word (20 events) and a common one (almost every event):
  p50/p95 of the query (newest 20), against the same search without the
  full-text index (``body LIKE '%word%'`` in time order);
- ``stats --by day`` of the whole store (no index can serve a whole-store
  aggregate: the ratio stays ~1x) and of its last 7 days; ``trace`` of the
  1,000-event job; the ``log`` filters of the wall-time part below: against the
  same code with the store's indexes forced off (SQLite ``NOT INDEXED`` on every
  read of ``events``; PostgreSQL ``enable_indexscan``/``bitmapscan`` off);
- ``gitaudit log --limit 20`` and friends, wall time with process start, beside a
  bare ``python -c pass``;
- ``gitaudit report usage``, ``report soc2`` and ``report security`` (HTML) over every
  event: wall time and peak RSS (``/usr/bin/time -v``: the largest single process; soc2
  and security start worker processes, each about as large as a reader) against
  ``gitaudit log --format jsonl`` of the same events (the streaming floor), targets
  < 10 s and < 500 MB at 1 million events.
  A checkout without the report command prints a note and skips it.

``bench/bench_pg_readers.py`` runs the same measurements on PostgreSQL.
Figures on a busy machine are noisy: compare the ratios printed beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Connection, event, text

from bench.readers_data import COMMON, RARE, SPAN_S, START, TRACE_JOB, cached_store
from gitaudit.store import EventFilter, Store
from gitaudit.store.reader import iter_bodies, ordered_query
from gitaudit.store.stats import group_stats
from gitaudit.store.trace import trace

SEARCH_TARGET_MS = 200.0
REPORT_TARGET_S, REPORT_TARGET_MB = 10.0, 500.0
END = START + timedelta(seconds=SPAN_S)
LAST_WEEK = EventFilter(since=END - timedelta(days=7))
REPORT_KINDS = ("usage", "soc2", "security")


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


def _line(name: str, seconds: list[float],
          baseline: list[float] | Callable[[], list[float]] | None = None,
          target_ms: float | None = None) -> None:  # fmt: skip
    """Print p50/p95 of ``seconds`` and, when given, the ratio to ``baseline`` (a callable is
    run after the indexed figures are printed: a slow baseline never hides them)."""
    p50, p95 = statistics.median(seconds) * 1000, _p(seconds, 0.95) * 1000
    text = f"  {name:<44} p50 {p50:9.1f} ms  p95 {p95:9.1f} ms"
    if target_ms is not None:
        text += f" ({'met' if p95 < target_ms else 'NOT MET'}: < {target_ms:.0f} ms)"
    if callable(baseline):
        print(text, end="", flush=True)
        text, baseline = "", baseline()
    if baseline:
        ratio = statistics.median(baseline) / statistics.median(seconds)
        says = f"{ratio:,.1f}x the indexed time" if ratio >= 1 else (
            f"{ratio:.2f}x the indexed time: here the index costs more than it saves")
        text += (f"   without its index: p50 {statistics.median(baseline) * 1000:9.1f} ms "
                 f"({says})")
    print(text, flush=True)


def _not_indexed(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                 _many: bool) -> tuple[str, Any]:  # fmt: skip
    return re.sub(r"\bFROM events\b", "FROM events NOT INDEXED", statement), parameters


@contextlib.contextmanager
def index_off(conn: Connection) -> Iterator[Connection]:
    """``conn`` with the store's indexes on ``events`` out of reach of every query the
    reader code sends through it: the same code, the same SQL, without its indexes."""
    if conn.dialect.name == "sqlite":
        event.listen(conn, "before_cursor_execute", _not_indexed, retval=True)
        try:
            yield conn
        finally:
            event.remove(conn, "before_cursor_execute", _not_indexed)
        return
    switches = ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan")
    for name in switches:
        conn.exec_driver_sql(f"SET {name} = off")
    try:
        yield conn
    finally:
        for name in switches:
            conn.exec_driver_sql(f"RESET {name}")


def _like_scan(store: Store, word: str) -> Callable[[], None]:
    """The newest 20 events holding ``word`` without the search index: ``body LIKE``
    checked in time order (the plan a store without full-text search has)."""
    with store.reading() as conn:
        sql = str(ordered_query(conn, EventFilter(limit=20)).compile(
            conn, compile_kwargs={"literal_binds": True}))
    scan = text(sql.replace("FROM events", "FROM events WHERE body LIKE :pattern", 1))

    def run() -> None:
        with store.reading() as conn:
            conn.execute(scan, {"pattern": f"%{word}%"}).all()
    return run


def _both(store: Store, query: Callable[[Connection], object], runs: int,
          base_runs: int) -> tuple[list[float], Callable[[], list[float]]]:  # fmt: skip
    """Timings of ``query`` on a reading connection, and how to time it with indexes off."""
    with store.reading() as conn:
        indexed = _runs(lambda: query(conn), runs)

    def without() -> list[float]:
        with store.reading() as conn, index_off(conn) as off:
            return _runs(lambda: query(off), base_runs)
    return indexed, without


def in_process(url: str, runs: int, base_runs: int, explain: bool = False) -> None:
    """The queries of ``log --grep``, ``stats`` and ``trace``, in this process."""
    with Store.open(url, chain_id="bench", migrate=False) as store:
        print(f"in-process queries on {store.count():,} events ({runs} runs each, "
              f"{base_runs} without the index):", flush=True)
        for word in (RARE, COMMON):
            flt = EventFilter(grep=word, limit=20)
            indexed = _runs(lambda flt=flt: list(store.iter_query(flt)), runs)
            _line(f"--grep {word} --limit 20", indexed,
                  lambda word=word: _runs(_like_scan(store, word), base_runs),
                  target_ms=SEARCH_TARGET_MS)  # fmt: skip
            if explain:
                _plan(store, f"--grep {word}", lambda c, flt=flt: list(iter_bodies(c, flt)))
        cases: list[tuple[str, Callable[[Connection], object]]] = [
            ("stats --by day (whole store)", lambda c: group_stats(c, EventFilter(), "day")),
            ("stats --by day (last 7 days)", lambda c: group_stats(c, LAST_WEEK, "day")),
            (f"trace {TRACE_JOB}", lambda c: trace(c, TRACE_JOB)),
        ]
        with store.reading() as conn:
            print(f"  (trace {TRACE_JOB}: {trace(conn, TRACE_JOB).count} events)")
        for name, query in cases:
            slow = name.endswith("(whole store)")
            _line(name, *_both(store, query, max(1, runs // 3) if slow else runs,
                               1 if slow else base_runs))  # fmt: skip
            if explain:
                _plan(store, name, query)


def _plan(store: Store, name: str, query: Callable[[Connection], object]) -> None:
    """The plan of the last statement ``query`` sends (the one that reads the events):
    PostgreSQL EXPLAIN ANALYZE, SQLite EXPLAIN QUERY PLAN."""
    sent: list[tuple[str, Any]] = []

    def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    with store.reading() as conn:
        event.listen(conn, "before_cursor_execute", capture)
        query(conn)
        event.remove(conn, "before_cursor_execute", capture)
    statement, parameters = sent[-1]
    with store.reading() as conn:  # a new one: readers leave stream_results set on theirs
        if conn.dialect.name == "postgresql":
            explain = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
            plan = list(conn.exec_driver_sql(explain + statement, parameters).scalars())
        else:
            plan = [row[-1] for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, parameters)]
    print(f"    plan of {name}:")
    for line in plan:  # the search expression spelt out is long: its start says enough
        print(f"      {line if len(line) < 150 else line[:146] + ' ...'}")


def _cli(env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gitaudit", *args, "--no-ingest"], env=env,
                   stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _filtered(url: str, flt: EventFilter, runs: int) -> list[float]:
    """The query of ``flt`` in this process, with the indexes forced off."""
    with (Store.open(url, chain_id="bench", migrate=False) as store, store.reading() as conn,
          index_off(conn) as off):
        return _runs(lambda: list(iter_bodies(off, flt)), runs)


def wall(url: str, env: dict[str, str], runs: int, base_runs: int) -> None:
    """Whole commands, process start included, beside a bare interpreter start."""
    print(f"\nwall time of a whole command, process start included ({runs} runs each):")
    bare = _runs(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), runs)
    _line("python -c pass", bare)
    floor = _runs(lambda: subprocess.run(
        [sys.executable, "-c", "import typer, sqlalchemy.engine"], check=True), runs)
    _line("python -c 'import typer, sqlalchemy.engine'", floor)
    since = END - timedelta(days=60)
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
        took = _runs(lambda args=args: _cli(env, *args), runs)
        _line(name, took, _filtered(url, flt, base_runs) if flt else None)
        print(f"    ({statistics.median(took) / statistics.median(bare):.1f}x a bare interpreter "
              f"start, {statistics.median(took) / statistics.median(floor):.1f}x importing Typer "
              "and SQLAlchemy alone; 'without its index': the query alone, forced off it)")


def time_v(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of ``argv`` under ``/usr/bin/time -v``, stdout dropped."""
    done = subprocess.run(["/usr/bin/time", "-v", *argv], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)  # fmt: skip
    if done.returncode != 0:  # its own message: what comes before time's report
        said = done.stderr.split("Command exited with non-zero status")[0].strip()
        raise RuntimeError(f"exit {done.returncode}: {said[-1000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", done.stderr)
    seconds = 0.0
    for part in (clock.group(1) if clock else "0").split(":"):
        seconds = seconds * 60 + float(part)
    return seconds, int(rss.group(1)) / 1024 if rss else 0.0


def _gitaudit(*args: str) -> list[str]:
    return [sys.executable, "-m", "gitaudit", *args]


def stream(env: dict[str, str]) -> tuple[float, float]:
    """``gitaudit log --format jsonl`` of every event: wall seconds and peak RSS (MiB)."""
    print("\nstreaming every event (gitaudit log --format jsonl > /dev/null):", flush=True)
    seconds, mib = time_v(_gitaudit("log", "--format", "jsonl", "--no-ingest"), env)
    print(f"  wall {seconds:.1f} s, peak RSS {mib:,.0f} MiB", flush=True)
    return seconds, mib


def reports(env: dict[str, str], events: int, floor: tuple[float, float] | None,
            out_dir: Path) -> None:  # fmt: skip
    """``gitaudit report usage|soc2|security --format html`` over the whole store: wall,
    peak RSS."""
    print("\nreports over every event (gitaudit report KIND --format html -o FILE):", flush=True)
    helped = subprocess.run(_gitaudit("report", "--help"), env=env, capture_output=True,
                            text=True, check=False)  # fmt: skip
    if helped.returncode != 0:
        print("  report command not available in this checkout: skipped")
        return
    floor = floor or stream(env)
    period = ["--since", START.date().isoformat(), "--until", (END + timedelta(days=1)).date()
              .isoformat()] if "--since" in helped.stdout else []  # fmt: skip
    extra = ["--no-ingest"] if "--no-ingest" in helped.stdout else []
    for kind in REPORT_KINDS:
        out = out_dir / f"gitaudit-bench-report-{kind}.html"
        try:
            seconds, mib = time_v(_gitaudit("report", kind, *period, "--format", "html", "-o",
                                            str(out), *extra), env)  # fmt: skip
        except RuntimeError as exc:
            print(f"  report {kind:<6} failed, {exc}", flush=True)
            continue
        size = out.stat().st_size / 1024 if out.exists() else 0
        verdict = _report_verdict(events, seconds, mib)
        print(f"  report {kind:<6} wall {seconds:7.1f} s ({seconds / floor[0]:.2f}x the jsonl "
              f"stream), peak RSS {mib:6,.0f} MiB ({mib / floor[1]:.2f}x); {size:,.0f} KiB "
              f"HTML{verdict}", flush=True)
        out.unlink(missing_ok=True)


def _report_verdict(events: int, seconds: float, mib: float) -> str:
    """The issue's targets are stated for 1 million events; larger stores show the figures."""
    if events < 1_000_000:
        return ""
    if events > 2_000_000:
        return (" (the targets < 10 s, < 500 MB are for 1,000,000 events; memory "
                f"{_met(mib < REPORT_TARGET_MB)})")
    return (" (targets < 10 s, < 500 MB: "
            f"{_met(seconds < REPORT_TARGET_S and mib < REPORT_TARGET_MB)})")


def _met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def reader_env(url: str, scratch: Path) -> dict[str, str]:
    """The environment of the ``gitaudit`` commands: the bench store, no spool, no config."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GITAUDIT_", "XDG_")) and key != "PYTHONDONTWRITEBYTECODE"}
    env.update(GITAUDIT_DATABASE_URL=url, GITAUDIT_SPOOL_DIR=str(scratch / "no-spool"),
               GITAUDIT_CONFIG=str(scratch / "none.toml"))  # fmt: skip
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None, help="store file (made if absent)")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--base-runs", type=int, default=3, help="runs without the index (3)")
    parser.add_argument("--no-stream", action="store_true", help="skip the full jsonl stream")
    parser.add_argument("--no-wall", action="store_true", help="skip the whole commands")
    parser.add_argument("--no-reports", action="store_true", help="skip the reports")
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    options = parser.parse_args()
    path, seconds = cached_store(options.events, options.db)
    if seconds is not None:
        print(f"generated {options.events:,} events in {seconds:.0f}s into {path}")
    url = f"sqlite:///{path}"
    env = reader_env(url, path.parent)
    print(f"store {path} ({path.stat().st_size / 2**30:.1f} GiB); load average "
          f"{os.getloadavg()[0]:.1f} at start", flush=True)
    in_process(url, options.runs, options.base_runs, options.explain)
    if not options.no_wall:
        wall(url, env, options.runs, options.base_runs)
    floor = None if options.no_stream else stream(env)
    if not options.no_reports:
        reports(env, options.events, floor, path.parent)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
