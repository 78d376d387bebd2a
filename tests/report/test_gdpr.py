"""The gdpr report: every event identifying the subject, streamed, revealed; both engines."""

from __future__ import annotations

import io
import json
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gitaudit.errors import UsageError
from gitaudit.report import gdpr
from gitaudit.report.model import EventStream, KeyValues, Report, to_json
from gitaudit.store import EventFilter, Store
from gitaudit.store.subjects import SubjectAlreadyForgotten, SubjectNotFound
from tests.store.helpers import BASE_TIME, make_record, make_records, writer_before_0007


@dataclass(frozen=True)
class Options:
    """A double of report-core's ReportOptions: the one field gdpr reads."""

    subject: str | None


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    fresh: str = request.getfixturevalue("pg_fresh_url")
    return fresh


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    with Store.open(url, chain_id="c") as opened:
        yield opened


def _events(report: Report) -> list[list[dict[str, Any]]]:
    return [list(block.open()) for section in report.sections for block in section.blocks
            if isinstance(block, EventStream)]  # fmt: skip


def _facts(report: Report) -> dict[str, Any]:
    block = report.sections[0].blocks[0]
    assert isinstance(block, KeyValues)
    return dict(block.items)


def test_exports_every_event_identifying_the_subject(store: Store) -> None:
    mention = make_record(1, details={"message": "reviewed by Alice@example.com"})  # bob's
    store.append([*make_records(6), mention])
    read: list[int] = []
    with store.reading() as conn:
        report = gdpr.build(conn, EventFilter(), Options("alice@example.com"), read.append)
        (events,) = _events(report)
        doc = to_json(report)
    # alice's own 2 events (user, git name, email) and bob's event that mentions her
    assert len(events) == 3
    assert [e["actor"]["user"] for e in events] == ["alice", "bob", "alice"]  # time order
    assert events[1]["details"]["message"] == "reviewed by alice@example.com"
    assert read[-1] == 3
    facts = _facts(report)
    assert facts["events (identities as pseudonyms)"] == 3 and facts["identities"] == 3
    assert doc["kind"] == "gdpr" and doc["filters"]["subject"] == "alice@example.com"
    assert json.dumps(doc)  # the JSON form is plain data


def test_period_and_filters_narrow_it(store: Store) -> None:
    store.append(make_records(9))
    flt = EventFilter(since=BASE_TIME + timedelta(minutes=1), operations=("git.push", "git.*"))
    with store.reading() as conn:
        (events,) = _events(gdpr.build(conn, flt, Options("alice"), lambda _n: None))
    assert [e["occurred_at"][11:16] for e in events] == ["12:03", "12:06"]


def test_streams_in_bounded_memory(store: Store) -> None:
    store.append([make_record(index * 3) for index in range(3000)])
    with store.reading() as conn:
        report = gdpr.build(conn, EventFilter(), Options("alice"), lambda _n: None)
        (stream,) = [b for s in report.sections for b in s.blocks if isinstance(b, EventStream)]
        tracemalloc.start()
        count = sum(1 for _ in stream.open())
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert count == 3000
    assert peak < 8_000_000  # 3000 events as a list would be well above; the stream holds a batch


def test_events_stored_before_revision_0007_come_in_their_own_section(
    url: str, store: Store
) -> None:
    from gitaudit.store.engine import create_store_engine, write_transaction

    engine = create_store_engine(url)
    try:
        with write_transaction(engine) as conn:  # as the writer stored them before 0007
            writer_before_0007("old").append(conn, make_records(4))
    finally:
        engine.dispose()
    store.append([make_record(30)])  # alice, pseudonymized
    with store.reading() as conn:
        report = gdpr.build(conn, EventFilter(), Options("alice@example.com"), lambda _n: None)
        new, old = _events(report)
    assert [e["actor"]["user"] for e in new] == ["alice"]
    assert [e["actor"]["user"] for e in old] == ["alice", "alice"]
    facts = _facts(report)
    assert facts["events stored before revision 0007 naming them in clear (whole store)"] == 2


def test_after_db_rekey_the_old_events_are_exported_with_the_new_ones(
    url: str, store: Store
) -> None:
    from gitaudit.store.engine import create_store_engine, write_transaction
    from gitaudit.store.rekey import details

    engine = create_store_engine(url)
    try:
        with write_transaction(engine) as conn:
            writer_before_0007("old").append(conn, make_records(4))
    finally:
        engine.dispose()
    store.append([make_record(30)])
    report = store.rekey(lambda chain, run: make_record(
        90, operation="audit.store_rekeyed", actor={"host": "h"}, details=details(chain, run)))
    assert report is not None and not report.failed
    with store.reading() as conn:
        built = gdpr.build(conn, EventFilter(), Options("alice@example.com"), lambda _n: None)
        (new,) = _events(built)  # no section of events stored before revision 0007 left
    assert [e["chain_id"] for e in new] == ["old", "old", "c"]
    assert _facts(built)[
        "events stored before revision 0007 naming them in clear (whole store)"] == 0


def test_bad_input(store: Store) -> None:
    store.append(make_records(3))
    with store.reading() as conn:
        with pytest.raises(SubjectNotFound) as missing:
            gdpr.build(conn, EventFilter(), Options("nobody@example.com"), lambda _n: None)
        assert missing.value.exit_code == 3
        with pytest.raises(UsageError, match="needs --subject"):
            gdpr.build(conn, EventFilter(), Options(None), lambda _n: None)
        with pytest.raises(UsageError, match="--grep"):
            gdpr.build(conn, EventFilter(grep="x"), Options("bob"), lambda _n: None)
    done = store.forget("carol", follow_links=True, confirm=lambda _s: True,
                        record=lambda _s: make_record(50, actor={"host": "h"}))  # fmt: skip
    assert done is not None
    token = done[0].plan.subjects[0].token
    with store.reading() as conn, pytest.raises(SubjectAlreadyForgotten):
        gdpr.build(conn, EventFilter(), Options(token), lambda _n: None)


def test_json_export_streams_the_events(store: Store) -> None:
    pytest.importorskip("gitaudit.report.render_json")  # report-core's renderer
    from gitaudit.report.render_json import write_json  # type: ignore[import-not-found,unused-ignore]

    store.append(make_records(4))
    out = io.StringIO()
    with store.reading() as conn:
        write_json(gdpr.build(conn, EventFilter(), Options("bob"), lambda _n: None), out)
    doc = json.loads(out.getvalue())
    (events,) = [block["events"] for section in doc["sections"] for block in section["blocks"]
                 if block["type"] == "events"]  # fmt: skip
    assert [e["actor"]["git_email"] for e in events] == ["bob@example.com"]
