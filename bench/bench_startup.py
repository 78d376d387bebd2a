"""A reader's start-up: `gitaudit log --limit 20` on a store of 1 million events.

    python bench/bench_startup.py [--events N] [--db PATH] [--runs R] [--baseline REF]

Measures, in this same run (figures on a busy machine are noisy: read the ratios):

- the floors: a bare ``python -c pass``, ``import sqlalchemy``, ``import typer``, both,
  a one-option Typer command actually run (Typer 0.29 validates every value through
  pydantic, which it imports then), the newest 20 rows read through SQLAlchemy Core, and
  that query with that command: the least any Typer + SQLAlchemy Core reader costs; and
  the same rows read with the stdlib ``sqlite3`` under that command (a reader without
  SQLAlchemy on its path: the most a compiled-SQL cache replayed with sqlite3 could give);
- ``gitaudit log --limit 20 --no-ingest``, wall time with the process start, p50/p95;
- the same query inside one warm process (``Store.iter_query``): the query itself; and
  in a fresh process once the modules are imported: opening the store (its schema check),
  compiling the statement and running it;
- what is left: the command minus the query, against the floors;
- with ``--baseline REF`` (e.g. ``main``), the same command from that commit's source
  (exported with ``git archive`` into a temporary directory), runs interleaved;
- the heaviest imports of the command (``-X importtime``, one run).

The store is generated once (:mod:`bench.readers_data`, ~2.5 GB per million events) and
reused: PATH defaults to ``$TMPDIR/gitaudit-bench-1m.db`` for a million events, which
other benchmarks share; it is created under ``PATH.lock`` (``flock``) and renamed into
place when complete, so concurrent runs never read a half-written store.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, print_importtime
from bench.readers_data import generate
from gitaudit.store import EventFilter, Store

LOG = ("log", "--limit", "20", "--no-ingest")
CORE_FLOOR = (  # the newest 20 stored bodies through SQLAlchemy Core, argv[1] the store URL
    "import sys, sqlalchemy as sa\n"
    "events = sa.table('events', sa.column('body'), sa.column('occurred_at'))\n"
    "query = sa.select(events.c.body).order_by(events.c.occurred_at.desc()).limit(20)\n"
    "with sa.create_engine(sys.argv[1]).connect() as conn:\n"
    "    conn.execute(query).all()\n"
)
STDLIB_QUERY = (  # the same rows with the stdlib driver: what no SQLAlchemy on the path gives
    "import sys, sqlite3\n"
    "conn = sqlite3.connect(sys.argv[1].removeprefix('sqlite:///'))\n"
    "conn.execute('SELECT body FROM events ORDER BY occurred_at DESC LIMIT 20').fetchall()\n"
)
TYPER_FLOOR = (
    "import typer\n"
    "app = typer.Typer(add_completion=False)\n"
    "@app.command()\n"
    "def main(limit: int = 20) -> None: pass\n"
    "app(['--limit', '20'], standalone_mode=False)\n"
)


def ensure_store(path: Path, events: int) -> None:
    """Generate ``events`` events into ``path`` unless a complete store is there already."""
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return
        partial = Path(f"{path}.partial-{os.getpid()}")
        seconds = generate(f"sqlite:///{partial}", events)
        with contextlib.closing(sqlite3.connect(partial)) as conn:  # fold the WAL in
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for suffix in ("-wal", "-shm"):
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
        partial.rename(path)
        print(f"generated {events:,} events in {seconds:.0f}s into {path}")


@contextlib.contextmanager
def exported(ref: str) -> Iterator[Path]:
    """The package and migrations of commit ``ref``, in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="gitaudit-baseline-") as folder:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "gitaudit",
                                  "migrations"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        yield Path(folder)


def _p(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(quantile * (len(ordered) - 1)))]


