"""Benchmark: what pseudonymizing identities costs the writer, and revealing them the readers.

    python bench/bench_subjects.py [--events 20000]

Same process, same realistic records (``bench_ingest.realistic_record``), best of 3:

- append: ``Store.append`` in 500-event batches into a fresh SQLite store, with the
  subject pseudonymizer (:mod:`gitaudit.store.subjects`) and with it switched off;
- read: every event back through ``iter_events`` (revealed) and as raw bodies parsed
  with ``json.loads`` (what reading cost before identities were pseudonymized).

Prints events/s and the ratios (with / without).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
for entry in (str(REPO_ROOT), str(REPO_ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from bench_ingest import realistic_record  # noqa: E402

from gitaudit.store import EventFilter, Store  # noqa: E402
from gitaudit.store.reader import iter_bodies, iter_events  # noqa: E402
from gitaudit.store.subjects import Pseudonymizer  # noqa: E402


class _Off(Pseudonymizer):
    """The writer without pseudonyms."""

    def begin(self, conn: Any) -> None:
        """Nothing to check."""

    def record(self, conn: Any, record: dict[str, Any]) -> dict[str, Any]:
        """The record as given."""
        return record


def _records(count: int) -> list[dict[str, Any]]:
    rng = random.Random(20261122)
    found = []
    for index in range(count):
        try:
            found.append(realistic_record(index, rng))
        except ValueError:  # a record today's validation refuses: not this bench's concern
            continue
    return found


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events (20000)")
    args = parser.parse_args(argv)
    records = _records(args.events)
    best = {"on": 1e9, "off": 1e9, "raw": 1e9, "revealed": 1e9}
    with tempfile.TemporaryDirectory(prefix="gitaudit-bench-") as tmp:
        for attempt in range(3):
            for mode in ("off", "on"):
                with Store.open(f"sqlite:///{tmp}/{mode}{attempt}.db", chain_id="b") as store:
                    if mode == "off":
                        store._writer.subjects = _Off()
                    started = time.perf_counter()
                    for start in range(0, len(records), 500):
                        store.append(records[start : start + 500])
                    best[mode] = min(best[mode], time.perf_counter() - started)
        with Store.open(f"sqlite:///{tmp}/on0.db", chain_id="b") as store:
            for _ in range(3):
                with store.reading() as conn:
                    started = time.perf_counter()
                    for body in iter_bodies(conn, EventFilter()):
                        json.loads(body)
                    best["raw"] = min(best["raw"], time.perf_counter() - started)
                    started = time.perf_counter()
                    for _event in iter_events(conn, EventFilter()):
                        pass
                    best["revealed"] = min(best["revealed"], time.perf_counter() - started)
    count = len(records)
    print(f"{count} events (of {args.events} generated; the rest fail validation)")
    for name, seconds in best.items():
        print(f"{name:>9}: {count / seconds:9,.0f} events/s  ({seconds:.2f}s)")
    print(f"append with pseudonyms / without:  {best['off'] / best['on']:.2f}x")
    print(f"read revealed / raw + json.loads:  {best['raw'] / best['revealed']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
