"""`gitaudit report soc2`: change-management and access evidence, each finding with its events."""

from __future__ import annotations

import json
from concurrent.futures.process import BrokenProcessPool
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func

from gitaudit.config import Settings
from gitaudit.report import soc2
from gitaudit.report.common import narrowed
from gitaudit.report.evidence import MAX_ROWS, Reader, RefChanges
from gitaudit.report.model import MAX_EVIDENCE_IDS, Findings, KeyValues, Table
from gitaudit.store import Store, verify_parallel
from gitaudit.store.checkpoints import generate_key
from gitaudit.store.integrity import verify_period
from gitaudit.store.reader import EventFilter
from gitaudit.store.stats import GROUPS
from gitaudit.store.tables import events
from gitaudit.store.verify_parallel import Running, plan
from tests.gitfixtures import GitSandbox
from tests.hooks.conftest import gitaudit, hook_events
from tests.hooks.test_faults import failing_pre_push, pushable
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
from tests.store.helpers import BASE_TIME, make_record, tamper
from tests.store.test_retention import DAY, expire

__all__ = ["sqlite_url", "store", "store_url"]  # fixtures

AGENT = {"tool": "claude-code", "session_id": "s-1", "verified": False, "proof": "env"}


# --- accumulators, without a store -------------------------------------------------------


def test_protected_pushes_name_actor_forced_and_human_or_agent() -> None:
    pushes = soc2.ProtectedPushes(Options())
    human = event(MONDAY, "git.push", actor=actor("alice"), details=push("refs/heads/main"))
    claimed = event(MONDAY, "git.push", actor=actor("bob", agent=AGENT),
                    details=push("refs/heads/release/2.0", forced=True))
    verified = event(MONDAY, "git.push", actor=actor("carol", agent={**AGENT, "verified": True,
                                                                     "proof": "ancestry"}),
                     details=push("refs/heads/main"))
    feature = event(MONDAY, "git.push", actor=actor("alice"), details=push("refs/heads/feature"))
    refused = event(MONDAY, "git.push", actor=actor("alice"), outcome="failure",
                    details=push("refs/heads/main", status="rejected"))
    hook_refused = event(MONDAY, "git.push", actor=actor("alice"), outcome="failure",
                         details=push("refs/heads/main"))
    for item in (human, claimed, verified, feature, refused, hook_refused):
        pushes.feed(item)
    built = pushes.section()
    by_title = {item.title: item for item in built.blocks[0].items}  # type: ignore[union-attr]
    assert by_title["Protected refs changed by people"].event_ids == (human["id"],)
    unverified = by_title["Protected refs changed by an AI agent the daemon did not verify"]
    assert (unverified.severity, unverified.event_ids) == ("medium", (claimed["id"],))
    assert by_title["Protected refs changed by a verified AI agent"].event_ids == (
        verified["id"],)
    rows = built.blocks[2].rows  # type: ignore[union-attr]
    assert [(row[1], row[2].split(" session")[0], row[4], row[6], row[7]) for row in rows] == [
        ("alice", "human", "refs/heads/main", "no", human["id"]),
        ("bob", "agent claude-code (claimed)", "refs/heads/release/2.0", "yes", claimed["id"]),
        ("carol", "agent claude-code (verified)", "refs/heads/main", "no", verified["id"]),
    ]


def test_denied_is_a_hook_the_remote_or_a_tool_permission_saying_no() -> None:
    failures = soc2.Failures()
    hook = event(MONDAY, "git.commit", outcome="failure",
                 result={"exit_code": 1, "error": "refused by the pre-commit hook (exit code 1)"})
    remote = event(MONDAY, "git.push", outcome="failure",
                   details=push("refs/heads/main", status="rejected"))
    tool = event(MONDAY, "claude.tool_use", outcome="failure",
                 details={"tool": "Bash", "decision": "reject"})
    plain = event(MONDAY, "git.fetch", outcome="failure",
                  result={"exit_code": 128, "error": "fatal: could not read from remote"})
    for item in (hook, remote, tool, plain):
        failures.feed(item)
    assert failures.denied.ids == [hook["id"], remote["id"], tool["id"]]
    assert failures.failed.ids == [plain["id"]]
    reasons = [row[5] for row in failures.rows]
    assert reasons == ["refused by the pre-commit hook (exit code 1)",
                       "the remote refused refs/heads/main", "tool use denied (Bash)"]


