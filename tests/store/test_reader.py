"""Queries: every filter, globs translated to SQL, order and limit."""

from __future__ import annotations

import fnmatch
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from gitaudit.store import EventFilter, Store
from gitaudit.store.reader import _like_pattern, _regex_pattern, parse_body
from tests.store.helpers import BASE_TIME, make_record, make_records


@pytest.fixture
def filled(store: Store) -> Store:
    """20 events, one minute apart, varied operations, users, repos, outcomes."""
    store.append(make_records(20))
    return store


def _indexes(events: list[dict[str, Any]]) -> list[int]:
    """The make_record index of each event (kept in actor.ci.run)."""
    return [int(event["actor"]["ci"]["run"]) for event in events]


def test_no_filter_returns_everything_oldest_first(filled: Store) -> None:
    events = filled.query(EventFilter())
    assert _indexes(events) == list(range(20))
    assert all(event["hash"] and event["seq"] for event in events)


def test_time_window_is_since_inclusive_until_exclusive(filled: Store) -> None:
    flt = EventFilter(
        since=BASE_TIME + timedelta(minutes=3), until=BASE_TIME + timedelta(minutes=6)
    )
    assert _indexes(filled.query(flt)) == [3, 4, 5]


def test_time_window_accepts_other_zones_and_naive_utc(filled: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    since = (BASE_TIME + timedelta(minutes=18)).astimezone(plus_two)
    assert _indexes(filled.query(EventFilter(since=since))) == [18, 19]
    until = (BASE_TIME + timedelta(minutes=2)).replace(tzinfo=None)
    assert _indexes(filled.query(EventFilter(until=until))) == [0, 1]


def test_order_is_by_occurrence_not_insertion(store: Store) -> None:
    store.append([make_record(5), make_record(1), make_record(3)])
    assert _indexes(store.query(EventFilter())) == [1, 3, 5]


def test_limit_keeps_the_newest_oldest_first(filled: Store) -> None:
    assert _indexes(filled.query(EventFilter(limit=3))) == [17, 18, 19]
    assert filled.query(EventFilter(limit=0)) == []
    assert _indexes(filled.query(EventFilter(limit=100))) == list(range(20))


@pytest.mark.parametrize(
    ("operations", "expected"),
    [
        (("git.push",), [0, 5, 10, 15]),
        (("git.push", "git.fetch"), [0, 1, 5, 6, 10, 11, 15, 16]),
        (("git.*",), [i for i in range(20) if i % 5 != 4]),
        (("conflict.*",), [4, 9, 14, 19]),
        (("git.?e*",), [i for i in range(20) if i % 5 in (1, 3)]),  # fetch, rebase
        (("git.[cp]*",), [i for i in range(20) if i % 5 in (0, 2)]),  # push, commit
        (("git.[!cp]*",), [i for i in range(20) if i % 5 in (1, 3)]),
        (("GIT.*",), []),  # case-sensitive, as fnmatch on POSIX
        (("nothing.here",), []),
    ],
)
def test_operation_globs(filled: Store, operations: tuple[str, ...], expected: list[int]) -> None:
    assert _indexes(filled.query(EventFilter(operations=operations))) == expected


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ("alice", [0, 3, 6, 9, 12, 15, 18]),
        ("bob@example.com", [1, 4, 7, 10, 13, 16, 19]),
        ("Carol Example", [2, 5, 8, 11, 14, 17]),
        ("*@example.com", list(range(20))),
        ("[ab]*", [i for i in range(20) if i % 3 in (0, 1)]),
        ("Al*", [0, 3, 6, 9, 12, 15, 18]),  # git_name "Alice Example"
        ("mallory", []),
    ],
)
def test_actor_matches_user_git_name_or_email(
    filled: Store, actor: str, expected: list[int]
) -> None:
    assert _indexes(filled.query(EventFilter(actor=actor))) == expected


