"""Benchmark: spool -> store ingest against a plain SQLAlchemy executemany baseline.

    python bench/bench_ingest.py [--events 100000]

Spools N realistic, valid events into a temporary spool, times ``ingest()``
end to end (open + migrate a fresh SQLite store, parse, validate, hash-chain,
append in batches, delete the segments), then times a plain
``connection.execute(events.insert(), rows)`` of the very same rows into a
fresh store with the identical schema (same indexes, triggers and connection
settings). Prints events/s for both and their ratio (target: >= 0.3x).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import select  # noqa: E402

from gitaudit.config import Settings  # noqa: E402
from gitaudit.events import Event, category_for, severity_for, uuid7  # noqa: E402
from gitaudit.store import Store, ingest, migrate  # noqa: E402
from gitaudit.store.engine import create_store_engine  # noqa: E402
from gitaudit.store.tables import chains, events  # noqa: E402
from gitaudit.transport import spool  # noqa: E402

ingest_module = sys.modules["gitaudit.store.ingest"]

TARGET_RATIO = 0.3
USERS = [("alice", "Alice Liddell"), ("bob", "Bob Builder"), ("carol", "Carol Danvers")]
REPOS = ["platform", "billing", "website", "infra", "mobile-app"]
START = datetime(2026, 11, 1, tzinfo=UTC)


def _details(operation: str, rng: random.Random) -> dict[str, Any]:
    sha = f"{rng.getrandbits(160):040x}"
    if operation == "git.push":
        forced = rng.random() < 0.05
        return {
            "remote": "origin",
            "refs": [{"ref": "refs/heads/main", "old": sha, "new": sha[::-1], "created": False,
                      "deleted": False, "forced": forced}],
            "commit_count": rng.randint(1, 12),
        }
    if operation == "git.clone":
        return {"url": "https://git.example.com/acme/repo.git", "branch": "main", "depth": None,
                "target": "/home/dev/src/repo"}
    if operation == "git.rebase":
        return {"upstream": "origin/main", "onto": sha, "rewritten": [[sha, sha[::-1]]],
                "stopped_on_conflict": False}
    if operation == "conflict.detected":
        return {"files": [{"path": "src/app.py", "kind": "content", "resolution": None}]}
    if operation == "claude.request":
        return {"model": "claude-sonnet-4-5", "input_tokens": rng.randint(500, 9000),
                "output_tokens": rng.randint(50, 2000), "cost_usd": 0.0123,
                "latency_ms": rng.randint(400, 9000), "request_id": f"req_{sha[:24]}",
                "stop_reason": "end_turn", "prompt_sha256": sha + sha[:24]}
    return {"subcommand": operation.rsplit(".", maxsplit=1)[-1], "args": ["-q"]}


def realistic_record(index: int, rng: random.Random) -> dict[str, Any]:
    """One valid record, as capture and the pipeline would produce it."""
    operation = rng.choice(
        ["git.push", "git.fetch", "git.commit", "git.pull", "git.clone", "git.rebase",
         "git.checkout", "conflict.detected", "claude.request", "git.other"]
    )
    details = _details(operation, rng)
    user, name = rng.choice(USERS)
    repo = rng.choice(REPOS)
    outcome = "failure" if rng.random() < 0.07 else "success"
    return Event.model_validate(
        {
            "id": uuid7(),
            "occurred_at": (START + timedelta(seconds=index * 3)).isoformat(),
            "duration_ms": round(rng.uniform(5, 4000), 3),
            "operation": operation,
            "category": category_for(operation, details),
            "outcome": outcome,
            "severity": severity_for(operation, details, outcome),
            "source": rng.choice(["wrapper", "hook"]),  # what clients spool (not trace2)
            "correlation_id": f"gha-{index // 25}-1-build",
            "actor": {
                "uid": 1000 + USERS.index((user, name)),
                "user": user,
                "git_name": name,
                "git_email": f"{user}@example.com",
                "host": f"ci-runner-{index % 7}",
                "verified": True,
                "ci": {"provider": "github", "job": "build", "run": str(index // 25),
                       "pipeline": "ci.yml", "url": "https://github.com/acme/x/actions/runs/1"},
            },
            "repo": {
                "path": f"/home/{user}/src/{repo}",
                "remote": f"https://git.example.com/acme/{repo}.git",
                "name": repo,
                "branch": rng.choice(["main", "feature/login", "release/1.4"]),
                "head_before": f"{rng.getrandbits(160):040x}",
                "head_after": f"{rng.getrandbits(160):040x}",
            },
            "result": {"exit_code": 0 if outcome == "success" else 1,
                       "error": None if outcome == "success" else "fatal: remote rejected"},
            "details": details,
        }
    ).to_record()


def spool_events(spool_dir: Path, count: int) -> None:
    """Write ``count`` records into the spool in 1,000-event appends (default segment size)."""
    rng = random.Random(20261122)
    chunk: list[dict[str, Any]] = []
    for index in range(count):
        chunk.append(realistic_record(index, rng))
        if len(chunk) == 1000:
            spool.append(spool_dir, chunk, 8 * 1024 * 1024)
            chunk = []
    spool.append(spool_dir, chunk, 8 * 1024 * 1024)


def time_ingest(work: Path, count: int) -> tuple[float, str]:
    """Seconds for ingest() of the spool into a fresh store; returns the store URL too."""
    url = f"sqlite:///{work / 'ingest.db'}"
    settings = Settings({"database_url": url, "spool_dir": work / "spool", "chain_id": "bench"})
    started = time.perf_counter()
    report = ingest(settings)
    elapsed = time.perf_counter() - started
    if report.ingested != count or report.rejected:
        raise SystemExit(f"ingest stored {report.ingested} of {count} ({report.rejected} rejected)")
    return elapsed, url


def stored_rows(url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chains and events rows ingest wrote, to insert again for the baseline."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            chain_rows = [dict(row._mapping) for row in conn.execute(select(chains))]
            event_rows = [dict(row._mapping) for row in conn.execute(select(events))]
    finally:
        engine.dispose()
    return chain_rows, event_rows


def time_baseline(work: Path, url: str, batch: int | None = None) -> float:
    """Seconds for a plain executemany of the same rows into an identical fresh store.

    ``batch`` None: one executemany in one transaction; else one per ``batch`` rows.
    """
    chain_rows, event_rows = stored_rows(url)
    baseline_url = f"sqlite:///{work / f'baseline-{batch}.db'}"
    migrate(baseline_url)
    engine = create_store_engine(baseline_url)
    step = batch or len(event_rows)
    try:
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(chains.insert(), chain_rows)
        for start in range(0, len(event_rows), step):
            with engine.begin() as conn:
                conn.execute(events.insert(), event_rows[start : start + step])
        return time.perf_counter() - started
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to spool (100000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gitaudit-bench-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        spool_events(work / "spool", args.events)
        segments = len(spool.sealed_segments(work / "spool")) + 1
        print(f"spooled {args.events} events in ~{segments} segment(s) "
              f"({time.perf_counter() - started:.1f}s, not timed)")
        ingest_s, url = time_ingest(work, args.events)
        with Store.open(url, chain_id="bench") as store:
            if not store.verify().ok:
                raise SystemExit("the ingested chain does not verify")
        baseline_s = time_baseline(work, url)
        batched_s = time_baseline(work, url, ingest_module.BATCH_SIZE)
    ratio = baseline_s / ingest_s
    print(f"ingest():                      {args.events / ingest_s:9,.0f} events/s  "
          f"({ingest_s:.2f}s)")
    print(f"executemany baseline:          {args.events / baseline_s:9,.0f} events/s  "
          f"({baseline_s:.2f}s)")
    print(f"ratio:                         {ratio:9.2f}x  (target >= {TARGET_RATIO}x)")
    print(f"for reference, executemany in {ingest_module.BATCH_SIZE}-row transactions: "
          f"{args.events / batched_s:,.0f} events/s, ratio {batched_s / ingest_s:.2f}x")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
