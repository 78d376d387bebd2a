"""The readers' query layer on both engines: new filters, full-text search, keyset pages,
counts, statistics and trace trees; streamed results; the search backfill of revision 0005."""

from __future__ import annotations

import statistics
import tracemalloc
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gitaudit.errors import UsageError
from gitaudit.store import EventFilter, Store
from gitaudit.store.engine import _alembic_config, create_store_engine, write_transaction
from gitaudit.store.stats import group_stats
from gitaudit.store.tables import events
from gitaudit.store.trace import build_tree, trace
from tests.store.helpers import BASE_TIME, make_record

SESSION = "5d1e7c2a-0000-4000-8000-00000000cc01"


def _agent(tool_use_id: str) -> dict[str, Any]:
    return {"user": "alice", "host": "dev-7", "agent": {
        "tool": "claude-code", "session_id": SESSION, "tool_use_id": tool_use_id,
        "verified": True}}  # fmt: skip


def _claude_code(index: int, operation: str, **fields: Any) -> dict[str, Any]:
    """A Claude Code event as the Claude Code helpers' contract describes it (the catalog
    of this branch does not list those operations yet, so it is built past validation)."""
    record = make_record(index, operation="claude.request", correlation_id=SESSION, **fields)
    record.update(operation=operation, source="claude_code")
    return record


def _mixed() -> list[dict[str, Any]]:
    """A CI job, a Claude Code session with the git it ran, and words to search for."""
    records = [make_record(i) for i in range(8)]
    records[0]["severity"] = "high"
    records[1]["actor"]["host"] = "ci-runner-3"
    records[2]["repo"]["branch"] = "release/1.2"
    records[3]["details"]["argv"] = ["git", "commit", "-m", 'fix "quoted" AND OR NEAR * : -x']
    records[4]["result"] = {"exit_code": 128, "error": "fatal: zebracorn rejected"}
    session = _claude_code(10, "claude.session", details={"session_id": SESSION})
    prompt = _claude_code(11, "claude.prompt", parent_id=session["id"],
                          details={"session_id": SESSION, "prompt_length": 12})
    tool = _claude_code(12, "claude.tool_use", parent_id=prompt["id"],
                        details={"session_id": SESSION, "tool_use_id": "toolu_1",
                                 "tool_name": "Bash", "tool_input": {"command": "git commit"}})
    commit = make_record(13, operation="git.commit", correlation_id="wrapper-cid")
    push = make_record(14, operation="git.push", correlation_id=SESSION)
    commit["actor"], push["actor"] = _agent("toolu_1"), _agent("toolu_9")  # the contract's shape
    tool["details"]["git_event_ids"] = [push["id"]]
    return [*records, session, prompt, tool, commit, push]  # fmt: skip


@pytest.fixture
def mixed(store: Store) -> tuple[Store, list[dict[str, Any]]]:
    records = _mixed()
    store.append(records)
    return store, records


def _ids(store: Store, **kwargs: Any) -> list[str]:
    return [event["id"] for event in store.iter_query(EventFilter(**kwargs))]


def test_new_filters_select_exactly_their_events(
    mixed: tuple[Store, list[dict[str, Any]]],
) -> None:
    store, records = mixed
    ids = [record["id"] for record in records]
    assert _ids(store, severity="high") == [ids[0]]
    assert _ids(store, host="ci-*") == [ids[1]]
    assert _ids(store, branch="release/*") == [ids[2]]
    assert _ids(store, source="claude_code") == ids[8:11]
    assert _ids(store, agent="claude-code") == ids[11:13]
    assert _ids(store, agent="*") == ids[11:13]
    # the session: its own events (correlation) and the git its agent ran (actor.agent)
    assert _ids(store, session=SESSION) == ids[8:13]
    assert _ids(store, correlation_id=SESSION) == [*ids[8:11], ids[12]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("zebracorn", [4]),
        ("ZEBRACORN rejected", [4]),
        ("fatal:zebracorn", [4]),  # punctuation splits words, as in the stored text
        ('"quoted" AND OR NEAR * : -x', [3]),  # operators and quotes are just words
        ("quoted OR zebracorn", []),  # OR is a word here: no event holds it with both
        ("NEAR(fix", []),
        ('fix"', [3]),
    ],
)
def test_grep_searches_words_never_syntax(
    mixed: tuple[Store, list[dict[str, Any]]], text: str, expected: list[int]
) -> None:
    store, records = mixed
    assert _ids(store, grep=text) == [records[index]["id"] for index in expected]


def test_grep_syntax_passes_the_engines_query_through(
    mixed: tuple[Store, list[dict[str, Any]]],
) -> None:
    store, records = mixed
    either = "zebracorn OR quoted" if store.dialect == "sqlite" else "zebracorn | quoted"
    assert _ids(store, grep=either, grep_raw=True) == [records[3]["id"], records[4]["id"]]
    broken = 'zebracorn AND "open' if store.dialect == "sqlite" else "zebracorn & & |"
    with pytest.raises(UsageError, match="--grep-syntax: the store cannot parse"):
        _ids(store, grep=broken, grep_raw=True)