def _ms(values: list[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:7.1f} ms  p95 {_p(values, 0.95) * 1000:7.1f} ms"


def _timed(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of ``argv``."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{argv} exited with {process.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


Timings = dict[str, tuple[list[float], list[float]]]


def _interleaved(cases: dict[str, Callable[[], tuple[float, float]]], runs: int) -> Timings:
    """Each case ``runs`` times, round-robin (one warm-up round first, not counted), so that
    a change of load on a shared machine weighs on every case alike: (walls, CPU times)."""
    for run in cases.values():
        run()
    out: Timings = {name: ([], []) for name in cases}
    for _ in range(runs):
        for name, run in cases.items():
            wall, cpu = run()
            out[name][0].append(wall)
            out[name][1].append(cpu)
    return out


FIRST_QUERY = (  # imports done: open the store (schema check) and run the query once
    "import sys, time\n"
    "from gitaudit.store import EventFilter, Store\n"
    "start = time.perf_counter()\n"
    "with Store.open(sys.argv[1], chain_id='bench', migrate=False) as store:\n"
    "    list(store.iter_query(EventFilter(limit=20)))\n"
    "print(time.perf_counter() - start)\n"
)


def _first_query(url: str, env: dict[str, str], cwd: str, runs: int) -> list[float]:
    """Opening the store and the first query (compiled then), in fresh processes."""
    return [float(subprocess.run([sys.executable, "-c", FIRST_QUERY, url], env=env, cwd=cwd,
                                 capture_output=True, text=True, check=True).stdout)
            for _ in range(runs)]  # fmt: skip


def _query_in_process(url: str, runs: int) -> list[float]:
    flt = EventFilter(limit=20)
    with Store.open(url, chain_id="bench", migrate=False) as store:
        list(store.iter_query(flt))  # warm: connection, statement cache, page cache
        out = []
        for _ in range(runs):
            start = time.perf_counter()
            list(store.iter_query(flt))
            out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--baseline", metavar="REF", help="also time REF's source (e.g. main)")
    options = parser.parse_args()
    name = "1m" if options.events == 1_000_000 else str(options.events)
    path = options.db or Path(tempfile.gettempdir()) / f"gitaudit-bench-{name}.db"
    ensure_store(path, options.events)
    url = f"sqlite:///{path}"
    work = tempfile.mkdtemp(prefix="gitaudit-startup-")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GITAUDIT_", "XDG_", "PYTHON"))}  # fmt: skip
    env.update(GITAUDIT_DATABASE_URL=url, GITAUDIT_SPOOL_DIR=f"{work}/no-spool",
               GITAUDIT_CONFIG=f"{work}/none.toml", PYTHONPATH=str(ROOT))  # fmt: skip
    python = sys.executable

    def floor(code: str) -> Callable[[], tuple[float, float]]:
        return lambda: _timed([python, "-c", code, url], env, work)

    def log(environ: dict[str, str]) -> Callable[[], tuple[float, float]]:
        return lambda: _timed([python, "-m", "gitaudit", *LOG], environ, work)

    cases = {
        "python -c pass": floor("pass"),
        "python -c 'import sqlalchemy'": floor("import sqlalchemy"),
        "python -c 'import typer'": floor("import typer"),
        "python -c 'import sqlalchemy, typer'": floor("import sqlalchemy, typer"),
        "a one-option Typer command, run": floor(TYPER_FLOOR),
        "a Core query of 20 rows, no Typer": floor(CORE_FLOOR),
        "that Core query + that Typer command": floor(CORE_FLOOR + TYPER_FLOOR),
        "the query with sqlite3 + that Typer command": floor(STDLIB_QUERY + TYPER_FLOOR),
        "gitaudit log --limit 20 --no-ingest": log(env),
    }
    with contextlib.ExitStack() as stack:
        if options.baseline:
            folder = stack.enter_context(exported(options.baseline))
            baseline_env = {**env, "PYTHONPATH": str(folder)}
            cases[f"the same, {options.baseline}'s source"] = log(baseline_env)
        print(f"wall time, process start included, {options.runs} runs each, interleaved "
              f"(store: {path}):")
        times = _interleaved(cases, options.runs)
    query = _query_in_process(url, options.runs)
    for case, (walls, cpus) in times.items():
        print(f"  {case:<42} {_ms(walls)}   CPU p50 {statistics.median(cpus) * 1000:6.1f} ms")
    print(f"  {'the query alone, in a warm process':<42} {_ms(query)}")
    first = _first_query(url, env, work, options.runs)
    print(f"  {'open + first query, fresh process':<42} {_ms(first)}   (imports not counted: "
          "connect, schema check, compile, run)")
    for index, what in ((0, "wall"), (1, "CPU (user + system)")):
        median = {case: statistics.median(values[index]) for case, values in times.items()}
        command = median["gitaudit log --limit 20 --no-ingest"]
        start_up = command - statistics.median(query)
        bare, floor_both = median["python -c pass"], median["python -c 'import sqlalchemy, typer'"]
        run_floor = median["that Core query + that Typer command"]
        print(f"\n{what}: start-up (the command minus the query) {start_up * 1000:.1f} ms "
              f"(target: under 150 ms)")
        print(f"  floor 'import sqlalchemy, typer' {floor_both * 1000:.1f} ms; a Core query "
              f"and a Typer command run (pydantic) {run_floor * 1000:.1f} ms; the command above "
              f"that: {(command - run_floor) * 1000:.1f} ms")
        print(f"  the command is {command / bare:.1f}x a bare interpreter, "
              f"{command / floor_both:.2f}x the import floor, {command / run_floor:.2f}x the "
              "run floor")
        for case in cases:
            if case.startswith("the same,"):
                print(f"  {case}: {median[case] * 1000:.1f} ms, {median[case] / command:.2f}x "
                      "this checkout's command")
    print_importtime([python, "-X", "importtime", "-m", "gitaudit", *LOG], Path(work), env,
                     "gitaudit log --limit 20 --no-ingest", 25)


if __name__ == "__main__":
    main()
