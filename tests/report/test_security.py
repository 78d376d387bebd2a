"""`gitaudit report security`: unusual activity, each finding with the events that show it."""

from __future__ import annotations

import json
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gitaudit.report import security
from gitaudit.report.model import Table
from gitaudit.sanitize import Redactor
from gitaudit.store import Store
from tests.gitfixtures import GitSandbox
from tests.report.audit_fixtures import (
    MONDAY,
    Options,
    actor,
    build,
    event,
    findings,
    period,
    push,
    section,
)
from tests.store.conftest import sqlite_url, store, store_url

__all__ = ["sqlite_url", "store", "store_url"]  # fixtures

TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
NIGHT = MONDAY + timedelta(hours=10)  # Monday 22:00 UTC


# --- accumulators, without a store -------------------------------------------------------


def test_off_hours_counts_per_actor_and_skips_gitaudits_own_records() -> None:
    hours = security.OffHours(Options())
    hours.feed("e1", NIGHT, "alice", "git.push", "update")
    hours.feed("e2", NIGHT + timedelta(minutes=5), "alice", "git.fetch", "read")
    hours.feed("e3", MONDAY, "alice", "git.push", "update")  # inside working hours
    hours.feed("e4", MONDAY + timedelta(days=5), "bob", "git.fetch", "read")  # Saturday
    hours.feed("e5", NIGHT, None, "audit.checkpoint", "create")
    built = hours.section()
    found = {item.title: item for item in built.blocks[0].items}  # type: ignore[union-attr]
    assert found["alice worked outside working hours"].event_ids == ("e1", "e2")
    assert found["alice worked outside working hours"].severity == "medium"
    assert found["bob worked outside working hours"].severity == "low"  # reads only
    assert built.blocks[1].rows[0][:3] == ("alice", 2, 1)  # type: ignore[union-attr]


def test_secrets_are_counted_per_kind_never_shown() -> None:
    secrets = security.Secrets()
    secrets.feed("e1", '{"a":"[REDACTED:github-token] and [REDACTED:github-token]"}')
    secrets.feed("e2", '{"a":"https://[REDACTED:url-credentials]@host [REDACTED:nonsense]"}')
    built = secrets.section()
    assert built.blocks[1].rows == (  # type: ignore[union-attr]
        ("github-token", security.KINDS["github-token"], 2, 1),
        ("url-credentials", security.KINDS["url-credentials"], 1, 1),
    )


def test_claims_the_kernel_contradicted() -> None:
    claims = security.Claims()
    lying = event(MONDAY, "git.push", actor=actor("alice", uid=1000, verified=True),
                  details={"claimed_actor": {"uid": 0, "user": "root"}, "peer_pid": 7})
    agent = event(MONDAY, "git.commit", actor=actor("bob", agent={
        "tool": "claude-code", "session_id": "s", "verified": False, "proof": "env"}))
    claims.feed(lying)
    claims.feed(agent)
    found = {item.title: item for item in claims.section().blocks[0].items}  # type: ignore[union-attr]
    assert found["Actor claims the kernel contradicted"].event_ids == (lying["id"],)
    assert found["Actor claims the kernel contradicted"].severity == "high"
    assert found["AI agent claims not proven"].event_ids == (agent["id"],)
    assert claims.rows[0][2:6] == ("alice", 1000, "root", 0)


# --- through a store, SQLite and PostgreSQL ----------------------------------------------


def _history(store: Store) -> dict[str, Any]:
    start, _ = period()
    redacted = Redactor().redact_event(event(
        MONDAY, "git.fetch", actor=actor("carol"),
        result={"exit_code": 128, "error": f"fatal: token {TOKEN} refused"},
    ))
    assert TOKEN not in json.dumps(redacted)
    records: dict[str, Any] = {
        "seen": event(start - timedelta(days=2), "git.fetch", actor=actor("bob", host="old-box")),
        "old_host_push": event(MONDAY, "git.push", actor=actor("bob", host="old-box"),
                               details=push("refs/heads/topic")),
        "new_host_push": event(MONDAY + timedelta(minutes=1), "git.push",
                               actor=actor("eve", host="new-box"),
                               details=push("refs/heads/topic")),
        "new_host_fetch": event(MONDAY + timedelta(minutes=2), "git.fetch",
                                actor=actor("eve", host="new-box")),
        "night": event(NIGHT, "git.push", actor=actor("dave"), details=push("refs/heads/x")),
        "forced": event(MONDAY, "git.push", actor=actor("alice"),
                        details=push("refs/heads/main", forced=True)),
        "redacted": redacted,
        "lying": event(MONDAY, "git.commit", actor=actor("alice", verified=True),
                       details={"claimed_actor": {"user": "root", "uid": 0}}),
        "clones": [event(MONDAY + timedelta(minutes=10 + n), "git.clone", actor=actor("mallory"),
                         repo={"name": f"repo-{n}", "path": f"/src/repo-{n}"})
                   for n in range(10)],
        "few": [event(MONDAY + timedelta(minutes=30 + n), "git.clone", actor=actor("bob"),
                      repo={"name": f"repo-{n}", "path": f"/src/repo-{n}"}) for n in range(3)],
    }
    flat = [item for value in records.values()
            for item in (value if isinstance(value, list) else [value])]
    store.append(flat)
    return records