def test_grep_without_words_is_a_usage_error(store: Store) -> None:
    with pytest.raises(UsageError, match="holds no word"):
        _ids(store, grep="*** :: --")


def test_keyset_pages_walk_the_whole_order(store: Store) -> None:
    store.append([make_record(i) for i in range(25)])
    everything = _ids(store)
    forward: list[str] = []  # e.g. an export that continues from the last id it saw
    after = everything[0]
    while page := _ids(store, after_id=after, limit=10):
        forward += page
        after = page[-1]
    assert forward == everything[1:]
    backward = _ids(store, limit=10)  # the table's pages: newest first, then --before
    while page := _ids(store, before_id=backward[0], limit=10):
        backward = page + backward
    assert backward == everything
    assert _ids(store, before_id=everything[20], limit=5) == everything[15:20]
    assert _ids(store, after_id=everything[3], before_id=everything[7]) == everything[4:7]
    assert store.count_matching(EventFilter(after_id=everything[3], limit=2)) == 21


def test_unknown_keyset_id_is_a_usage_error(store: Store) -> None:
    with pytest.raises(UsageError, match="--after: no event has the id 'nope'"):
        _ids(store, after_id="nope")
    assert store.count_matching(EventFilter()) == 0  # an empty store counts 0


def test_stats_match_a_computation_over_the_events(store: Store) -> None:
    records = [make_record(i, duration_ms=float((i * 37) % 101)) for i in range(60)]
    records[5]["duration_ms"] = None
    store.append(records)
    with store.reading() as conn:
        rows = {row.key: row for row in group_stats(conn, EventFilter(), "operation")}
        days = group_stats(conn, EventFilter(), "day")
    for operation, row in rows.items():
        mine = [r for r in records if r["operation"] == operation]
        durations = sorted(r["duration_ms"] for r in mine if r["duration_ms"] is not None)
        assert row.count == len(mine)
        assert row.failures == sum(r["outcome"] == "failure" for r in mine)
        cuts = statistics.quantiles(durations, n=100, method="inclusive")
        assert row.p50_ms == pytest.approx(statistics.median(durations))
        assert row.p95_ms == pytest.approx(cuts[94])
    assert [(row.key, row.count) for row in days] == [(BASE_TIME.date().isoformat(), 60)]


def test_trace_joins_by_ids_in_time_order(mixed: tuple[Store, list[dict[str, Any]]]) -> None:
    store, records = mixed
    session, prompt, tool, commit, push = records[8:]
    with store.reading() as conn:
        found = trace(conn, SESSION)
        by_event = trace(conn, prompt["id"])
    assert found.kind == "session" and found.count == 5
    assert [root.event["id"] for root in found.roots] == [session["id"]]
    tool_node = found.roots[0].children[0].children[0]
    assert tool_node.event["id"] == tool["id"]
    # the commit (by tool_use_id) and the push (listed in git_event_ids), in time order
    assert [child.event["id"] for child in tool_node.children] == [commit["id"], push["id"]]
    assert by_event.kind == "event" and by_event.count == 5


def test_trace_unknown_id_and_parent_cycles(store: Store) -> None:
    with store.reading() as conn, pytest.raises(UsageError, match="no event, correlation id"):
        trace(conn, "nothing-here")
    first, second = make_record(1), make_record(2)
    first["parent_id"], second["parent_id"] = second["id"], first["id"]
    roots = build_tree([first, second])
    assert [root.event["id"] for root in roots] == [first["id"]]
    assert roots[0].children[0].event["id"] == second["id"]


def test_results_stream_in_constant_memory_with_a_limit(store: Store) -> None:
    big = "x" * 4000
    store.append([make_record(i, details={"note": big}) for i in range(1500)])
    tracemalloc.start()
    try:
        seen = 0
        for _ in store.iter_query(EventFilter(limit=1500)):
            seen += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == 1500
    assert peak < 3_000_000, peak  # 1,500 bodies of 4 kB held at once would be 6 MB+


def test_search_backfills_rows_stored_before_revision_0005(store_url: str) -> None:
    from alembic import command

    before = make_record(1, details={"argv": ["git", "commit", "-m", "backfilled words"]})
    with Store.open(store_url, chain_id="c") as store:
        store.append([before])
    engine = create_store_engine(store_url)
    try:
        for target in ("0001", "head"):
            with write_transaction(engine) as conn:
                command.downgrade(_alembic_config(conn), target) if target == "0001" else (
                    command.upgrade(_alembic_config(conn), target))
    finally:
        engine.dispose()
    with Store.open(store_url, chain_id="c") as store:
        store.append([make_record(2, details={"argv": ["git", "push", "backfilled"]})])
        assert len(_ids(store, grep="backfilled")) == 2
        assert _ids(store, grep="backfilled words") == [before["id"]]
        assert store.verify().ok


