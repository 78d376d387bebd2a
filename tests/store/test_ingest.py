"""ingest: spool segments into the store, bad lines set aside, crash-safe re-runs."""

from __future__ import annotations

import importlib
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from gitaudit.config import Settings
from gitaudit.store import EventFilter, Store, ingest
from gitaudit.transport import fallback_spool_dir, spool
from tests.store.helpers import finish, make_record, make_records, worker

# gitaudit.store.ingest (the attribute) is the function; fetch the module by name
ingest_module: Any = importlib.import_module("gitaudit.store.ingest")

BIG = 1 << 30


def _settings(url: str, spool_dir: Path) -> Settings:
    return Settings({"database_url": url, "spool_dir": spool_dir, "chain_id": "ingest"})


def _spool(spool_dir: Path, records: list[dict[str, Any]], segment_bytes: int = BIG) -> None:
    spool.append(spool_dir, records, segment_bytes)


def _ids(store: Store) -> list[str]:
    return [str(event["id"]) for event in store.query(EventFilter())]


def _leftovers(spool_dir: Path) -> list[str]:
    return sorted(p.name for p in spool_dir.iterdir() if p.name.endswith(".jsonl"))


def test_ingest_moves_every_segment_into_the_store(store_url: str, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    records = make_records(30)
    for start in range(0, 30, 10):
        _spool(spool_dir, records[start : start + 10], segment_bytes=4000)  # several sealed
    assert len(spool.sealed_segments(spool_dir)) > 1
    with Store.open(store_url, chain_id="ingest") as store:
        report = ingest(_settings(store_url, spool_dir), store)
        assert (report.ingested, report.duplicates, report.rejected) == (30, 0, 0)
        assert report.segments > 1
        assert sorted(_ids(store)) == sorted(str(r["id"]) for r in records)
        assert store.verify().ok
    assert _leftovers(spool_dir) == []


def test_ingest_opens_the_configured_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'audit.db'}"
    spool_dir = tmp_path / "spool"
    _spool(spool_dir, make_records(3))
    report = ingest(_settings(url, spool_dir))
    assert report.ingested == 3
    with Store.open(url, chain_id="reader") as store:
        assert store.count() == 3


def test_missing_spool_directory_is_nothing_to_do(store_url: str, tmp_path: Path) -> None:
    report = ingest(_settings(store_url, tmp_path / "absent"))
    assert (report.ingested, report.segments) == (0, 0)
    assert not (tmp_path / "absent").exists()
    assert not Path(fallback_spool_dir()).exists()


def test_emergency_spool_is_drained_too(store_url: str, tmp_path: Path) -> None:
    _spool(fallback_spool_dir(), make_records(2))
    _spool(tmp_path / "spool", make_records(1, start=2))
    report = ingest(_settings(store_url, tmp_path / "spool"))
    assert (report.ingested, report.segments) == (3, 2)


def _bad_segment(spool_dir: Path, good: list[dict[str, Any]]) -> Path:
    spool.ensure_dir(spool_dir)
    lines = [
        spool.encode_line(good[0]),
        b"{not json\n",
        spool.encode_line({**good[1], "operation": "git.teleport"}),
        b"[1, 2, 3]\n",
        b"\n",
        spool.encode_line(good[2]),
        spool.encode_line(good[3])[:-20],  # a writer died mid-line: no newline
    ]
    segment = spool_dir / "seg-00000000000000000001-1.jsonl"
    segment.write_bytes(b"".join(lines))
    return segment


