"""The usage report's figures, exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gitaudit.report import usage
from gitaudit.report.model import Chart, KeyValues, Report, Table, to_json
from gitaudit.report.options import ReportOptions
from gitaudit.store import EventFilter, Store
from tests.report.events import START, event, known_events


def _build(store: Store, flt: EventFilter | None = None, **options: Any) -> Report:
    flt = flt or EventFilter()
    seen: list[int] = []
    with store.reading(flt) as conn:
        report = usage.build(conn, flt, ReportOptions(since=flt.since, until=flt.until, **options),
                             seen.append)  # fmt: skip
    assert seen == sorted(seen) and seen[-1] == report.events_read  # progress only goes up
    return report


def _blocks(report: Report) -> dict[str, list[dict[str, Any]]]:
    return {section["title"]: section["blocks"] for section in to_json(report)["sections"]}


def test_usage_figures(store: Store) -> None:
    store.append(known_events())
    report = _build(store, top=2)
    assert report.kind == "usage" and report.events_read == 23 and report.notes == ()
    blocks = _blocks(report)
    assert dict(blocks["Overview"][0]["items"]) == {
        "events": 23, "failures": 3, "failure %": 13.0, "actors": 4, "repositories": 2,
        "hosts": 1, "first event": "2026-11-01T09:00:00Z", "last event": "2026-11-03T11:00:00Z",
    }  # fmt: skip
    activity = blocks["Activity over time"][0]
    assert activity["title"] == "Operations per day (UTC) by type"
    assert activity["x"] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert activity["series"] == {
        "git.push": [10, 0, 0], "git.fetch": [0, 4, 0], "conflict.detected": [0, 3, 0],
        "claude.request": [0, 0, 3], "conflict.resolved": [0, 2, 0],
        "conflict.aborted": [0, 1, 0],
    }  # fmt: skip
    actors = blocks["Top actors"][0]
    assert actors["columns"] == ["actor", "events", "failures", "share %"]
    assert actors["rows"] == [["dave", 9, 0, 39.1], ["alice", 6, 1, 26.1],
                              ["(others): 2 more", 8, 2, 34.8]]  # fmt: skip
    assert actors["note"] == "top 2 of 4"
    assert blocks["Top repositories"][0]["rows"] == [["app", 14, 1, 60.9], ["lib", 9, 2, 39.1]]
    operations = blocks["Operations: failures and durations"][0]
    assert operations["columns"] == ["operation", "events", "failures", "failure %", "p50 ms",
                                     "p95 ms"]  # fmt: skip
    assert operations["rows"][:2] == [["git.push", 10, 2, 20.0, 55.0, 95.5],
                                      ["git.fetch", 4, 1, 25.0, 5.0, 5.0]]  # fmt: skip
    conflicts = blocks["Conflicts"]
    assert conflicts[0]["columns"] == ["repository", "detected", "resolved", "aborted",
                                       "files ours", "files theirs", "files manual",
                                       "files claude"]  # fmt: skip
    assert conflicts[0]["rows"] == [["app", 2, 2, 0, 1, 0, 1, 1], ["lib", 1, 0, 1, 0, 0, 0, 0]]
    assert conflicts[1]["x"] == ["ours", "theirs", "manual", "claude"]
    assert conflicts[1]["series"] == {"files": [1, 0, 1, 1]}
    claude = blocks["Claude"]
    assert claude[0]["rows"] == [
        ["claude-a", 2, 0, 300, 30, 7, 5, 0.03, 0],
        ["claude-b", 1, 0, 50, 5, 0, 0, 0.0, 1],
        ["total", 3, 0, 350, 35, 7, 5, 0.03, 1],
    ]
    assert [chart["series"] for chart in claude[1:]] == [
        {"claude-a": [0, 0, 2], "claude-b": [0, 0, 1]},
        {"claude-a": [0, 0, 342], "claude-b": [0, 0, 55]},
        {"claude-a": [0, 0, 0.03], "claude-b": [0, 0, 0]},
    ]


def test_filters_narrow_every_section(store: Store) -> None:
    store.append(known_events())
    report = _build(store, EventFilter(repo="lib", operations=("git.*", "conflict.aborted")))
    assert report.events_read == 8
    assert report.filters == {"operations": ["git.*", "conflict.aborted"], "repo": "lib"}
    blocks = _blocks(report)
    assert blocks["Top repositories"][0]["rows"] == [["lib", 8, 2, 100.0]]
    assert blocks["Conflicts"][0]["rows"] == [["lib", 0, 0, 1, 0, 0, 0, 0]]
    claude = next(s for s in report.sections if s.title == "Claude")
    assert claude.blocks == () and claude.intro == "No Claude request in this period."


def test_a_short_period_is_charted_per_hour(store: Store) -> None:
    store.append(known_events())
    flt = EventFilter(since=START, until=START + timedelta(hours=3))
    report = _build(store, flt)
    assert report.period == ("2026-11-01T09:00:00Z", "2026-11-01T12:00:00Z")
    chart = next(b for s in report.sections for b in s.blocks if isinstance(b, Chart))
    assert chart.x == ("2026-11-01T09", "2026-11-01T10", "2026-11-01T11")
    assert chart.series == (("git.push", (1, 1, 1)),)


def test_a_long_period_is_charted_per_month(store: Store) -> None:
    store.append([event("git.push", timedelta(days=days)) for days in (0, 40, 200)])
    chart = next(b for s in _build(store).sections for b in s.blocks if isinstance(b, Chart))
    assert chart.x[0] == "2026-11" and chart.x[-1] == "2027-05" and len(chart.x) == 7
    assert chart.series == (("git.push", (1, 1, 0, 0, 0, 0, 1)),)  # 11 Dec, then 20 May


def test_decades_are_charted_per_year_and_an_open_period_from_the_events(store: Store) -> None:
    store.append([event("git.push", timedelta(days=days)) for days in (-366 * 40, 0)])
    far = datetime(1, 1, 1, tzinfo=UTC)  # --since 9999999d: the events' span is charted
    report = _build(store, EventFilter(since=far))
    chart = next(b for s in report.sections for b in s.blocks if isinstance(b, Chart))
    assert chart.x[0] == "1986" and chart.x[-1] == "2026" and len(chart.x) == 41
    assert sum(chart.series[0][1]) == 2


def test_more_than_eight_operations_draw_the_rest_as_other(store: Store) -> None:
    operations = ["git.push", "git.fetch", "git.commit", "git.rebase", "git.merge", "git.tag",
                  "git.clone", "git.pull", "git.reset", "git.branch"]  # fmt: skip
    store.append([event(op, timedelta(minutes=i)) for i, op in enumerate(operations)])
    chart = next(b for s in _build(store).sections for b in s.blocks if isinstance(b, Chart))
    assert len(chart.series) == 9 and chart.series[-1] == ("other", (2,))
    assert sum(values[0] for _, values in chart.series) == 10


def test_an_empty_period_says_so(store: Store) -> None:
    store.append(known_events())
    flt = EventFilter(since=datetime(2030, 1, 1, tzinfo=UTC))
    report = _build(store, flt)
    assert report.events_read == 0
    assert report.notes == ("No events in this period.",)
    assert report.sections == ()


def test_memory_stays_bounded_however_many_events_match(store: Store) -> None:
    """The report keeps counts, not events: building it over 4x the events does not take
    4x the memory (a list of the events would: ~2 KB each parsed)."""

    def batch(count: int, offset: int) -> list[dict[str, Any]]:
        ops = ("git.push", "git.fetch", "conflict.resolved", "claude.request")
        return [
            event(ops[i % 4], timedelta(minutes=offset + i), user=f"user{i % 7}",
                  repo=f"repo{i % 5}", details={"model": "claude-a", "input_tokens": 3}
                  if i % 4 == 3 else {"files": [{"path": "x", "resolution": "ours"}]})
            for i in range(count)
        ]  # fmt: skip

    def peak(flt: EventFilter) -> int:
        with store.reading(flt) as conn:
            tracemalloc.start()
            try:
                usage.build(conn, flt, ReportOptions(), lambda done: None)
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

    store.append(batch(1000, 0))
    store.append(batch(3000, 1000))
    first = EventFilter(until=START + timedelta(minutes=1000))
    small, large = peak(first), peak(EventFilter())
    # 3,000 more events, as a list of parsed events, would be ~6 MB more
    assert large - small < 1_500_000, (small, large)


def test_the_limit_of_a_filter_is_ignored(store: Store) -> None:
    store.append(known_events())
    report = _build(store, replace(EventFilter(), limit=1))
    assert report.events_read == 23
    assert isinstance(report.sections[0].blocks[0], KeyValues)
    assert all(isinstance(b, Table | Chart) for s in report.sections[1:] for b in s.blocks)