def test_force_pushes_and_deletions_of_every_kind() -> None:
    changes = RefChanges(Options())
    forced_main = event(MONDAY, "git.push", details=push("refs/heads/main", forced=True))
    forced_topic = event(MONDAY, "git.push", details=push("refs/heads/topic", forced=True))
    tag = event(MONDAY, "git.tag", details={"names": ["v1"], "delete": True})
    branch = event(MONDAY, "git.branch", details={"names": ["old"], "delete": True})
    update_ref = event(MONDAY, "git.other", details={"subcommand": "update-ref",
                                                     "ref": "refs/heads/main", "delete": True})
    remote_delete = event(MONDAY, "git.push",
                          details=push("refs/heads/gone", deleted=True, new=None))
    for item in (forced_main, forced_topic, tag, branch, update_ref, remote_delete):
        changes.feed(item)
    found = {item.title: item for item in changes.findings()}
    assert found["Force-pushes to protected refs"].event_ids == (forced_main["id"],)
    assert found["Force-pushes to protected refs"].severity == "high"
    assert found["Protected refs deleted"].event_ids == (tag["id"], update_ref["id"])
    assert found["Force-pushes to other refs"].event_ids == (forced_topic["id"],)
    assert found["Branch and tag deletions"].event_ids == (branch["id"], remote_delete["id"])
    assert [row[5] for row in changes.rows] == [
        "force-push (protected, remote)", "force-push (remote)", "tag deletion (protected, local)",
        "branch deletion (local)", "branch deletion (protected, local)",
        "branch deletion (remote)"]
    assert changes.rows[0][0] == "2026-11-02T12:00:00Z"


def test_evidence_and_rows_are_capped_however_many_events() -> None:
    changes = RefChanges(Options())
    many = [event(MONDAY, "git.push", details=push("refs/heads/main", forced=True))
            for _ in range(MAX_ROWS + 50)]
    for item in many:
        changes.feed(item)
    (finding,) = changes.findings()
    assert finding.event_count == MAX_ROWS + 50
    assert finding.event_ids == tuple(item["id"] for item in many[:MAX_EVIDENCE_IDS])
    table = changes.section().blocks[1]
    assert isinstance(table, Table)
    assert len(table.rows) == MAX_ROWS
    assert table.note == f"The first {MAX_ROWS} of {MAX_ROWS + 50} rows."


# --- through a store, SQLite and PostgreSQL ----------------------------------------------


def _history(store: Store) -> dict[str, dict[str, Any]]:
    start, _ = period()
    records = {
        "before": event(start - timedelta(days=3), "git.push",
                        details=push("refs/heads/main", forced=True)),
        "forced": event(MONDAY, "git.push", actor=actor("alice"),
                        details=push("refs/heads/main", forced=True)),
        "agent": event(MONDAY + timedelta(minutes=1), "git.push",
                       actor=actor("bob", agent=AGENT), details=push("refs/heads/release/1")),
        "deleted": event(MONDAY + timedelta(minutes=2), "git.push", actor=actor("bob"),
                         details=push("refs/heads/topic", deleted=True, new=None)),
        "refused": event(MONDAY + timedelta(minutes=3), "git.push", actor=actor("carol"),
                         outcome="failure", details=push("refs/heads/main"),
                         result={"exit_code": 1,
                                 "error": "refused by the pre-push hook (exit code 1)"}),
        "clone": event(MONDAY + timedelta(minutes=4), "git.clone", actor=actor("carol"),
                       repo={"name": "payroll", "path": "/src/payroll"}),
        "fetch1": event(MONDAY + timedelta(minutes=5), "git.fetch", actor=actor("carol"),
                        repo={"name": "payroll", "path": "/src/payroll"}),
        "fetch2": event(MONDAY + timedelta(minutes=6), "git.fetch", actor=actor("carol"),
                        repo={"name": "payroll", "path": "/src/payroll"}),
    }
    store.append(list(records.values()))
    return records