def test_bad_lines_are_set_aside_and_reported(store_url: str, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    good = make_records(4)
    segment = _bad_segment(spool_dir, good)
    report = ingest(_settings(store_url, spool_dir))
    assert (report.ingested, report.rejected, report.segments) == (2, 4, 1)
    rejected = spool_dir / "rejected" / f"{segment.name}.rejected"
    assert report.rejected_files == [rejected]
    assert len(rejected.read_bytes().splitlines()) == 4
    assert [p.split(":")[0] for p in report.problems] == [
        f"{segment.name} line 2",
        f"{segment.name} line 3",
        f"{segment.name} line 4",
        f"{segment.name} line 7",
    ]
    assert "not JSON" in report.problems[0]
    assert "operation" in report.problems[1]
    assert "git.teleport" in report.problems[1]
    assert "not a JSON object" in report.problems[2]
    assert "truncated" in report.problems[3]
    assert not segment.exists()
    with Store.open(store_url, chain_id="ingest") as store:
        stored = store.query(EventFilter())
    kept = [event for event in stored if event["operation"] != "audit.rejected"]
    assert sorted(str(e["id"]) for e in kept) == sorted(str(r["id"]) for r in (good[0], good[2]))
    stand_ins = sorted(
        (e for e in stored if e["operation"] == "audit.rejected"),
        key=lambda e: e["details"]["origin"]["line"],
    )
    assert [(e["details"]["stage"], e["details"]["origin"]["line"]) for e in stand_ins] == [
        ("spool", 2), ("ingest", 3), ("spool", 4), ("spool", 7),
    ]  # fmt: skip


def test_rejected_lines_are_not_written_twice(store_url: str, tmp_path: Path) -> None:
    """A run killed between setting lines aside and deleting the segment does not duplicate."""
    spool_dir = tmp_path / "spool"
    segment = _bad_segment(spool_dir, make_records(4))
    rejected = spool_dir / "rejected" / f"{segment.name}.rejected"
    rejected.parent.mkdir()
    rejected.write_bytes(b"{not json\n")
    report = ingest(_settings(store_url, spool_dir))
    assert report.rejected == 4
    assert rejected.read_bytes() == b"{not json\n"


def test_rerun_and_respooled_events_are_duplicates(store_url: str, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    records = make_records(5)
    _spool(spool_dir, records)
    first = ingest(_settings(store_url, spool_dir))
    again = ingest(_settings(store_url, spool_dir))
    _spool(spool_dir, [*records[:2], make_record(9)])
    third = ingest(_settings(store_url, spool_dir))
    assert (first.ingested, again.ingested, again.segments) == (5, 0, 0)
    assert (third.ingested, third.duplicates) == (1, 2)


def test_batches_and_progress(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_module, "BATCH_SIZE", 7)
    spool_dir = tmp_path / "spool"
    _spool(spool_dir, make_records(30))
    calls: list[tuple[int, int]] = []
    with Store.open(store_url, chain_id="ingest") as store:
        report = ingest(_settings(store_url, spool_dir), store, lambda d, t: calls.append((d, t)))
        assert report.ingested == 30
        assert store.verify().ok
    assert [done for done, _ in calls] == [7, 14, 21, 28, 30, 30]
    assert all(total == 30 for _, total in calls)


@pytest.mark.parametrize("mode", ["after-commit", "mid-transaction"])
def test_killed_ingest_loses_and_duplicates_nothing(
    store_url: str, tmp_path: Path, mode: str
) -> None:
    """SIGKILL a real ingest process during its second batch, then run ingest again."""
    spool_dir = tmp_path / "spool"
    records = make_records(3000)
    _spool(spool_dir, records[:1500])
    spool.ensure_dir(spool_dir)
    with (spool_dir / spool.ACTIVE_NAME).open("ab") as active:
        active.write(b"{broken line\n")
    _spool(spool_dir, records[1500:])
    Store.open(store_url, chain_id="ingest").close()

    code, stderr = finish(worker("ingest", store_url, str(spool_dir), "500", mode, "2"))
    assert code == -signal.SIGKILL, stderr
    committed = 1000 if mode == "after-commit" else 500
    with Store.open(store_url, chain_id="ingest") as store:
        assert store.count() == committed
        assert len(spool.sealed_segments(spool_dir)) == 1
        assert not (spool_dir / "rejected").exists()

        report = ingest(_settings(store_url, spool_dir), store)
        assert (report.ingested, report.duplicates) == (3000 - committed, committed)
        assert report.rejected == 1
        stored = store.query(EventFilter())
        stand_ins = [e for e in stored if e["operation"] == "audit.rejected"]
        assert [e["details"]["origin"]["line"] for e in stand_ins] == [1501]
        assert sorted(str(e["id"]) for e in stored if e not in stand_ins) == sorted(
            str(r["id"]) for r in records
        )
        verified = store.verify()
        assert verified.ok, verified.first_problem
        assert verified.chains[0].last_seq == 3001
    assert _leftovers(spool_dir) == []
    rejected = report.rejected_files[0].read_bytes()
    assert rejected == b"{broken line\n"


def test_spooled_lines_keep_their_content(store_url: str, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    record = make_record(3, details={"message": "fix ünïcode ✓", "n": [1, 2.5, None]})
    _spool(spool_dir, [record])
    ingest(_settings(store_url, spool_dir))
    with Store.open(store_url, chain_id="x") as store:
        (stored,) = store.query(EventFilter())
    for key in ("chain_id", "seq", "prev_hash", "hash"):
        stored.pop(key)
        record.pop(key)
    assert json.dumps(stored, sort_keys=True) == json.dumps(record, sort_keys=True)


def test_spool_lines_no_store_could_take_are_set_aside(store_url: str, tmp_path: Path) -> None:
    """Anyone who may write the spool may write these; ingest sets them aside and goes on."""
    spool_dir = tmp_path / "spool"
    spool.ensure_dir(spool_dir)
    good = make_records(2)
    nan = json.dumps({**make_record(5), "duration_ms": float("nan")}).encode()
    lines = [
        spool.encode_line(good[0]),
        nan + b"\n",
        spool.encode_line({**make_record(6), "occurred_at": "0001-01-01T00:00:00Z"}),
        spool.encode_line({**make_record(7), "occurred_at": "0001-01-01T00:00:00+01:00"}),
        spool.encode_line({**make_record(8), "details": {"x": "a\x00b"}}),
        spool.encode_line({**make_record(9), "details": {"x": "\ud800"}}),
        b"[" * 100_000 + b"]" * 100_000 + b"\n",
        b'{"details": ' + b"[" * 200 + b"]" * 200 + b"}\n",
        spool.encode_line(good[1]),
    ]
    (spool_dir / "seg-00000000000000000001-1.jsonl").write_bytes(b"".join(lines))
    report = ingest(_settings(store_url, spool_dir))
    assert (report.ingested, report.rejected) == (2, 7)
    with Store.open(store_url, chain_id="ingest") as store:
        stored = store.query(EventFilter())
    kept = [event for event in stored if event["operation"] != "audit.rejected"]
    assert sorted(str(e["id"]) for e in kept) == sorted(str(r["id"]) for r in good)
    stand_ins = [event for event in stored if event["operation"] == "audit.rejected"]
    assert sorted(e["details"]["origin"]["line"] for e in stand_ins) == [2, 3, 4, 5, 6, 7, 8]


def test_spooled_lines_cannot_say_what_only_gitaudit_says(store_url: str, tmp_path: Path) -> None:
    """A spool file is a client's word: daemon/trace2 sources and audit.* operations become
    audit.rejected stand-ins; claimed_actor and a verified actor are the daemon's to set."""
    spool_dir = tmp_path / "spool"
    spool.ensure_dir(spool_dir)
    forged = [
        {**make_record(1), "source": "daemon", "operation": "audit.config_changed"},
        {**make_record(2), "source": "trace2"},
        {**make_record(3), "operation": "audit.verify", "category": "read"},
    ]
    honest = make_record(4)
    honest["actor"] = {**honest["actor"], "verified": True}
    honest["details"] = {"claimed_actor": {"uid": 0, "user": "root"}, "peer_pid": 1}
    lines = [spool.encode_line(record) for record in (*forged, honest)]
    (spool_dir / "seg-00000000000000000001-1.jsonl").write_bytes(b"".join(lines))
    report = ingest(_settings(store_url, spool_dir))
    assert (report.ingested, report.rejected) == (1, 3)
    with Store.open(store_url, chain_id="ingest") as store:
        stored = {str(event["id"]): event for event in store.query(EventFilter())}
    assert not set(stored) & {str(record["id"]) for record in forged}
    kept = stored[str(honest["id"])]
    assert kept["actor"]["verified"] is False
    assert "claimed_actor" not in kept["details"] and "peer_pid" not in kept["details"]
    stand_ins = [e for e in stored.values() if e["operation"] == "audit.rejected"]
    reasons = [event["details"]["reason"] for event in stand_ins]
    assert len(reasons) == 3 and all("recorded by gitaudit itself" in r for r in reasons)
