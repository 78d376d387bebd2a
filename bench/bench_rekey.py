"""Benchmark: ``gitaudit db rekey`` against ``gitaudit verify`` of the same store.

    python bench/bench_rekey.py [--events 100000] [--postgresql]

A store (SQLite file, or a throw-away PostgreSQL 15 with ``--postgresql``) is filled
with realistic records (``bench_ingest.realistic_record``) through the store writer with
the pseudonymizer switched off, as before revision 0007 (clear identities in every
body), in 500-event batches. Then, in the same run: ``verify`` (one process), ``rekey
--dry-run`` (the plan: every body read and probed), ``rekey`` (plan, verify of the chain
in its transaction, rewrite, scrub), ``verify`` again and a second ``rekey`` (nothing to
do). Prints seconds, events/s and each as a multiple of the first ``verify``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
for entry in (str(REPO_ROOT), str(REPO_ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from bench_subjects import _Off, _records  # noqa: E402

from gitaudit.events import Event  # noqa: E402
from gitaudit.store import Store  # noqa: E402
from gitaudit.store.rekey import ChainRekey, details  # noqa: E402


def _record(chain: ChainRekey, rekey_id: str) -> dict[str, Any]:
    return Event.model_validate({
        "id": "018f0000-0000-7000-8000-" + rekey_id[-12:], "occurred_at": "2026-12-04T00:00:00Z",
        "operation": "audit.store_rekeyed", "category": "update", "outcome": "success",
        "source": "cli", "correlation_id": rekey_id, "actor": {"host": "bench"},
        "details": details(chain, rekey_id),
    }).to_record()  # fmt: skip


@contextlib.contextmanager
def _url(postgresql: bool, tmp: str) -> Iterator[str]:
    if not postgresql:
        yield f"sqlite:///{tmp}/rekey.db"
        return
    from tests.pg import throwaway_cluster

    with throwaway_cluster() as server:
        server.admin("CREATE DATABASE bench")
        yield server.url("bench")


def _timed(label: str, action: Callable[[], Any], rows: int, base: float | None) -> float:
    started = time.perf_counter()
    action()
    took = time.perf_counter() - started
    ratio = f"{took / base:6.2f}x verify" if base else "  (baseline)"
    print(f"{label:<22} {took:8.2f} s  {rows / took:10,.0f} events/s  {ratio}", flush=True)
    return took


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events (100000)")
    parser.add_argument("--postgresql", action="store_true", help="a throw-away PostgreSQL 15")
    args = parser.parse_args(argv)
    records = _records(args.events)
    with tempfile.TemporaryDirectory(prefix="gitaudit-bench-") as tmp, \
            _url(args.postgresql, tmp) as url:  # fmt: skip
        with Store.open(url, chain_id="before-0007") as store:
            store._writer.subjects = _Off()  # the writer as it was before 0007
            started = time.perf_counter()
            for start in range(0, len(records), 500):
                store.append(records[start : start + 500])
            print(f"filled {len(records):,} events in {time.perf_counter() - started:.1f} s")
        with Store.open(url, chain_id="rekey") as store:
            rows = len(records)
            base = _timed("verify", lambda: store.verify().ok or sys.exit("verify failed"),
                          rows, None)  # fmt: skip
            _timed("rekey --dry-run", lambda: store.rekey(_record, dry_run=True), rows, base)
            report: list[Any] = []
            _timed("rekey", lambda: report.append(store.rekey(_record)), rows, base)
            rewritten = sum(chain.rewritten for chain in report[0].chains)
            print(f"  rewritten {rewritten:,} records, scrubbed: {report[0].scrubbed}")
            _timed("verify after", lambda: store.verify().ok or sys.exit("verify failed"),
                   rows, base)  # fmt: skip
            _timed("rekey again (no-op)", lambda: store.rekey(_record), rows, base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
