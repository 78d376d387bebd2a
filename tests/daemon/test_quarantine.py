"""No single record stops the daemon's journal or writer: bad ones are stored as audit.rejected.

The records here bypass the intake (written straight into the journal or a
watched spool, or handed to the journal directly), as a record would that the
intake let through by mistake, or a disk that garbled a line.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from gitaudit.daemon.journal import GroupCommitter, Journal, Worker
from gitaudit.events import validate_event
from gitaudit.store import Store
from gitaudit.transport import spool
from tests.daemon.daemon_harness import Daemons, make_event, wait_for


def _line(event: dict[str, Any]) -> bytes:
    return spool.encode_line(event)[:-1]


def _bad_lines() -> dict[str, bytes]:
    """One line per way a journal line can be bad; each names its own id where it has one."""
    nan = make_event(1)
    year_one = make_event(2, occurred_at="0001-01-01T00:00:00Z")
    nul = make_event(3, repo={"path": "/src/a\x00b", "name": "a"})
    return {
        nan["id"]: _line(nan).replace(b'"duration_ms":12.5', b'"duration_ms":NaN'),
        year_one["id"]: _line(year_one),
        nul["id"]: _line(nul),
        "utf8": b'{"id": "\xff\xfe", "operation": "git.commit"}',
        "json": b'{"operation": "git.commit", "id": ',
        "huge": b'{"x": "' + b"a" * (spool.MAX_LINE_BYTES + 1) + b'"}',
        "invalid": json.dumps({"operation": "git.teleport"}).encode(),
    }


def test_bad_journal_lines_neither_stop_the_writer_nor_vanish(daemons: Daemons) -> None:
    """A year-0001 record crashed the store writer in a restart loop while the journal grew."""
    run = daemons()
    first, canary = make_event(0), make_event(9)
    bad = _bad_lines()
    spool.ensure_dir(run.journal)
    segment = run.journal / "seg-00000000000000000001-1.jsonl"
    segment.write_bytes(b"\n".join([_line(first), *bad.values(), _line(canary)]) + b"\n")
    run.start()
    stored = run.wait_stored([first["id"], canary["id"]])
    wait_for(lambda: not segment.exists(), "the replayed segment to be removed")
    rejected = [event for event in run.stored() if event["operation"] == "audit.rejected"]
    by_original = {event["details"]["original_id"] for event in rejected}
    kept = {event["id"] for event in stored}
    for name, line in bad.items():  # each bad line: kept as itself, or stood in for
        assert name in kept or name in by_original or any(
            event["details"]["bytes"] == len(line) for event in rejected
        ), name
    assert len(rejected) >= 5
    assert {event["source"] for event in rejected} == {"daemon"}
    assert {event["details"]["stage"] for event in rejected} <= {"journal", "writer"}
    assert run.metric_sum("gitaudit_events_quarantined_total") == len(rejected)
    assert run.stop() == 0
    with Store.open(run.database_url, chain_id="reader") as store:
        report = store.verify()
    assert report.ok, report.first_problem
    assert report.rejected == len(rejected)


def test_watched_spool_lines_that_cannot_be_taken_are_stored_as_audit_rejected(
    daemons: Daemons, tmp_path: Path
) -> None:
    watched = tmp_path / "client-spool"
    first, canary = make_event(0), make_event(9)
    bad = [b"{broken", b'{"operation": "git.nonsense"}', b"z" * (spool.MAX_LINE_BYTES + 5)]
    spool.ensure_dir(watched)
    segment = watched / "seg-00000000000000000001-1.jsonl"
    segment.write_bytes(b"\n".join([_line(first), *bad, _line(canary)]) + b"\n")
    run = daemons(config={"watch_spool_dirs": [str(watched)]}).start()
    run.wait_stored([first["id"], canary["id"]])
    wait_for(lambda: not segment.exists(), "the client segment to be removed")
    rejected = wait_for(
        lambda: [e for e in run.stored() if e["operation"] == "audit.rejected"][2:] and [
            e for e in run.stored() if e["operation"] == "audit.rejected"
        ],
        "three audit.rejected events",
    )
    assert sorted(e["details"]["origin"]["line"] for e in rejected) == [2, 3, 4]
    assert {e["details"]["stage"] for e in rejected} == {"spool", "ingest"}
    assert all(e["source"] == "daemon" and e["actor"]["verified"] for e in rejected)
    assert (watched / "rejected" / f"{segment.name}.rejected").exists()
    assert run.stop() == 0


def test_a_record_the_journal_cannot_write_is_journaled_as_its_stand_in(tmp_path: Path) -> None:
    """NaN used to raise out of the journal write and end the committer task for good."""

    async def main() -> list[dict[str, Any]]:
        journal = Journal(tmp_path / "journal")
        journal.open()
        worker = Worker("test-journal")
        committer = GroupCommitter(journal, worker, lambda count: None)
        task = asyncio.create_task(committer.run())
        nan = {**validate_event(make_event(1)).to_record(), "duration_ms": float("nan")}
        records = [make_event(0), nan, make_event(2)]
        await asyncio.wait_for(committer.submit(records), 30)  # no timing: a hang guard
        await asyncio.wait_for(committer.submit([make_event(3)]), 30)  # the committer still runs
        committer.close()
        await task
        sealed = await worker.run(journal.seal)
        worker.stop()
        journal.close()
        assert sealed is not None
        assert sealed.records is not None
        on_disk = [line.event for line in spool.read_segment(sealed.path)]
        assert on_disk == sealed.records
        return sealed.records

    records = asyncio.run(main())
    assert [record["operation"] for record in records] == [
        "git.commit", "audit.rejected", "git.commit", "git.commit",
    ]  # fmt: skip
    stand_in = records[1]["details"]
    assert stand_in["stage"] == "journal" and "NaN" in stand_in["excerpt"]
    assert "cannot be written to the journal" in stand_in["reason"]
