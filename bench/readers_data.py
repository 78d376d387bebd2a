"""A large, realistic store for the reader benchmarks, written through the real writer.

``python bench/readers_data.py DB N [--bulk]`` writes N events (valid, hash-chained,
indexed and searchable exactly as the daemon would store them) into the SQLite file DB,
in batches through the store's chain writer. Plain: :meth:`Store.append` (what the
daemon does: ~5,000 events/s here, so 10 million take an hour). ``--bulk`` (what
:func:`cached_store` uses) loads much faster and ends with the same database: the
same :class:`ChainWriter` seals, inserts and adds each batch to the full-text index,
but into a file opened with ``synchronous=OFF`` (a crash mid-load loses the file, not
evidence: it is built under a temporary name and renamed when complete), and the
secondary indexes are dropped first and rebuilt at the end from their own DDL
(sorting once instead of updating 17 B-trees per row), then ANALYZE runs as the
store runs it. ``tests/test_bench_data.py`` checks that both paths store identical
rows and that ``gitaudit verify`` passes. Ids are UUIDv7 of the event's time, as
every capture path makes them. The mix: 200 users (one busy: ~7 % of all
events), 300 repositories, 20 hosts, 90 days; a 1,000-event CI job
(correlation ``job-trace``) and a Claude Code session (``cc-session-1``) with
prompts, tool calls and the git events its agent ran; the word ``zebracorn``
in 20 commit messages (a rare term) and ``origin`` in most events (a common one).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import random
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from gitaudit.catalog import uuid7
from gitaudit.store import Store, migrate
from gitaudit.store.engine import ANALYSIS_LIMIT, create_store_engine, write_transaction
from gitaudit.store.integrity import ChainHasher
from gitaudit.store.writer import ChainWriter

START = datetime(2026, 9, 1, tzinfo=UTC)
SPAN_S = 90 * 86400
OPS = (
    ("git.fetch", 30), ("git.commit", 20), ("git.push", 12), ("git.pull", 10),
    ("git.checkout", 10), ("git.clone", 3), ("git.rebase", 3), ("git.merge", 3),
    ("ref.update", 5), ("conflict.detected", 1), ("conflict.resolved", 1), ("git.other", 2),
)  # fmt: skip
TRACE_JOB = "job-trace"
SESSION = "cc-session-1"
RARE = "zebracorn"
COMMON = "origin"
CHAIN = "bench-host"
# Where the benches share their stores (the startup bench reads the 1M one too).
CACHED = {1_000_000: "gitaudit-bench-1m.db", 10_000_000: "gitaudit-bench-10m.db"}


def _event(rng: random.Random, moment: datetime, **over: Any) -> dict[str, Any]:
    user = "busy" if rng.random() < 0.07 else f"user{rng.randrange(200)}"
    repo = f"repo{rng.randrange(300)}"
    operation = over.pop("operation", None) or rng.choices(
        [op for op, _ in OPS], [weight for _, weight in OPS])[0]
    details: dict[str, Any] = {"argv": ["git", operation.split(".")[-1], "origin"],
                               "remote": "origin"}
    if operation == "git.commit":
        details["argv"] = ["git", "commit", "-m", f"fix {rng.choice(['parser', 'cli', 'docs'])}"]
    if operation == "git.push":
        details["refs"] = [{"ref": "refs/heads/main", "forced": rng.random() < 0.02}]
    failed = rng.random() < 0.05
    event = {
        "id": uuid7(int(moment.timestamp() * 1000), rng.randbytes(10)), "schema_version": 1,
        "occurred_at": moment.isoformat().replace("+00:00", "Z"),
        "duration_ms": round(rng.lognormvariate(4, 1), 3), "operation": operation,
        "category": "update", "outcome": "failure" if failed else "success",
        "severity": "high" if rng.random() < 0.01 else "low", "source": "trace2",
        "correlation_id": f"job-{rng.randrange(10**9)}", "parent_id": None,
        "actor": {"uid": 1000, "user": user, "git_name": user.title(),
                  "git_email": f"{user}@example.com", "host": f"host{rng.randrange(20)}",
                  "verified": True},
        "repo": {"path": f"/src/{repo}", "name": repo, "branch": rng.choice(["main", "dev"]),
                 "remote": f"https://git.example.com/{repo}.git"},
        "result": {"exit_code": 1 if failed else 0,
                   "error": "fatal: could not read from remote" if failed else None},
        "details": details,
    }  # fmt: skip
    event.update(over)
    return event


def _specials(rng: random.Random, count: int) -> dict[int, dict[str, Any]]:
    """Events placed at chosen positions: the traced job, the session, the rare term."""
    out: dict[int, dict[str, Any]] = {}
    base = count // 2
    for index in range(1000):
        out[base + index] = {"correlation_id": TRACE_JOB, "operation": None}
    session_at = count // 3
    out[session_at] = {"operation": "claude.session", "source": "claude_code",
                       "correlation_id": SESSION, "details": {"session_id": SESSION,
                                                              "phase": "start"}}
    for tool in range(20):
        out[session_at + 1 + tool * 2] = {
            "operation": "claude.tool_use", "source": "claude_code", "correlation_id": SESSION,
            "details": {"session_id": SESSION, "tool_name": "Bash", "tool_use_id": f"tu{tool}",
                        "tool_input": {"command": "git commit -m agent"}}}
        out[session_at + 2 + tool * 2] = {
            "operation": "git.commit", "correlation_id": SESSION,
            "actor": {"user": "dev", "host": "host1", "verified": True, "agent": {
                "tool": "claude-code", "session_id": SESSION, "tool_use_id": f"tu{tool}",
                "verified": True}}}
    for _ in range(20):
        out[rng.randrange(count)] = {
            "operation": "git.commit",
            "details": {"argv": ["git", "commit", "-m", f"add the {RARE} parser"]}}
    return out


def _records(count: int) -> Iterator[dict[str, Any]]:
    """The ``count`` events of the store, oldest first (the same ones on every call)."""
    rng = random.Random(7)
    specials = _specials(rng, count)
    step = SPAN_S / count
    for index in range(count):
        moment = START + timedelta(seconds=index * step + rng.random() * step)
        yield _event(rng, moment, **specials.get(index, {}))


def _batches(count: int, batch: int) -> Iterator[list[dict[str, Any]]]:
    records = _records(count)
    while chunk := [record for _, record in zip(range(batch), records, strict=False)]:
        yield chunk


def generate(url: str, count: int, batch: int = 20_000, *, bulk: bool = False) -> float:
    """Write ``count`` events to ``url`` (``bulk``: see the module docstring); seconds taken."""
    started = time.perf_counter()
    if bulk:
        _bulk_load(url, count, batch)
        return time.perf_counter() - started
    with Store.open(url, chain_id=CHAIN) as store:
        for records in _batches(count, batch):
            store.append(records)
    return time.perf_counter() - started


def _unsynchronized(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    dbapi_connection.execute("PRAGMA synchronous = OFF")
    dbapi_connection.execute("PRAGMA cache_size = -1000000")  # 1 GB


def _bulk_load(url: str, count: int, batch: int) -> None:
    migrate(url)
    engine = create_store_engine(url)
    event.listen(engine, "connect", _unsynchronized)  # after the store's own settings
    try:
        indexes = _drop_secondary_indexes(engine)
        writer = ChainWriter(CHAIN, ChainHasher(None))
        for records in _batches(count, batch):
            with write_transaction(engine) as conn:
                writer.append(conn, records)
        with engine.begin() as conn:
            for sql in indexes:
                conn.exec_driver_sql(sql)
            conn.exec_driver_sql(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
            conn.exec_driver_sql("ANALYZE")
            conn.exec_driver_sql("PRAGMA optimize")
    finally:
        engine.dispose()  # the last connection closed folds the WAL into the file


def _drop_secondary_indexes(engine: Engine) -> list[str]:
    """Drop the events table's own indexes (not its key constraints); their DDL."""
    with engine.begin() as conn:
        found = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' "
            "AND sql IS NOT NULL").all()
        for name, _ in found:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
    return [sql for _, sql in found]


def cached_store(count: int, path: Path | None = None) -> tuple[Path, float | None]:
    """A store of ``count`` events at ``path`` (default: the shared one in the temporary
    directory), made by the bulk path if absent, under a lock so that two benches never
    build it twice; the seconds it took to make, or None when it was there."""
    path = path or Path(tempfile.gettempdir()) / CACHED.get(
        count, f"gitaudit-bench-{count}.db")
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path, None
        partial = path.with_name(path.name + ".partial")
        for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        seconds = generate(f"sqlite:///{partial}", count, batch=50_000, bulk=True)
        partial.rename(path)
        return path, seconds


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("events", type=int)
    parser.add_argument("--bulk", action="store_true", help="the fast path (see above)")
    options = parser.parse_args()
    seconds = generate(f"sqlite:///{options.db}", options.events, bulk=options.bulk)
    print(f"wrote {options.events:,} events to {options.db} in {seconds:.1f}s "
          f"({options.events / seconds:,.0f}/s)")
