"""Audit overhead per Claude call: AuditedAnthropic vs the plain SDK client, same run.

    .venv/bin/python bench/bench_claude_client.py [--calls 3000] [--alloc-calls 10000]

Both clients are the real ``anthropic`` SDK with the same instant fake endpoint
(an ``httpx2.MockTransport`` answering a prebuilt message; nothing reaches the
network). The audited one records every call as usual: pipeline in the
caller's thread, delivery to a spool (no daemon) on its background thread.
Calls are timed one by one, in alternating blocks of both clients so machine
noise hits both alike; the figure is the difference of the medians (target:
under 1 ms added per call).

Allocation growth: with ``tracemalloc`` on, after a warm-up, the traced
memory still held after ``--alloc-calls`` more calls (queue flushed, garbage
collected), for each client; target: the audited client adds no growth over
the plain one (a difference within a few KiB, i.e. nothing kept per call).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import anthropic  # noqa: E402
import httpx2  # noqa: E402

from gitaudit import config  # noqa: E402
from gitaudit.claude import AuditedAnthropic, flush  # noqa: E402

BODY = json.dumps({
    "id": "msg_bench", "type": "message", "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Resolved: keep both changes."}],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 1800, "output_tokens": 120,
              "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1024},
}).encode()  # fmt: skip
CONFLICT = "<<<<<<< ours\na = 1\n=======\na = 2\n>>>>>>> theirs\n"
ASK: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 2048,
    "system": "You resolve git merge conflicts.",
    "messages": [{"role": "user", "content": CONFLICT * 20}],
}  # fmt: skip
TARGET_MS = 1.0


def _answer(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(
        200, content=BODY,
        headers={"content-type": "application/json", "request-id": "req_bench"},
    )  # fmt: skip


def _transport() -> httpx2.Client:
    return httpx2.Client(transport=httpx2.MockTransport(_answer))


def clients(tmp: Path) -> tuple[anthropic.Anthropic, AuditedAnthropic]:
    settings = config.Settings({
        "spool_dir": str(tmp / "spool"), "runtime_dir": str(tmp / "no-daemon"),
    })  # fmt: skip
    plain = anthropic.Anthropic(api_key="sk-bench", max_retries=0, http_client=_transport())
    audited = AuditedAnthropic(
        api_key="sk-bench", max_retries=0, http_client=_transport(), audit_settings=settings
    )
    return plain, audited


def per_call(client: anthropic.Anthropic, count: int) -> list[float]:
    """Milliseconds of each of ``count`` calls."""
    times = []
    create = client.messages.create
    for _ in range(count):
        start = time.perf_counter()
        create(**ASK)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def overhead(plain: anthropic.Anthropic, audited: AuditedAnthropic, calls: int) -> None:
    per_call(plain, 200)  # warm-up: imports, pools, caches
    per_call(audited, 200)
    flush()
    base: list[float] = []
    ours: list[float] = []
    block = 100
    for _ in range(max(calls // block, 1)):
        base += per_call(plain, block)
        ours += per_call(audited, block)
    flush()
    med_base, med_ours = statistics.median(base), statistics.median(ours)
    p90 = statistics.quantiles
    print(f"calls per client: {len(base)} (alternating blocks of {block})")
    print(f"plain SDK   median {med_base:.3f} ms  p90 {p90(base, n=10)[-1]:.3f} ms")
    print(f"audited     median {med_ours:.3f} ms  p90 {p90(ours, n=10)[-1]:.3f} ms")
    added = med_ours - med_base
    verdict = "OK" if added < TARGET_MS else "OVER TARGET"
    print(f"added per call (median): {added:.3f} ms  ratio {med_ours / med_base:.2f}x  "
          f"target < {TARGET_MS} ms: {verdict}")  # fmt: skip


def clear_bounded_caches() -> None:
    """Empty the sanitizer's bounded caches (at most 8,192 strings each, cleared when full)."""
    from gitaudit.sanitize import Redactor

    for obj in gc.get_objects():
        if isinstance(obj, Redactor):
            obj._text_cache.clear()
            obj._key_cache.clear()


def growth(
    client: anthropic.Anthropic, calls: int, steps: int = 5, *, without_caches: bool = False
) -> list[int]:
    """Traced bytes held at ``steps`` checkpoints over ``calls`` calls, relative to a warmed-up
    start (queue flushed and garbage collected at each checkpoint; with ``without_caches``, the
    sanitizer's bounded caches emptied too, so what is left is what calls keep)."""
    per_call(client, 2000)  # warm-up: bounded caches (the sanitizer's) fill to their limit
    marks = []
    before = 0
    for step in range(steps + 1):
        if step:
            per_call(client, calls // steps)
        flush()
        if without_caches:
            clear_bounded_caches()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
        if step:
            marks.append(held - before)
        else:
            before = held
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--alloc-calls", type=int, default=10000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ga-bench-claude-") as folder:
        plain, audited = clients(Path(folder))
        overhead(plain, audited, args.calls)
        tracemalloc.start()
        grown_plain = growth(plain, args.alloc_calls)
        grown_ours = growth(audited, args.alloc_calls)
        kept_ours = growth(audited, args.alloc_calls, without_caches=True)
        tracemalloc.stop()
        lines = sum(
            len(path.read_bytes().splitlines())
            for path in (Path(folder) / "spool").glob("*.jsonl")
        )
    def kib(marks: list[int]) -> str:
        return " ".join(f"{mark / 1024:+.1f}" for mark in marks)

    added = grown_ours[-1] - grown_plain[-1]
    print(f"traced memory vs warmed-up start, KiB, every {args.alloc_calls // 5} calls:")
    print(f"  plain   {kib(grown_plain)}")
    print(f"  audited {kib(grown_ours)}")
    print(f"added growth over {args.alloc_calls} calls: {added / 1024:.1f} KiB "
          f"({added / args.alloc_calls:.1f} B per call; the sanitizer's string cache is bounded "
          "at 8192 entries and cleared when full, so the audited line is a sawtooth)")
    kept = kept_ours[-1] - grown_plain[-1]
    print(f"  audited, the sanitizer's bounded caches emptied at each mark: {kib(kept_ours)}")
    print(f"added growth over {args.alloc_calls} calls without those caches: {kept / 1024:.1f} KiB "
          f"({kept / args.alloc_calls:.1f} B per call)")
    print(f"events spooled by the audited client: {lines}")


if __name__ == "__main__":
    main()