def test_soc2_report_links_every_finding_to_its_events(store: Store) -> None:
    records = _history(store)
    start, end = period()
    report, as_json = build(store, soc2.build, Options(since=start, until=end))
    found = findings(report)
    assert found["Force-pushes to protected refs"].event_ids == (records["forced"]["id"],)
    assert found["Protected refs changed by an AI agent the daemon did not verify"].event_ids \
        == (records["agent"]["id"],)
    assert found["Branch and tag deletions"].event_ids == (records["deleted"]["id"],)
    assert found["Denied operations"].event_ids == (records["refused"]["id"],)
    assert records["before"]["id"] not in json.dumps(as_json)  # outside the period
    (access,) = section(report, "Repository access")
    assert isinstance(access, Table)
    assert [row[:5] for row in access.rows] == [("carol", "payroll", 1, 2, 0)]
    assert access.rows[0][5] == "2026-11-02T12:04:00Z"
    assert access.rows[0][6] == "2026-11-02T12:06:00Z"
    facts = section(report, "Integrity")[0]
    assert isinstance(facts, KeyValues)
    assert dict(facts.items)["result"] == "passed"
    assert dict(facts.items)["records checked"] == 7
    retention = dict(section(report, "Retention")[0].items)  # type: ignore[union-attr]
    assert retention["default"] == "kept forever"
    assert "No signed checkpoint covers the period" in found
    checkpoint_facts = dict(section(report, "Signed checkpoints")[0].items)  # type: ignore[union-attr]
    assert checkpoint_facts["check"] == "nothing to check"
    assert as_json["events_read"] == report.events_read > 0
    assert as_json["period"] == {"since": "2026-11-02T00:00:00Z", "until": "2026-11-09T00:00:00Z"}


def test_retention_in_force_is_the_settings(store: Store, tmp_path: Path) -> None:
    settings = Settings({"retention_days": 400, "retention": (("git.fetch", 30),),
                         "archive": True, "archive_dir": str(tmp_path / "arch"),
                         "cleanup_batch_size": 500})
    report, _ = build(store, soc2.build, Options(settings=settings))
    facts, per_op, _runs = section(report, "Retention")
    assert dict(facts.items) == {  # type: ignore[union-attr]
        "default": "400 days", "archive before deleting": "yes",
        "archive directory": str(tmp_path / "arch"), "records per transaction": 500,
        "runs": "by gitaudit-retention.timer (daily)",
    }
    assert per_op.rows == (("git.fetch", 30),)  # type: ignore[union-attr]
    assert report.notes == ("No events in this period.",)


def test_a_tampered_record_is_a_high_finding_naming_chain_and_seq(
    store: Store, store_url: str
) -> None:
    records = _history(store)
    tamper(store_url, "UPDATE events SET body = replace(body, 'alice', 'mallory') "
           "WHERE id = :id", params={"id": records["forced"]["id"]})
    start, end = period()
    report, _ = build(store, soc2.build, Options(since=start, until=end))
    finding = findings(report)["Chain test-chain fails verification at seq 2"]
    assert finding.severity == "high"
    assert finding.event_ids == (records["forced"]["id"],)
    assert dict(section(report, "Integrity")[0].items)["result"] == "FAILED"  # type: ignore[union-attr]


def test_verify_period_checks_the_period_and_its_link_to_the_record_before(
    store: Store, store_url: str
) -> None:
    records = _history(store)
    start, end = period()
    tamper(store_url, "UPDATE events SET body = replace(body, 'main', 'mian') WHERE id = :id",
           params={"id": records["before"]["id"]})
    with store.reading() as conn:
        inside = verify_period(conn, None, start, end)
        everything = verify_period(conn, None, None, None)
    assert inside.ok, inside.first_problem  # the tampered record is before the period
    assert [(c.first_seq, c.last_seq, c.records) for c in inside.chains] == [(2, 8, 7)]
    assert everything.first_problem is not None
    assert (everything.first_problem.seq, everything.first_problem.kind) == (1, "modified")
    tamper(store_url, "UPDATE events SET hash = :h WHERE id = :id",
           params={"h": "f" * 64, "id": records["before"]["id"]})
    with store.reading() as conn:
        linked = verify_period(conn, None, start, end)
    assert linked.first_problem is not None  # record 2 no longer links to record 1
    assert (linked.first_problem.seq, linked.first_problem.kind) == (2, "inserted")