@pytest.mark.parametrize(
    ("repo", "expected"),
    [
        ("project-1", list(range(1, 20, 2))),
        ("/home/alice/src/project-0", [0, 6, 12, 18]),
        ("/home/*/project-0", list(range(0, 20, 2))),
        ("project-?", list(range(20))),
    ],
)
def test_repo_matches_name_or_path(filled: Store, repo: str, expected: list[int]) -> None:
    assert _indexes(filled.query(EventFilter(repo=repo))) == expected


def test_outcome_and_correlation(filled: Store) -> None:
    assert _indexes(filled.query(EventFilter(outcome="failure"))) == [3, 7, 11, 15, 19]
    assert _indexes(filled.query(EventFilter(correlation_id="job-1"))) == list(range(10, 20))
    combined = EventFilter(outcome="failure", correlation_id="job-1", operations=("git.*",))
    assert _indexes(filled.query(combined)) == [11, 15]


def test_sql_wildcards_in_values_are_literal(store: Store) -> None:
    odd = [
        make_record(0, repo={"name": "100%_done"}),
        make_record(1, repo={"name": "100xydone"}),
        make_record(2, repo={"name": "a\\b"}),
    ]
    store.append(odd)
    assert _indexes(store.query(EventFilter(repo="100%_done"))) == [0]
    assert _indexes(store.query(EventFilter(repo="100%_d*"))) == [0]
    assert _indexes(store.query(EventFilter(repo="100?_do[n]e"))) == [0]
    assert _indexes(store.query(EventFilter(repo="a\\*"))) == [2]


SAMPLES = ["git.push", "git.fetch", "a.b", "a%b", "a_b", "x[y]", "A.B", "", "a\\b", "ab.cd"]
PATTERNS = ["git.*", "?.?", "a%b", "a_b", "*", "a*b", "[!a]*", "[a-c]*", "x[[]y]", "a\\*", "[^a]*",
            "[]x]*"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_translations_agree_with_fnmatch(pattern: str) -> None:
    expected = [name for name in SAMPLES if fnmatch.fnmatchcase(name, pattern)]
    regex = re.compile(_regex_pattern(pattern))
    assert [name for name in SAMPLES if regex.search(name)] == expected
    if "[" not in pattern:
        like = _like_pattern(pattern)
        like_regex = "".join(
            ".*" if part == "%" else "." if part == "_" else re.escape(part[-1])
            for part in re.findall(r"\\.|%|_|.", like)
        )
        assert [name for name in SAMPLES if re.fullmatch(like_regex, name)] == expected


def test_filters_compare_in_utc(store: Store) -> None:
    moment = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    store.append([make_record(0, occurred_at="2026-03-29T02:30:00+02:00")])
    assert len(store.query(EventFilter(since=moment, until=moment + timedelta(seconds=1)))) == 1


@pytest.mark.parametrize(
    "flt",
    [EventFilter(), EventFilter(operations=("git.push",)), EventFilter(limit=5)],
    ids=["all", "filtered", "limit"],
)
def test_iter_query_streams_what_query_returns(filled: Store, flt: EventFilter) -> None:
    stream = filled.iter_query(flt)
    assert not isinstance(stream, list)  # rows come from the cursor as they are read
    assert list(stream) == filled.query(flt)


@pytest.mark.parametrize("text", [
    '{"n": 123456789012345678901234567890, "m": -9223372036854775809, "f": 0.1, "e": 1E5}',
    '{"a": 1, "a": 2}', '{"x": 1e400, "y": -1e400}', '{"nan": NaN, "inf": Infinity}',
    '{"s": "\\ud800 lone"}', '{"t": "na\\u00efve \\u65e5\\u672c \\ud83c\\udf89 \\"q\\" \\\\"}',
    '{"z": -0.0, "l": [1, 2.5, null, true, {"k": []}]}',
])  # fmt: skip
def test_bodies_parse_as_json_loads_parses_them(text: str) -> None:
    """Readers parse bodies with msgspec, else json: the very same values and types."""
    parsed, expected = parse_body(text), json.loads(text)
    assert repr(parsed) == repr(expected)
    assert [type(value) for value in parsed.values()] == [type(v) for v in expected.values()]
