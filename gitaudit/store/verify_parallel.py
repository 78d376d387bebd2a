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

A period (``gitaudit report soc2``) is planned the same way from
:func:`~gitaudit.store.integrity.verify_period`'s spans: each chain's seq span of the
period, cut into ranges, the first starting from the stored record before the
span, the tail held against the checkpoints that function holds it against.
:func:`plan` plans; :class:`Running` hands the ranges to the workers without
waiting, so the caller can do its own work meanwhile; :meth:`Running.result` waits and merges.
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import get_context
from typing import Final

from sqlalchemy import Connection, func, select

from gitaudit.store.integrity import (
    ChainHasher,
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
    period_marks,
    period_spans,
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


@dataclass(frozen=True)
class _Chain:
    """How the parent finishes one chain from its ranges' outcomes."""

    chain_id: str
    hasher: ChainHasher
    newest_mark: int
    retained: RetainedPrefix | None
    marks: dict[int, str]  # only for a chain without ranges (no records left)


@dataclass
class Plan:
    """What the workers check (``ranges``), how the parent finishes each chain from their
    outcomes, the chains already reported, and the rows to verify in all (``total``)."""

    ranges: list[_Range]
    chains: list[_Chain]
    reports: list[ChainReport]  # unregistered chains, reported as planned
    total: int


def _cut(lo: int, hi: int, count: int, size: int) -> list[tuple[int, int]]:
    """``lo..hi`` (``count`` rows) of a chain in ranges of about ``size`` rows."""
    pieces = max(1, math.ceil(count / size))
    width = math.ceil((hi - lo + 1) / pieces)
    return [(start, min(hi, start + width - 1)) for start in range(lo, hi + 1, width)]


def _plan(conn: Connection, url: str, key: bytes | None, jobs: int) -> Plan:
    """Every chain of the store, in ranges."""
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
    plan = Plan([], [], [], total)
    for chain_id in _chain_ids(conn):
        info = registered.get(chain_id)
        if info is None:
            plan.reports.append(_unregistered(conn, chain_id))
            continue
        hasher = hasher_for_chain(chain_id, info.algorithm, info.key_fingerprint, key)
        newest_mark = int(newest.get(chain_id) or 0)
        marks = {} if chain_id in spans else _marks(conn, chain_id)
        plan.chains.append(_Chain(chain_id, hasher, newest_mark, retained, marks))
        if chain_id not in spans:
            continue
        lo, hi, count = spans[chain_id]
        for start, end in _cut(lo, hi, count, size):
            plan.ranges.append(_Range(
                len(plan.ranges), url, chain_id, info.algorithm, info.key_fingerprint, key,
                start, end, start == lo, newest_mark, retained if start == lo else None,
            ))  # fmt: skip
    return plan


def _plan_period(
    conn: Connection, url: str, key: bytes | None, jobs: int,
    since: datetime | None, until: datetime | None,
) -> Plan:  # fmt: skip
    """The chains with records in the period, their spans in ranges (as verify_period)."""
    registered = {row.chain_id: row for row in conn.execute(select(chains))}
    spans = period_spans(conn, since, until)
    retained = RetainedPrefix.load(conn)
    total = sum(span.hi - span.lo + 1 for span in spans)
    size = max(MIN_RANGE_ROWS, math.ceil(total / (2 * jobs)))
    plan = Plan([], [], [], total)
    for span in spans:
        info = registered.get(span.chain_id)
        if info is None:
            plan.reports.append(_unregistered(conn, span.chain_id))
            continue
        hasher = hasher_for_chain(span.chain_id, info.algorithm, info.key_fingerprint, key)
        newest_mark = max(period_marks(conn, span), default=0)
        starts = span.lo == span.first  # the span starts the chain: a retention cut counts
        kept = retained if starts else None
        plan.chains.append(_Chain(span.chain_id, hasher, newest_mark, kept, {}))
        for lo, hi in _cut(span.lo, span.hi, span.hi - span.lo + 1, size):
            plan.ranges.append(_Range(
                len(plan.ranges), url, span.chain_id, info.algorithm, info.key_fingerprint,
                key, lo, hi, starts and lo == span.lo, newest_mark,
                kept if lo == span.lo else None,
            ))  # fmt: skip
    return plan


class Running:
    """A verification handed to worker processes: :meth:`result` waits for it."""

    def __init__(self, plan: Plan, jobs: int) -> None:
        self.plan = plan
        self.pool = ProcessPoolExecutor(jobs, mp_context=get_context("spawn"))
        try:
            self.futures: list[Future[_Outcome]] = [
                self.pool.submit(_check_range, task) for task in plan.ranges
            ]
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the workers (those still running are not waited for)."""
        self.pool.shutdown(wait=False, cancel_futures=True)

    def result(self, progress: Progress | None = None) -> VerifyReport:
        """Wait for every range and merge them per chain (first problem in seq order)."""
        total = self.plan.total
        outcomes: dict[int, _Outcome] = {}
        done = 0
        try:
            for future in as_completed(self.futures):
                outcome = future.result()
                outcomes[outcome.index] = outcome
                done += outcome.records
                if progress is not None:
                    progress(done, total)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        by_chain: dict[str, list[_Outcome]] = {}
        for task in self.plan.ranges:
            by_chain.setdefault(task.chain_id, []).append(outcomes[task.index])
        reports = list(self.plan.reports)
        for chain in self.plan.chains:
            reports.append(_merged(chain, by_chain.get(chain.chain_id, [])))
        if progress is not None:
            progress(done, max(total, done))
        return VerifyReport(sorted(reports, key=lambda report: report.chain_id))


def _merged(chain: _Chain, parts: list[_Outcome]) -> ChainReport:
    """One chain's report from its ranges' outcomes, in seq order."""
    check = _ChainCheck(chain.chain_id, chain.hasher, chain.marks, chain.retained)
    check.newest_mark = chain.newest_mark
    for part in parts:
        check.records += part.records
        check.rejected += part.rejected
        check.first_seq = part.first_seq if check.first_seq is None else check.first_seq
        check.last_seq = part.last_seq if part.last_seq is not None else check.last_seq
        check.problem = check.problem or part.problem
    if check.last_seq is not None:
        check.expected_seq = check.last_seq + 1
    return check.finish()


def plan(
    conn: Connection, url: str, key: bytes | None, jobs: int,
    period: tuple[datetime | None, datetime | None] = (None, None),
) -> Plan:  # fmt: skip
    """Plan in ``conn``'s snapshot the ranges ``jobs`` processes verify (:class:`Running`):
    the whole store, or the records of ``period`` as
    :func:`~gitaudit.store.integrity.verify_period` checks them. Raises ConfigError (a chain
    key that does not fit) before any process starts."""
    if period == (None, None):
        return _plan(conn, url, key, jobs)
    return _plan_period(conn, url, key, jobs, *period)


def verify_chains_parallel(
    conn: Connection, url: str, key: bytes | None, jobs: int, progress: Progress | None = None
) -> VerifyReport:
    """:func:`~gitaudit.store.integrity.verify_chains` with ``jobs`` worker processes."""
    return Running(plan(conn, url, key, jobs), jobs).result(progress)