def test_signed_checkpoints_covering_the_period_are_listed_and_checked(
    store: Store, tmp_path: Path
) -> None:
    _history(store)
    key = generate_key("audit-key")
    key_file = tmp_path / "checkpoint.key"
    key_file.write_text(key.encode() + "\n")
    store.checkpoint(key)
    store.checkpoint(None)
    start, end = period()
    options = Options(since=start, until=end,
                      settings=Settings({"checkpoint_key": str(key_file)}))
    report, _ = build(store, soc2.build, options)
    facts, found, table = section(report, "Signed checkpoints")
    assert isinstance(facts, KeyValues)
    assert isinstance(found, Findings)
    listed = dict(facts.items)
    # the first checkpoint after the period covers it; the unsigned one is not listed
    assert (listed["checkpoints"], listed["signed"], listed["check"]) == (
        1, 1, "passed")
    assert table.rows[0][2] == "audit-key"  # type: ignore[union-attr]
    assert found.items == ()
    everything, _ = build(store, soc2.build, Options(settings=options.settings))
    facts = section(everything, "Signed checkpoints")[0]
    assert dict(facts.items)["checkpoints"] == 2  # type: ignore[union-attr]
    assert "Checkpoint check failed: unsigned" in findings(everything)


def test_soc2_lists_a_real_force_push_through_the_wrapper(tmp_path: Path, sqlite_url: str) -> None:
    sandbox = GitSandbox(tmp_path / "sandbox")
    remote = sandbox.bare_remote()
    seed = sandbox.repo("seed", remote=remote)
    sandbox.git("push", "-q", "origin", "main", cwd=seed)
    cloned = sandbox.audited("clone", "-q", str(remote), "work")
    assert cloned.returncode == 0, cloned.stderr
    work = sandbox.root / "work"
    sandbox.commit(work, {"a": "1"}, "one")
    sandbox.git("push", "-q", "origin", "main", cwd=work)
    sandbox.git("reset", "-q", "--hard", "HEAD~1", cwd=work)
    sandbox.commit(work, {"a": "rewritten"}, "rewritten")
    forced = sandbox.audited("push", "-q", "--force", "origin", "main", cwd=work)
    assert forced.returncode == 0, forced.stderr
    recorded = sandbox.events()
    force_push = next(item for item in recorded if item["operation"] == "git.push")
    with Store.open(sqlite_url, chain_id="test-chain") as opened:
        opened.append(recorded)
        report, _ = build(opened, soc2.build, Options())
    finding = findings(report)["Force-pushes to protected refs"]
    assert finding.event_ids == (force_push["id"],)
    changes = section(report, "Changes to protected branches")[2]
    assert [(row[4], row[5], row[6], row[7]) for row in changes.rows] == [  # type: ignore[union-attr]
        ("refs/heads/main", "updated (push)", "yes", force_push["id"])]
    (access,) = section(report, "Repository access")
    assert [row[1:3] for row in access.rows] == [("remote", 1)]  # type: ignore[union-attr]


def test_the_users_filters_narrow_every_section(store: Store) -> None:
    records = _history(store)
    start, end = period()
    options = Options(since=start, until=end)
    only_fetches = EventFilter(since=start, until=end, operations=("git.fetch",))
    report, _ = build(store, soc2.build, options, only_fetches)
    found = findings(report)
    assert not any("Force-push" in title or "Denied" in title for title in found)
    (access,) = section(report, "Repository access")
    assert [row[:5] for row in access.rows] == [  # type: ignore[union-attr]
        ("carol", "payroll", 0, 2, 0)]
    bob = EventFilter(since=start, until=end, actor="bob", outcome="success")
    report, _ = build(store, soc2.build, options, bob)
    found = findings(report)
    assert found["Branch and tag deletions"].event_ids == (records["deleted"]["id"],)
    assert "Force-pushes to protected refs" not in found  # alice's
    assert "Denied operations" not in found  # carol's, and a failure


@pytest.mark.parametrize("jobs", [None, 1, 2])
def test_a_keyed_chain_without_its_key_is_not_verified_and_says_why(
    sqlite_url: str, jobs: int | None
) -> None:
    with Store.open(sqlite_url, chain_id="keyed", chain_key=b"k" * 32) as keyed:
        keyed.append([event(MONDAY, "git.fetch")])
        report, _ = build(keyed, soc2.build, Options(jobs=jobs))
    finding = findings(report)["Integrity not verified"]
    assert finding.severity == "high"
    assert "GITAUDIT_CHAIN_KEY_FILE" in finding.detail


