"""Journal replay, client spool watching and the single-daemon journal lock."""

from __future__ import annotations

from pathlib import Path

from gitaudit.transport import spool
from tests.daemon.daemon_harness import Daemons, make_event, wait_for


def test_journal_left_by_a_previous_run_is_replayed(daemons: Daemons) -> None:
    run = daemons()
    sealed = [make_event(i) for i in range(30)]
    active = [make_event(i) for i in range(30, 40)]
    spool.append(run.journal, sealed, 1)  # sealed at once (segment size 1 byte)
    spool.append(run.journal, active, 1 << 30)
    with (run.journal / "active.jsonl").open("ab") as handle:
        handle.write(b'{"id": "half a line from a kill -9')  # an unacknowledged partial write
    run.start()
    run.wait_stored([event["id"] for event in sealed + active])
    wait_for(lambda: not list(run.journal.glob("seg-*.jsonl")), "the journal to empty")
    stored = run.stored()
    rejected = [event for event in stored if event["operation"] == "audit.rejected"]
    assert len(stored) == 41 and len(rejected) == 1  # the partial line: never silently skipped
    assert "truncated" in rejected[0]["details"]["reason"]
    assert list((run.journal / "rejected").iterdir())  # its raw bytes, kept aside
    assert run.stop() == 0


def test_watched_spool_dirs_are_ingested_at_start_and_as_they_fill(
    daemons: Daemons, tmp_path: Path
) -> None:
    first, second = tmp_path / "spool-a", tmp_path / "spool-b"
    early = [make_event(i, actor={"uid": 0, "user": "x", "verified": True}) for i in range(5)]
    spool.append(first, early, 1 << 20)
    second.mkdir()
    run = daemons(config={"watch_spool_dirs": [str(first), str(second)]}).start()
    stored = run.wait_stored([event["id"] for event in early])
    assert all(event["actor"]["verified"] is False for event in stored)  # no kernel word on it
    late = [make_event(i) for i in range(5, 12)]
    spool.append(second, late, 1 << 20)  # a client spools while the daemon runs
    spool.append(second, [{"operation": "git.nonsense"}], 1 << 20)
    run.wait_stored([event["id"] for event in late])
    wait_for(lambda: list((second / "rejected").glob("*.rejected")), "the bad line set aside")
    wait_for(lambda: not spool.sealed_segments(second), "the spool segments to be removed")
    assert run.metric_sum("gitaudit_events_spooled_total") >= 12
    assert run.stop() == 0


def test_one_journal_one_daemon(daemons: Daemons) -> None:
    first = daemons().start()
    second = daemons()
    second.write_config(journal_dir=str(first.journal))
    second.start(wait=False)
    assert second.process is not None
    assert second.process.wait(60) != 0
    assert "in use by another gitaudit daemon" in second.log()
    assert first.stop() == 0
