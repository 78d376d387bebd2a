"""verify's fast path and `--jobs`: same verdicts as the exact checks, on both engines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from gitaudit.store import Store, VerifyReport, verify_parallel
from gitaudit.store.engine import create_store_engine, snapshot
from gitaudit.store.integrity import ChainHasher, _ChainCheck, _marks, verify_period
from gitaudit.store.verify_fast import (
    _accepts,
    _accepts_array,
    _array_cursor,
    _pg_agree,
    _raw_rows,
    _sqlite_agree,
    _stamp_form,
)
from tests.store.helpers import BASE_TIME, make_record, make_records
from tests.store.test_checkpoints import forge

CHAIN = "test-chain"


def _odd_records() -> list[dict[str, Any]]:
    """Records the fast path must not misjudge: offsets, look-alike keys, big ints, non-ASCII."""
    return [
        make_record(1, occurred_at="2026-11-01T14:00:00+02:00"),
        make_record(2, occurred_at="2026-11-01T12:00:00.123456Z"),
        make_record(3, details={"hash": "x", "prev_hash": "y", "n": 2**70}),
        make_record(4, details={"text": "naïve 日本語 \u2028 \U0001f389 \"quoted\" \\ "}),
        make_record(5, duration_ms=7),
    ]


def _fill(url: str) -> Store:
    store = Store.open(url, chain_id=CHAIN)
    for start in range(0, 30, 6):
        store.append(make_records(6, start=start))
    store.append(_odd_records())
    store.append(make_records(4, start=100))
    return store


@pytest.fixture
def chained(store_url: str) -> Iterator[Store]:
    with _fill(store_url) as store:
        yield store


@pytest.fixture
def sqlite_chained(sqlite_url: str) -> Iterator[Store]:
    with _fill(sqlite_url) as store:
        yield store


def _summary(report: VerifyReport) -> list[tuple[Any, ...]]:
    return [
        (c.chain_id, c.records, c.first_seq, c.last_seq, c.rejected,
         None if c.problem is None else (c.problem.kind, c.problem.seq, c.problem.event_id))
        for c in report.chains
    ]  # fmt: skip


def test_writer_rows_take_the_fast_path(chained: Store, store_url: str) -> None:
    """The speed-up is real: every ordinary row the writer stored is accepted without the
    exact (re-serialising) check; the odd ones may go either way, verify passes."""
    engine = create_store_engine(store_url)
    accepted = []
    try:
        with snapshot(engine) as conn:
            check = _ChainCheck(CHAIN, ChainHasher(None), _marks(conn, CHAIN))
            stamp = _stamp_form(conn.dialect.name)
            cursor = _raw_rows(conn, CHAIN, None)
            for raw in cursor:
                accepted.append(_accepts(check, raw, stamp))
                check.expected_seq, check.prev_hash = raw[2] + 1, raw[-2]
            cursor.close()
    finally:
        engine.dispose()
    assert len(accepted) == 39
    assert all(accepted[:30]) and all(accepted[35:])
    assert chained.verify().ok


def test_rows_take_the_array_path(chained: Store, store_url: str) -> None:
    """Every ordinary row the writer stored is accepted by comparing the columns' JSON array
    (built by the database) with the body's values, without fetching the columns one by
    one; on both engines."""
    engine = create_store_engine(store_url)
    accepted = []
    try:
        with snapshot(engine) as conn:
            check = _ChainCheck(CHAIN, ChainHasher(None), _marks(conn, CHAIN))
            sqlite = conn.dialect.name == "sqlite"
            agree = _sqlite_agree if sqlite else _pg_agree
            cursor = _array_cursor(conn.connection.dbapi_connection, sqlite, CHAIN, None)
            for row in cursor:
                accepted.append(_accepts_array(check, row, agree))
                check.expected_seq, check.prev_hash = row[1] + 1, json.loads(row[2])["hash"]
            cursor.close()
    finally:
        engine.dispose()
    assert len(accepted) == 39
    assert all(accepted[:30]) and all(accepted[35:])
    assert chained.verify().ok


@pytest.mark.parametrize(
    ("statement", "seq", "kind"),
    [
        # a REAL uid whose 15-digit rendering is the body's integer
        ("UPDATE events SET actor_uid = actor_uid + 1e-12 WHERE seq = 7", 7, "mismatch"),
        ("UPDATE events SET duration_ms = duration_ms + 1e-12 WHERE seq = 8", 8, "mismatch"),
        # a BLOB cannot go into a JSON array: the chain is walked again on the general path
        ("UPDATE events SET repo_name = CAST(repo_name AS BLOB) WHERE seq = 9", 9, "mismatch"),
        ("UPDATE events SET repo_branch = NULL WHERE seq = 10", 10, "mismatch"),
        ("UPDATE events SET parent_id = '' WHERE seq = 11", 11, "mismatch"),
        ("UPDATE events SET actor_user = 'al\"ice' WHERE seq = 12", 12, "mismatch"),
        ("UPDATE events SET body = replace(body, 'build-01', 'build-02') WHERE seq = 13", 13,
         "modified"),
    ],
)
def test_sqlite_array_path_misses_nothing(
    sqlite_chained: Store, sqlite_url: str, statement: str, seq: int, kind: str
) -> None:
    """Changes the array comparison could blur are still found, and named as before."""
    forge(sqlite_url, statement)
    for jobs in (1, 2):
        problem = sqlite_chained.verify(jobs=jobs).first_problem
        assert problem is not None
        assert (problem.kind, problem.seq) == (kind, seq), problem.message


@pytest.mark.parametrize("jobs", [1, 2])
def test_odd_records_verify(chained: Store, jobs: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify_parallel, "MIN_RANGE_ROWS", 5)
    report = chained.verify(jobs=jobs)
    assert report.ok, report.first_problem
    assert _summary(report) == [(CHAIN, 39, 1, 39, 0, None)]


@pytest.mark.parametrize(
    "statements",
    [
        ("DELETE FROM events WHERE seq = 21",),  # at a range boundary with ranges of 10 rows
        ("DELETE FROM events WHERE seq = 20",),
        ("UPDATE events SET body = replace(body, 'alice', 'mallory') WHERE seq = 33",),
        ("UPDATE events SET repo_name = 'other' WHERE seq = 12",),
        ("UPDATE events SET hash = '" + "0" * 64 + "' WHERE seq = 25",),
        ("DELETE FROM events WHERE seq > 36", "DELETE FROM checkpoints WHERE seq > 30"),
    ],
)
def test_parallel_verdicts_equal_the_sequential_ones(
    chained: Store, store_url: str, statements: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    forge(store_url, *statements)
    monkeypatch.setattr(verify_parallel, "MIN_RANGE_ROWS", 10)
    sequential = chained.verify()
    parallel = chained.verify(jobs=3)
    assert not sequential.ok
    assert _summary(parallel) == _summary(sequential)


def test_parallel_verify_of_several_chains_and_an_unregistered_one(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b", "c"):
        with Store.open(store_url, chain_id=name) as store:
            store.append(make_records(12, start=ord(name)))
    forge(store_url, "DELETE FROM chains WHERE chain_id = 'b'")
    monkeypatch.setattr(verify_parallel, "MIN_RANGE_ROWS", 4)
    with Store.open(store_url, chain_id="a") as store:
        sequential, parallel = store.verify(), store.verify(jobs=2)
    assert _summary(parallel) == _summary(sequential)
    assert [c.chain_id for c in parallel.chains if c.problem] == ["b"]


def test_postgresql_rows_stream_through_a_server_side_cursor(pg_fresh_url: str) -> None:
    with Store.open(pg_fresh_url, chain_id=CHAIN) as store:
        store.append(make_records(3))
    engine = create_store_engine(pg_fresh_url)
    try:
        with snapshot(engine) as conn:
            cursor = _raw_rows(conn, CHAIN, (2, 3))
            assert cursor.name == "gitaudit_verify"
            assert [row[2] for row in cursor] == [2, 3]
            cursor.close()
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("minutes", [(5, 28), (5, 600)])  # inside the chain; to its end
@pytest.mark.parametrize(
    "statements",
    [
        (),
        ("DELETE FROM events WHERE seq = 16",),  # a gap at a range boundary
        ("UPDATE events SET body = replace(body, 'alice', 'mallory') WHERE seq = 13",),
        ("UPDATE events SET hash = '" + "0" * 64 + "' WHERE seq = 5",),  # the record before
        ("DELETE FROM events WHERE seq > 36", "DELETE FROM checkpoints WHERE seq > 30"),
    ],
)
def test_a_period_verified_in_workers_is_verified_as_in_process(
    chained: Store, store_url: str, statements: tuple[str, ...], minutes: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """``report soc2``'s verification in worker processes (ranges of 5 rows) names the same
    problem, counts and progress as :func:`verify_period` in the report's own process."""
    forge(store_url, *statements)
    monkeypatch.setattr(verify_parallel, "MIN_RANGE_ROWS", 5)
    since, until = (BASE_TIME + timedelta(minutes=minute) for minute in minutes)
    seen: dict[str, list[int]] = {"in process": [], "workers": []}
    with chained.reading() as conn:
        sequential = verify_period(conn, None, since, until,
                                   lambda done, _: seen["in process"].append(done))
        planned = verify_parallel.plan(conn, store_url, None, 2, (since, until))
        assert len(planned.ranges) > 2
        running = verify_parallel.Running(planned, 2)
        parallel = running.result(lambda done, _: seen["workers"].append(done))
    assert _summary(parallel) == _summary(sequential)
    assert seen["workers"][-1] == seen["in process"][-1] == sum(c.records for c in parallel.chains)
    assert parallel.ok is (not statements)
    if statements and "mallory" in statements[0]:
        assert parallel.first_problem is not None
        assert (parallel.first_problem.kind, parallel.first_problem.seq) == ("modified", 13)