def test_a_push_the_remote_declined_is_denied(tmp_path: Path, sqlite_url: str) -> None:
    sandbox = GitSandbox(tmp_path / "sandbox")
    remote = sandbox.bare_remote()
    seed = sandbox.repo("seed", remote=remote)
    sandbox.git("push", "-q", "origin", "main", cwd=seed)
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is a protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    sandbox.commit(seed, {"b": "1"}, "two")
    declined = sandbox.audited("push", "origin", "main", cwd=seed)
    assert declined.returncode != 0
    recorded = sandbox.events()
    with Store.open(sqlite_url, chain_id="test-chain") as opened:
        opened.append(recorded)
        report, _ = build(opened, soc2.build, Options())
    denied = findings(report)["Denied operations"]
    assert denied.event_ids == (recorded[-1]["id"],)
    rows = section(report, "Failed and denied operations")[2].rows  # type: ignore[union-attr]
    assert [row[5] for row in rows] == ["the remote refused refs/heads/main"]
    assert "Protected refs changed by people" not in findings(report)


def test_verification_can_be_left_out_and_the_report_says_so(store: Store, store_url: str) -> None:
    records = _history(store)
    tamper(store_url, "UPDATE events SET body = replace(body, 'alice', 'mallory') "
           "WHERE id = :id", params={"id": records["forced"]["id"]})
    report, _ = build(store, soc2.build, Options(verify=False))
    found = findings(report)
    assert found["Integrity not verified"].severity == "medium"
    assert not any(title.startswith("Chain ") for title in found)
    facts = dict(section(report, "Integrity")[0].items)  # type: ignore[union-attr]
    assert facts == {"result": "not verified (turned off)"}


def test_verify_period_on_a_chain_retention_cut(store: Store, tmp_path: Path) -> None:
    operations = ["git.push"] * 5 + ["conflict.detected"] + ["git.fetch"] * 4
    store.append([make_record(i, operation=op) for i, op in enumerate(operations)])
    expire(store, tmp_path / "archive", patterns=(("git.*", 90), ("conflict.*", 365)),
           later=100 * DAY)
    with store.reading() as conn:
        for minutes in (0, 5, 7):  # before the cut, at the first retained record, after it
            verified = verify_period(conn, None, BASE_TIME + timedelta(minutes=minutes), None)
            assert verified.ok, (minutes, verified.first_problem)
            chain = next(c for c in verified.chains if c.chain_id == "test-chain")
            assert chain.first_seq == max(6, minutes + 1)
            since = BASE_TIME + timedelta(minutes=minutes)
            url = conn.engine.url.render_as_string(hide_password=False)
            in_workers = Running(plan(conn, url, None, 2, (since, None)), 2).result()
            assert in_workers == verified


def test_a_push_the_users_pre_push_hook_refused_is_denied(tmp_path: Path, sqlite_url: str) -> None:
    sandbox = GitSandbox(tmp_path / "sandbox")
    repo = pushable(sandbox)
    failing_pre_push(repo)
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    refused = sandbox.git("push", "origin", "main", cwd=repo, check=False)
    assert refused.returncode != 0
    (event,) = hook_events(sandbox, "pre-push")
    with Store.open(sqlite_url, chain_id="test-chain") as opened:
        opened.append(sandbox.events())
        report, _ = build(opened, soc2.build, Options())
    found = findings(report)
    assert found["Denied operations"].event_ids == (event["id"],)
    rows = section(report, "Failed and denied operations")[2].rows  # type: ignore[union-attr]
    assert [row[5] for row in rows] == ["refused by the pre-push hook (exit code 3)"]
    assert "Protected refs changed by people" not in found  # the push never happened


def _access_events() -> list[dict[str, Any]]:
    """Reads by several actors (one without a name) of several repositories."""
    nobody = {"uid": 1001, "host": "build-02"}
    return [
        event(MONDAY + timedelta(minutes=10 + index), operation,
              actor=nobody if index % 5 == 4 else actor(("dave", "erin")[index % 2]),
              repo={"name": f"repo{index % 3}", "path": f"/src/repo{index % 3}"})
        for index, operation in enumerate(["git.clone", "git.fetch", "git.pull"] * 6)
    ]  # fmt: skip


