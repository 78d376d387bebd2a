"""Query plans: every documented filter is read from an index in time order with its limit
pushed down: no full scan, no sort of the matches (only of the page shown), on both engines.

Plans are checked with EXPLAIN QUERY PLAN (SQLite) and EXPLAIN (PostgreSQL) on a store
with enough rows, analysed, for the planners to prefer what they would at scale.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, text

from gitaudit.store import EventFilter, Store
from gitaudit.store.engine import create_store_engine
from gitaudit.store.reader import ordered_query
from tests.store.helpers import BASE_TIME, make_record

ROWS = 4000

DOCUMENTED = {
    "no filter": EventFilter(limit=20),
    "--since": EventFilter(since=BASE_TIME + timedelta(minutes=ROWS - 500), limit=20),
    "--actor": EventFilter(actor="user7", limit=100),
    "--actor email": EventFilter(actor="user7@example.com", limit=100),
    "--op": EventFilter(operations=("git.push",), limit=100),
    "--op several": EventFilter(operations=("git.push", "git.fetch"), limit=100),
    "--op --repo --since": EventFilter(
        operations=("git.push",), repo="repo3", since=BASE_TIME + timedelta(minutes=100),
        limit=100),
    "--repo": EventFilter(repo="repo3", limit=100),
    "--host": EventFilter(host="host5", limit=100),
    "--branch": EventFilter(branch="feature-9", limit=100),
    "--correlation": EventFilter(correlation_id="job-12", limit=100),
    "--severity": EventFilter(severity="high", limit=100),
    "--source": EventFilter(source="hook", limit=100),
    "--outcome": EventFilter(outcome="failure", limit=100),
    "--agent": EventFilter(agent="claude-code", limit=100),
    "--session": EventFilter(session="session-3", limit=100),
}


def _records() -> list[dict[str, Any]]:
    rng = random.Random(5)
    out = []
    for index in range(ROWS):
        user = f"user{rng.randrange(40)}"
        record = make_record(
            index, correlation_id=f"job-{index // 20}",
            severity="high" if index % 97 == 0 else "low",
            source="hook" if index % 50 == 0 else "wrapper",
            outcome="failure" if index % 31 == 0 else "success")  # fmt: skip
        record["actor"].update(user=user, git_name=user.title(), git_email=f"{user}@example.com",
                               host=f"host{rng.randrange(30)}")
        record["repo"].update(name=f"repo{rng.randrange(60)}", path=f"/src/r{rng.randrange(60)}",
                              branch=f"feature-{rng.randrange(50)}")
        if index % 40 == 0:
            record["actor"]["agent"] = {"tool": "claude-code", "session_id":
                                        f"session-{index // 400}", "tool_use_id": f"t{index}"}
        out.append(record)
    return out


@pytest.fixture
def analysed(store: Store, store_url: str) -> Store:
    store.append(_records())
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    finally:
        engine.dispose()
    return store


def _sqlite_plan(conn: Connection, sql: str) -> list[str]:
    return [str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]


def _pg_plan(conn: Connection, sql: str) -> list[str]:
    return [str(row[0]).strip() for row in conn.exec_driver_sql("EXPLAIN " + sql)]


def _check_sqlite(plan: list[str]) -> None:
    for index, line in enumerate(plan):
        if line.startswith(("SCAN events", "SEARCH events")):
            assert "INDEX" in line, plan  # never a full table scan
        if line == "USE TEMP B-TREE FOR ORDER BY":
            # only the page (at most arms x limit rows) is sorted, never the matches
            assert plan[index - 1] in ("SCAN page", "SCAN merged"), plan


# What a Sort may read: the limited page (or the merged arms), never a scan of all matches
# in time order; a bitmap heap scan is the planner's choice for an arm it expects to hold
# few rows (it then sorts those few, cut by the arm's limit).
_PAGE_INPUTS = ("->  Limit", "->  Subquery Scan", "->  HashAggregate", "->  Unique",
                "->  Append", "->  Bitmap Heap Scan")  # fmt: skip


def _check_pg(plan: list[str]) -> None:
    text = "\n".join(plan)
    # a monthly partition the planner knows is empty costs nothing to scan
    scans = [line for line in plan if "Seq Scan on events" in line]
    assert all("cost=0.00..0.00 " in line for line in scans), text
    for index, line in enumerate(plan):
        if line.startswith(("->  Sort ", "Sort ")) and not line.startswith("Sort Key"):
            feeding = next(row for row in plan[index + 1:] if not row.startswith("Sort Key"))
            assert feeding.startswith(_PAGE_INPUTS), text


def test_documented_filters_use_an_index_in_time_order(analysed: Store) -> None:
    for name, flt in DOCUMENTED.items():
        with analysed.reading() as conn:
            sql = str(ordered_query(conn, flt).compile(
                conn, compile_kwargs={"literal_binds": True}))
            try:
                if conn.dialect.name == "sqlite":
                    _check_sqlite(_sqlite_plan(conn, sql))
                else:
                    _check_pg(_pg_plan(conn, sql))
            except AssertionError as exc:
                raise AssertionError(f"{name}: {exc}") from None
        assert len(list(analysed.iter_query(flt))) <= (flt.limit or ROWS)