def test_a_body_postgresql_jsonb_refuses_is_stored_and_skipped_by_search(store: Store) -> None:
    odd = make_record(3, details={"argv": ["git", "commit", "-m", "odd one here"]})
    odd["details"]["lone"] = "\ud800"  # stored escaped: PostgreSQL's jsonb refuses it
    store.append([odd])
    assert _ids(store) == [odd["id"]]
    assert store.count_matching(EventFilter(agent="claude-code")) == 0
    _ids(store, grep="here")  # searchable or not (engine-dependent), never an error


def test_time_window_and_filters_combine(mixed: tuple[Store, list[dict[str, Any]]]) -> None:
    store, records = mixed
    since = BASE_TIME + timedelta(minutes=11)
    assert _ids(store, session=SESSION, since=since, limit=2) == [records[11]["id"],
                                                                  records[12]["id"]]


def test_common_words_are_probed_along_the_time_index_with_the_same_results(
    mixed: tuple[Store, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitaudit.store import search

    store, records = mixed
    rare = {text: _ids(store, grep=text, limit=3) for text in ("zebracorn", "example", "fix")}
    monkeypatch.setattr(search, "COMMON", 1)  # every word counts as common now
    assert {text: _ids(store, grep=text, limit=3) for text in rare} == rare
    assert rare["example"] == [record["id"] for record in records[-3:]]


def test_retention_takes_deleted_rows_out_of_the_sqlite_search_index(sqlite_url: str) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text

    from gitaudit.store.search import sqlite_unindex_rows

    with Store.open(sqlite_url, chain_id="c") as store:
        store.append([make_record(i, details={"argv": ["git", "fetch", "kept"]})
                      for i in range(4)])  # fmt: skip
        engine = create_store_engine(sqlite_url)
        try:
            with write_transaction(engine) as conn:
                conn.execute(text("INSERT INTO retention_grants VALUES ('c', 2, :now, 'test')"),
                             {"now": datetime.now(UTC)})  # fmt: skip
                sqlite_unindex_rows(conn, "c", 2)
                conn.execute(text("DELETE FROM events WHERE chain_id = 'c' AND seq <= 2"))
            with engine.connect() as conn:
                left = conn.execute(text(
                    "SELECT count(*) FROM events_fts WHERE events_fts MATCH 'kept'")).scalar()
        finally:
            engine.dispose()
        assert left == 2
        assert len(_ids(store, grep="kept")) == 2


def test_rare_words_on_postgresql_are_found_in_the_search_index_first(
    mixed: tuple[Store, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 10M events PostgreSQL's planner took a rare word for a common one and read the
    # time index backwards computing every row's document; the matches are now read from
    # the GIN index first and the page is filtered by their ids.
    from gitaudit.store import search
    from gitaudit.store.reader import ordered_query, resolve_grep

    store, records = mixed
    rare = {text: _ids(store, grep=text, limit=3) for text in ("zebracorn", "example", "fix")}
    with store.reading() as conn:
        resolved = resolve_grep(conn, EventFilter(grep="zebracorn", limit=20))
        if conn.dialect.name == "sqlite":
            assert resolved.grep_ids is None and resolved.grep_common is False
        else:
            assert resolved.grep_ids == (records[4]["id"],)
            sql = str(ordered_query(conn, EventFilter(grep="zebracorn", limit=20))
                      .compile(conn, compile_kwargs={"literal_binds": True}))
            assert "to_tsvector" not in sql and records[4]["id"] in sql
            none = resolve_grep(conn, EventFilter(grep="nosuchwordanywhere"))
            assert none.grep_ids == ()
    assert _ids(store, grep="nosuchwordanywhere") == []
    monkeypatch.setattr(search, "PG_RARE", 1)  # every word counts as common now
    assert {text: _ids(store, grep=text, limit=3) for text in rare} == rare
    assert store.count_matching(EventFilter(grep="zebracorn")) == 1


def test_postgresql_takes_a_word_the_statistics_know_as_frequent_for_common_unread(
    pg_fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 10M events building the GIN bitmap of a word in every event took ~0.5-1 s per
    # page (p95 1.15 s); the planner's estimate, close for frequent words, now decides.
    records = _mixed()
    with Store.open(pg_fresh_url, chain_id="test-chain") as store:
        store.append(records)
        _frequent_words_unread(store, records, monkeypatch)


def _frequent_words_unread(
    store: Store, records: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitaudit.store import search
    from gitaudit.store.reader import resolve_grep

    probed = _ids(store, grep="example")  # read from the index first (few matches here)
    with store.reading() as conn:
        conn.exec_driver_sql("ANALYZE events")
        frequent = search.planned_rows(conn, select(events.c.id).where(
            search.grep_clause("postgresql", "example", raw=False)))
        rare = search.planned_rows(conn, select(events.c.id).where(
            search.grep_clause("postgresql", "zebracorn", raw=False)))
    assert frequent > rare
    monkeypatch.setattr(search, "PG_COMMON_ESTIMATE", frequent)
    with store.reading() as conn:
        assert resolve_grep(conn, EventFilter(grep="example")).grep_ids is None
        assert resolve_grep(conn, EventFilter(grep="zebracorn")).grep_ids == (records[4]["id"],)
    assert len(probed) > 1 and _ids(store, grep="example") == probed