def test_workers_and_sql_groups_give_the_report_made_in_one_process(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The period verified in worker processes (several ranges) while the report reads the
    events, and the access section grouped by the database: the same report, byte for byte
    (but its time), as verifying in the report's process; the tampered record's finding and
    every section's event ids included; the access table as feeding every access one by one
    gives it."""
    records = _history(store)
    store.append(_access_events())
    tamper(store_url, "UPDATE events SET body = replace(body, 'alice', 'mallory') "
           "WHERE id = :id", params={"id": records["forced"]["id"]})
    monkeypatch.setattr(verify_parallel, "MIN_RANGE_ROWS", 3)
    ranges: list[int] = []
    real = verify_parallel.Running.result

    def counted(running: verify_parallel.Running, progress: Any = None) -> Any:
        ranges.append(len(running.plan.ranges))
        return real(running, progress)

    monkeypatch.setattr(verify_parallel.Running, "result", counted)
    start, end = period()
    _, here_json = build(store, soc2.build, Options(since=start, until=end, jobs=1))
    assert ranges == []
    workers, workers_json = build(store, soc2.build,
                                  Options(since=start, until=end, jobs=2))  # fmt: skip
    assert ranges == [4]  # 25 records of the period: 2 ranges per worker
    for made in (here_json, workers_json):
        made.pop("generated_at")
    assert workers_json == here_json
    found = findings(workers)
    assert found["Chain test-chain fails verification at seq 2"].event_ids == (
        records["forced"]["id"],)
    assert found["Force-pushes to protected refs"].event_ids == (records["forced"]["id"],)
    assert found["Denied operations"].event_ids == (records["refused"]["id"],)
    assert found["Branch and tag deletions"].event_ids == (records["deleted"]["id"],)
    one_by_one = soc2.Access()
    with store.reading() as conn:
        reader = Reader(conn, lambda _: None)
        flt = narrowed(EventFilter(since=start, until=end), soc2.ACCESS_OPERATIONS)
        for row in reader.rows(flt, GROUPS["actor"](conn.dialect.name),
                               func.coalesce(events.c.repo_name, events.c.repo_path),
                               events.c.operation, events.c.occurred_at):  # fmt: skip
            one_by_one.feed(reader.shown(row[0]), row[1], row[2], row[3])
    grouped = section(workers, "Repository access")[0]
    assert grouped == one_by_one.section().blocks[0]
    assert len(grouped.rows) == 10  # type: ignore[union-attr]
    assert ("(unknown)", "repo1", 0, 1, 0) in [row[:5] for row in grouped.rows]  # type: ignore[union-attr]


def test_failed_workers_and_small_periods_are_verified_in_the_reports_process(
    store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _history(store)
    start, end = period()
    expected, expected_json = build(store, soc2.build, Options(since=start, until=end,
                                                               jobs=1))  # fmt: skip
    started: list[int] = []

    def broken(running: verify_parallel.Running, _progress: Any = None) -> Any:
        started.append(running.plan.total)
        raise BrokenProcessPool("a worker was killed")

    monkeypatch.setattr(verify_parallel.Running, "result", broken)
    report, as_json = build(store, soc2.build, Options(since=start, until=end, jobs=2))
    assert started == [7]
    assert dict(section(report, "Integrity")[0].items)["result"] == "passed"  # type: ignore[union-attr]
    assert as_json["events_read"] == expected_json["events_read"]
    assert section(report, "Integrity") == section(expected, "Integrity")
    build(store, soc2.build, Options(since=start, until=end))  # auto: too few records
    assert started == [7]
    monkeypatch.undo()
    nowhere = f"sqlite:///{tmp_path / 'missing' / 'audit.db'}"  # workers cannot open it
    monkeypatch.setattr(soc2, "workers", lambda _conn, _options: (nowhere, 2, 0))
    unreadable, unreadable_json = build(store, soc2.build, Options(since=start, until=end))
    assert section(unreadable, "Integrity") == section(expected, "Integrity")
    assert unreadable_json["events_read"] == expected_json["events_read"]
