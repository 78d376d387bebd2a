"""No record stops the store: one it cannot take is stored as an ``audit.rejected`` stand-in."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from gitaudit.config import Settings
from gitaudit.errors import ConfigError
from gitaudit.quarantine import Quarantine
from gitaudit.store import EventFilter, Store, ingest
from gitaudit.transport import spool
from tests.store.helpers import make_record, make_records


def _unstorable() -> list[dict[str, Any]]:
    """Records the store cannot take as they are (they bypassed validation and the intake)."""
    return [
        {**make_record(1), "duration_ms": float("nan")},
        {**make_record(2), "occurred_at": "1-01-01T00:00:00.000000Z"},
        {**make_record(3), "actor": {"uid": 10**30, "user": "mallory"}},
        {**make_record(4), "actor": {"uid": -(10**20)}, "details": {"huge": float("inf")}},
    ]


def _by_operation(store: Store) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    events = store.query(EventFilter())
    rejected = [event for event in events if event["operation"] == "audit.rejected"]
    return [event for event in events if event not in rejected], rejected


def test_unstorable_records_are_replaced_and_the_rest_goes_on(store: Store) -> None:
    first, canary = make_record(0), make_record(9)
    bad = _unstorable()
    result = store.append([first, *bad, canary])
    assert sorted(result.replaced) == [1, 2, 3, 4]
    assert (result.inserted, result.duplicates) == (6, 0)
    kept, rejected = _by_operation(store)
    assert sorted(str(e["id"]) for e in kept) == sorted([first["id"], canary["id"]])
    assert sorted(e["details"]["original_id"] for e in rejected) == sorted(r["id"] for r in bad)
    for event in rejected:
        details = event["details"]
        assert (event["source"], details["stage"]) == ("cli", "writer")
        assert details["reason"].startswith("the store cannot take it")
        assert len(details["sha256"]) == 64 and details["bytes"] > 0
    report = store.verify()
    assert report.ok, report.first_problem
    assert report.rejected == 4 and report.chains[0].records == 6

    again = store.append([first, *bad, canary])  # a retried batch stores no second stand-in
    assert (again.inserted, again.duplicates) == (0, 6)
    assert store.verify().rejected == 4


def test_a_batch_the_database_refuses_is_narrowed_to_the_bad_record(store_url: str) -> None:
    """A NUL in an indexed text column: PostgreSQL refuses the whole INSERT; SQLite takes it."""
    with Store.open(store_url, chain_id="nul") as store:
        records = make_records(6)
        records[3] = {**make_record(3), "repo": {"path": "/src/a\x00b", "name": "a\x00b"}}
        result = store.append(records)
        kept, rejected = _by_operation(store)
        assert result.inserted == 6
        if store.dialect == "postgresql":
            assert list(result.replaced) == [3]
            assert [e["details"]["original_id"] for e in rejected] == [records[3]["id"]]
            assert "\\x00" in rejected[0]["details"]["excerpt"] or "\\u0000" in (
                rejected[0]["details"]["excerpt"]
            )
        else:
            assert not rejected
        assert len(kept) == 6 - len(rejected)
        assert store.verify().ok


def test_a_fault_of_the_store_itself_is_raised_not_quarantined(store_url: str) -> None:
    with Store.open(store_url, chain_id="keyed", chain_key=b"k" * 32) as store:
        store.append(make_records(2))
    with Store.open(store_url, chain_id="keyed") as store, pytest.raises(ConfigError):
        store.append([*_unstorable(), make_record(5)])
    with Store.open(store_url, chain_id="keyed", chain_key=b"k" * 32) as store:
        assert store.count() == 2


def _segment(spool_dir: Path, lines: list[bytes]) -> Path:
    spool.ensure_dir(spool_dir)
    segment = spool_dir / "seg-00000000000000000001-1.jsonl"
    segment.write_bytes(b"".join(line + b"\n" for line in lines))
    return segment


def test_no_spool_line_is_skipped(store_url: str, tmp_path: Path) -> None:
    """Each kind of bad line becomes an audit.rejected in place; the canary after them is kept."""
    spool_dir = tmp_path / "spool"
    first, canary = make_record(0), make_record(9)
    encoded = [spool.encode_line(record)[:-1] for record in (first, canary)]
    bad_lines = [
        encoded[0].replace(b'"duration_ms":12.5', b'"duration_ms":NaN'),  # the store refuses
        encoded[0].replace(b'"2026-11-01T12:00:00+00:00"', b'"0001-01-01T00:00:00Z"'),
        encoded[0].replace(b'"origin"', b'"ori\\u0000gin"'),  # a NUL in a details key
        b'{"id": "\xff\xfe not utf-8"}',
        b'{"operation": "git.commit", broken',
        b"x" * (spool.MAX_LINE_BYTES + 10),
        json.dumps({**first, "source": "martian"}).encode(),
    ]
    for index, line in enumerate(bad_lines[:3]):  # distinct ids, or the store dedupes them
        bad_lines[index] = line.replace(first["id"].encode(), make_record(index)["id"].encode())
    segment = _segment(spool_dir, [encoded[0], *bad_lines, encoded[1]])
    settings = Settings({"database_url": store_url, "spool_dir": spool_dir, "chain_id": "q"})
    report = ingest(settings)
    assert not segment.exists()
    with Store.open(store_url, chain_id="q") as store:
        kept, rejected = _by_operation(store)
        verified = store.verify()
    kept_ids = {str(e["id"]) for e in kept}
    assert {first["id"], canary["id"]} <= kept_ids
    # Each bad line is either stored as itself (the store could take it) or stood in for.
    assert len(kept) + len(rejected) == 2 + len(bad_lines)
    assert report.rejected == len(rejected) >= 5
    assert report.ingested == len(kept)
    lines = {e["details"]["origin"]["line"] for e in rejected if e["details"]["origin"]}
    writer_stage = [e for e in rejected if e["details"]["stage"] == "writer"]
    assert lines | {None} >= {5, 6, 7, 8}
    assert len(lines) + len(writer_stage) == len(rejected)
    oversized = next(e for e in rejected if e["details"]["bytes"] > spool.MAX_LINE_BYTES)
    assert oversized["details"]["sha256"] == hashlib.sha256(bad_lines[5]).hexdigest()
    assert verified.ok, verified.first_problem
    assert verified.rejected == len(rejected)


def test_stand_ins_are_redacted_capped_and_always_storable(store_url: str) -> None:
    quarantine = Quarantine("daemon")
    secret = "ghp_" + "B" * 36
    raws: list[Any] = [
        b"",
        b"\x00\x01\x02\xff" * 1000,
        f'{{"password": "hunter2", "note": "{secret}"}}'.encode(),
        ("x" * 5000 + secret).encode(),
        {"id": 1, "nested": [float("nan"), {"k": "\udcff"}], "correlation_id": "c" * 500},
    ]
    with Store.open(store_url, chain_id="q") as store:
        for raw in raws:
            event = quarantine.event(raw, stage="journal", reason=f"because {secret}")
            text = json.dumps(event)
            assert secret not in text and "hunter2" not in text
            assert len(event["details"]["excerpt"]) <= 4 * 1024
            assert event["source"] == "daemon" and event["severity"] == "medium"
            store.append([event])
        assert store.count() == len(raws) and store.verify().rejected == len(raws)
    # A record without its own UUIDv7 id is timed by ``when`` (the segment's mtime in
    # real use); without it the id's time part is "now" and would differ across a ms.
    when = 1_700_000_000.5
    again = quarantine.event(
        raws[2], stage="journal", reason="x", origin={"file": "f", "line": 1}, when=when
    )
    same = quarantine.event(
        raws[2], stage="journal", reason="y", origin={"file": "f", "line": 1}, when=when
    )
    other = quarantine.event(
        raws[2], stage="journal", reason="x", origin={"file": "f", "line": 2}, when=when
    )
    assert again["id"] == same["id"] != other["id"]
