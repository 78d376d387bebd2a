"""``gitaudit verify --jobs N``: chains (and long chains cut into seq ranges) in N processes.

Verifying is CPU-bound (parse and hash every body), so on a multi-core host N
processes go about N times as fast. The parent plans in one snapshot: every
registered chain's seq span, its newest store checkpoint, and ranges of about
``total / (2 N)`` rows. Each worker opens its own connection and checks one range
exactly as the sequential verify would check those rows: a range after the first
starts from the row just before it (its seq and stored hash: the worker of the
previous range checks that row itself), so a gap or a broken link at a range
boundary is found too. The parent merges the ranges of a chain in seq order
(first problem wins, counts add up) and applies the tail check against the
newest checkpoint it read.

A store that retention has cut is verified in parallel too: the parent reads the
retained-prefix state (:class:`~gitaudit.store.integrity.RetainedPrefix`: grants and
the cuts ``audit.retention`` records state) once, the worker of each chain's first
range gets it with the checkpoint at the cut, and so accounts for a missing
prefix exactly as the sequential walk does; the parent applies the checks that
need the whole chain (a grant no record accounts for, a chain with no records left).

Each worker sees its own snapshot, bounded by the parent's plan (rows appended
after the plan are not read, checkpoints past the planned head are not
considered), so a writer appending meanwhile does not disturb the result.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, Final

from sqlalchemy import Connection, func, select

from gitaudit.store.integrity import (
    ChainReport,
    Problem,
    Progress,
    RetainedPrefix,
    VerifyReport,
    _chain_ids,
    _ChainCheck,
    _marks,
    _unregistered,
    hasher_for_chain,
)
from gitaudit.store.tables import chains, checkpoints, events

MIN_RANGE_ROWS: Final = 20_000


@dataclass(frozen=True)
class _Range:
    """One worker task: rows ``lo..hi`` of a chain."""

    index: int
    url: str
    chain_id: str
    algorithm: str
    fingerprint: str | None
    key: bytes | None
    lo: int
    hi: int
    first: bool
    newest_mark: int
    retained: RetainedPrefix | None = None  # the first range's: how a cut prefix is accounted


@dataclass(frozen=True)
class _Outcome:
    index: int
    records: int
    rejected: int
    first_seq: int | None
    last_seq: int | None
    problem: Problem | None


def _check_range(task: _Range) -> _Outcome:
    """Verify one range in its own connection (runs in a worker process)."""
    from gitaudit.store.engine import create_store_engine, snapshot
    from gitaudit.store.verify_fast import feed_chain

    engine = create_store_engine(task.url, read_only=task.url.startswith("sqlite"))
    try:
        with snapshot(engine) as conn:
            hasher = hasher_for_chain(task.chain_id, task.algorithm, task.fingerprint, task.key)
            marks = {
                int(seq): str(value)
                for seq, value in conn.execute(
                    select(checkpoints.c.seq, checkpoints.c.hash).where(
                        checkpoints.c.chain_id == task.chain_id,
                        # the first range also needs the checkpoint a retention cut left
                        checkpoints.c.seq.between(task.lo - 1 if task.first else task.lo, task.hi),
                    )
                )
            }
            check = _ChainCheck(task.chain_id, hasher, marks, task.retained)
            check.newest_mark = task.newest_mark
            if not task.first:
                _start_after_previous_row(conn, check, task.lo)
            feed_chain(conn, check, 0, 0, None, 1, (task.lo, task.hi))
    finally:
        engine.dispose()
    return _Outcome(
        task.index, check.records, check.rejected, check.first_seq, check.last_seq, check.problem
    )


def _start_after_previous_row(conn: Connection, check: _ChainCheck, lo: int) -> None:
    row = conn.execute(
        select(events.c.seq, events.c.hash)
        .where(events.c.chain_id == check.chain_id, events.c.seq < lo)
        .order_by(events.c.seq.desc())
        .limit(1)
    ).first()
    if row is not None:
        check.expected_seq = int(row.seq) + 1
        check.prev_hash = str(row.hash)


def _plan(
    conn: Connection, url: str, key: bytes | None, jobs: int
) -> tuple[list[_Range], list[ChainReport], dict[str, Any]]:
    """Ranges to check, reports of unregistered chains, and each chain's info."""
    registered = {row.chain_id: row for row in conn.execute(select(chains))}
    spans = {
        chain_id: (int(lo), int(hi), int(count))
        for chain_id, lo, hi, count in conn.execute(
            select(
                events.c.chain_id, func.min(events.c.seq), func.max(events.c.seq), func.count()
            ).group_by(events.c.chain_id)
        )
    }
    newest = dict(
        conn.execute(
            select(checkpoints.c.chain_id, func.max(checkpoints.c.seq)).group_by(
                checkpoints.c.chain_id
            )
        ).all()
    )
    retained = RetainedPrefix.load(conn)
    total = sum(count for _, _, count in spans.values())
    size = max(MIN_RANGE_ROWS, math.ceil(total / (2 * jobs)))
    ranges: list[_Range] = []
    unregistered: list[ChainReport] = []
    for chain_id in _chain_ids(conn):
        info = registered.get(chain_id)
        if info is None:
            unregistered.append(_unregistered(conn, chain_id))
            continue
        hasher_for_chain(chain_id, info.algorithm, info.key_fingerprint, key)  # key fits?
        if chain_id not in spans:
            continue
        lo, hi, count = spans[chain_id]
        pieces = max(1, math.ceil(count / size))
        width = math.ceil((hi - lo + 1) / pieces)
        for start in range(lo, hi + 1, width):
            ranges.append(_Range(
                len(ranges), url, chain_id, info.algorithm, info.key_fingerprint, key,
                start, min(hi, start + width - 1), start == lo, int(newest.get(chain_id) or 0),
                retained if start == lo else None,
            ))  # fmt: skip
    facts = {"registered": registered, "newest": newest, "total": total, "retained": retained}
    return ranges, unregistered, facts


def verify_chains_parallel(
    conn: Connection, url: str, key: bytes | None, jobs: int, progress: Progress | None = None
) -> VerifyReport:
    """:func:`~gitaudit.store.integrity.verify_chains` with ``jobs`` worker processes."""
    ranges, reports, info = _plan(conn, url, key, jobs)
    total = info["total"]
    outcomes: dict[int, _Outcome] = {}
    done = 0
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_check_range, task) for task in ranges]
        for future in as_completed(futures):
            outcome = future.result()
            outcomes[outcome.index] = outcome
            done += outcome.records
            if progress is not None:
                progress(done, total)
    by_chain: dict[str, list[_Outcome]] = {}
    for task in ranges:
        by_chain.setdefault(task.chain_id, []).append(outcomes[task.index])
    for chain_id, row in info["registered"].items():
        parts = by_chain.get(chain_id, [])
        check = _ChainCheck(chain_id, hasher_for_chain(
            chain_id, row.algorithm, row.key_fingerprint, key
        ), {} if parts else _marks(conn, chain_id), info["retained"])  # fmt: skip
        check.newest_mark = int(info["newest"].get(chain_id) or 0)
        for part in parts:
            check.records += part.records
            check.rejected += part.rejected
            check.first_seq = part.first_seq if check.first_seq is None else check.first_seq
            check.last_seq = part.last_seq if part.last_seq is not None else check.last_seq
            check.problem = check.problem or part.problem
        if check.last_seq is not None:
            check.expected_seq = check.last_seq + 1
        reports.append(check.finish())
    if progress is not None:
        progress(done, max(total, done))
    return VerifyReport(sorted(reports, key=lambda report: report.chain_id))