def test_security_report_finds_the_unusual_and_names_the_events(store: Store) -> None:
    records = _history(store)
    start, end = period()
    report, as_json = build(store, security.build, Options(since=start, until=end))
    found = findings(report)
    assert found["Force-pushes to protected refs"].event_ids == (records["forced"]["id"],)
    night = found["dave worked outside working hours"]
    assert night.event_ids == (records["night"]["id"],)
    mass = found["mallory cloned 10 repositories on 2026-11-02"]
    assert mass.severity == "high"
    assert mass.event_ids == tuple(item["id"] for item in records["clones"])
    assert not any(title.startswith("bob cloned") for title in found)
    new_host = found["Push from a host never seen before: new-box"]
    assert new_host.event_ids == (records["new_host_push"]["id"],)
    assert "eve" in new_host.detail
    assert not any("old-box" in title for title in found)  # seen before the period
    secret = found["Secrets redacted: github-token"]
    assert secret.event_ids == (records["redacted"]["id"],)
    assert found["Actor claims the kernel contradicted"].event_ids == (records["lying"]["id"],)
    text = json.dumps(as_json)
    assert TOKEN not in text
    assert TOKEN[4:20] not in text


def test_a_tighter_clone_threshold_flags_fewer_clones(store: Store) -> None:
    _history(store)
    report, _ = build(store, security.build, Options(clone_threshold=3))
    table = section(report, "Mass cloning")[1]
    assert isinstance(table, Table)
    assert [row[0] for row in table.rows] == ["mallory", "bob"]


def test_security_report_on_an_empty_period(store: Store) -> None:
    start, end = period()
    report, _ = build(store, security.build, Options(since=start, until=end))
    assert report.notes == ("No events in this period.",)
    assert all(item.severity == "info" for item in findings(report).values())


def test_a_real_redaction_through_the_wrapper_is_counted_never_shown(
    tmp_path: Path, sqlite_url: str
) -> None:
    sandbox = GitSandbox(tmp_path / "sandbox")
    url = f"https://deploy:{TOKEN}@nonexistent.invalid/team/app.git"
    result = sandbox.audited("clone", "-q", url, cwd=sandbox.root)
    assert result.returncode != 0
    recorded = sandbox.events()
    with Store.open(sqlite_url, chain_id="test-chain") as opened:
        opened.append(recorded)
        report, as_json = build(opened, security.build, Options())
    table = section(report, "Secrets redacted")[1]
    assert [row[0] for row in table.rows] == ["url-credentials"]  # type: ignore[union-attr]
    assert findings(report)["Secrets redacted: url-credentials"].event_ids == (
        recorded[-1]["id"],)
    assert TOKEN not in json.dumps(as_json)


def test_the_off_hours_pass_in_a_worker_gives_the_report_made_in_one_process(
    store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The off-hours pass read by a spawned worker while the report builds the rest: the
    same report (but its time), events read included; a worker that died or could not
    open the store: read here instead."""
    records = _history(store)
    store.append([event(NIGHT + timedelta(minutes=n), "git.fetch", actor=actor(name))
                  for n, name in enumerate(["dave", "erin", "dave", "frank"] * 3)])  # fmt: skip
    start, end = period()
    _, here = build(store, security.build, Options(since=start, until=end, jobs=1))
    started: list[bool] = []
    real = security.OffHoursPass.__init__

    def spy(self: security.OffHoursPass, *args: Any) -> None:
        real(self, *args)
        started.append(self.future is not None)

    monkeypatch.setattr(security.OffHoursPass, "__init__", spy)
    report, in_worker = build(store, security.build, Options(since=start, until=end, jobs=2))
    assert started == [True]
    for made in (here, in_worker):
        made.pop("generated_at")
    assert in_worker == here
    assert findings(report)["dave worked outside working hours"].event_ids[0] == (
        records["night"]["id"])
    build(store, security.build, Options(since=start, until=end))  # auto: too few events
    assert started == [True, False]

    def dead(_self: Any, timeout: float | None = None) -> Any:
        raise BrokenProcessPool("the worker was killed")

    monkeypatch.setattr(Future, "result", dead)
    _, after_death = build(store, security.build, Options(since=start, until=end, jobs=2))
    after_death.pop("generated_at")
    assert after_death == here
    monkeypatch.undo()
    nowhere = f"sqlite:///{tmp_path / 'missing' / 'audit.db'}"  # the worker cannot open it
    monkeypatch.setattr(security, "workers", lambda _conn, _options: (nowhere, 2, 0))
    _, unreadable = build(store, security.build, Options(since=start, until=end))
    unreadable.pop("generated_at")
    assert unreadable == here
