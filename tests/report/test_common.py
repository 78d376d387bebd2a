"""Helpers every report kind shares: narrowing a filter, top-N tables, the report frame."""

from __future__ import annotations

from datetime import UTC, datetime

from gitaudit.report.common import filters_of, narrowed, new_report, top_table
from gitaudit.report.options import ReportOptions
from gitaudit.store import EventFilter


def test_narrowed_keeps_the_filter_and_intersects_operations() -> None:
    flt = EventFilter(repo="app", operations=("git.*",), limit=5)
    assert narrowed(flt, ("git.clone", "git.fetch", "conflict.detected")) == EventFilter(
        repo="app", operations=("git.clone", "git.fetch"))
    assert narrowed(flt, ("claude.request",)) is None  # --op git.* allows none of them
    assert narrowed(EventFilter(), ("git.push",)) == EventFilter(operations=("git.push",))


def test_top_table_sums_the_rest_into_one_row_with_shares() -> None:
    rows = [("a", 5, 1), ("b", 3, 0), ("c", 1, 1), ("d", 1, 0)]
    table = top_table(("name", "events", "failures"), rows, 2, share_of=1)
    assert table.columns == ("name", "events", "failures", "share %")
    assert table.rows == (("a", 5, 1, 50.0), ("b", 3, 0, 30.0), ("(others): 2 more", 2, 1, 20.0))
    assert table.note == "top 2 of 4"
    assert top_table(("name", "events", "failures"), rows[:2], 5).rows == tuple(rows[:2])


def test_top_table_from_a_total_when_the_rest_was_not_read() -> None:
    table = top_table(("name", "events"), [("a", 5)], 1, total_row=("", 9), groups=4)
    assert table.rows == (("a", 5), ("(others): 3 more", 4))


def test_the_report_frame() -> None:
    since = datetime(2026, 11, 1, tzinfo=UTC)
    flt = EventFilter(since=since, actor="al*", operations=("git.push",), limit=3)
    assert filters_of(flt) == {"operations": ["git.push"], "actor": "al*"}
    report = new_report("usage", "Usage", flt, ReportOptions(since=since), (), events_read=0)
    assert report.period == ("2026-11-01T00:00:00Z", None)
    assert report.notes == ("No events in this period.",)
    assert report.generated_at.endswith("Z")
