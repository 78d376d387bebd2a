"""The daemon's own retention schedule (``retention_interval``)."""

from __future__ import annotations

from typing import Any

from gitaudit.store import Store
from tests.daemon.daemon_harness import Daemons, make_event, wait_for


def test_the_daemon_expires_on_its_own_schedule(daemons: Daemons) -> None:
    run = daemons()
    run.write_config(
        retention_interval=0.5, retention_days=0, archive_dir=str(run.root / "archive")
    )
    run.start()
    sent = [make_event(i) for i in range(5)]
    run.send(sent)
    run.wait_stored(event["id"] for event in sent)

    def expired() -> list[dict[str, Any]] | None:
        stored = run.stored()
        ids = {event["id"] for event in stored}
        runs = [e for e in stored if e["operation"] == "audit.retention"]
        return runs if runs and not ids & {event["id"] for event in sent} else None

    runs = wait_for(expired, "the daemon's retention run")
    assert {event["source"] for event in runs} == {"daemon"}
    assert {event["chain_id"] for event in runs} == {runs[0]["chain_id"]}
    assert runs[0]["chain_id"].startswith("daemon@")
    assert list((run.root / "archive").rglob("*.manifest.json"))
    assert run.stop() == 0
    with Store.open(run.database_url, chain_id="reader") as store:
        verified = store.verify()
        assert verified.ok, verified.first_problem
        archived = store.verify_archive(run.root / "archive")
        assert [report.problem for report in archived] == [None] * len(archived)


def test_retention_is_off_by_default() -> None:
    from gitaudit.config import Settings

    assert Settings().retention_interval == 0
