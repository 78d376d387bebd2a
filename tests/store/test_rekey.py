"""`gitaudit db rekey`: events stored before revision 0007 rewritten with subject tokens, the
chains re-hashed, checkpoints signed before still accounted for; both engines."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from gitaudit.store import EventFilter, Store
from gitaudit.store.checkpoint_verify import LoadedNote
from gitaudit.store.checkpoints import generate_key
from gitaudit.store.engine import create_store_engine, write_transaction
from gitaudit.store.rekey import ChainRekey, details
from gitaudit.store.subjects import TOKEN
from gitaudit.store.tables import checkpoints, events, rekeyed_hashes
from tests.store.helpers import make_record, make_records, tamper, writer_before_0007

SIGNER = generate_key("test-signer")
# identities the pseudonymizer replaces (repo paths such as /home/alice/... are not one)
CLEAR = ("@example.com", "Alice Example", "Bob Example", "Carol Example", "Dora Devel",
         "'alice'", "'bob'", "'carol'", '"user":"alice"', '"user":"bob"', '"user":"carol"')


def _record(chain: ChainRekey, rekey_id: str) -> dict[str, Any]:
    return make_record(90, operation="audit.store_rekeyed", actor={"host": "h"},
                       details=details(chain, rekey_id))  # fmt: skip


def _old(url: str, chain: str, count: int, start: int = 0) -> None:
    """Append ``count`` records to ``chain`` as the writer did before revision 0007 (three
    appends, so the chain has per-append checkpoints inside the range rekey rewrites)."""
    engine = create_store_engine(url)
    records = make_records(count, start)
    records[0]["details"]["message"] = "fix\n\nSigned-off-by: Dora Devel <dora@example.com>"
    try:
        for part in (records[: count // 3], records[count // 3 : 2 * count // 3],
                     records[2 * count // 3 :]):  # fmt: skip
            with write_transaction(engine) as conn:
                writer_before_0007(chain).append(conn, part)
    finally:
        engine.dispose()


def _bodies(url: str, chain: str) -> list[str]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(select(events.c.body).where(events.c.chain_id == chain)
                                     .order_by(events.c.seq)))  # fmt: skip
    finally:
        engine.dispose()


def _columns(url: str) -> str:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            return repr(conn.execute(select(events.c.actor_user, events.c.actor_git_name,
                                            events.c.actor_git_email)).all())  # fmt: skip
    finally:
        engine.dispose()


def _holds_clear(text_: str) -> bool:
    return any(clear.lower() in text_.lower() for clear in CLEAR)


def _notes(store: Store) -> list[LoadedNote]:
    return [LoadedNote("before-rekey.note", store.checkpoint(SIGNER).note)]


def _check_notes(store: Store, notes: list[LoadedNote]) -> Any:
    return store.verify_checkpoints(notes, SIGNER.verifier(), datetime.now(UTC) + timedelta(
        seconds=1), timedelta(seconds=300))  # fmt: skip


def test_rekey_replaces_clear_identities_and_every_check_still_passes(
    store: Store, store_url: str
) -> None:
    _old(store_url, "old", 9)
    store.append(make_records(2, start=20))  # after 0007: tokens already
    notes = _notes(store)
    assert _holds_clear("".join(_bodies(store_url, "old")))
    planned = store.rekey(_record, dry_run=True)
    assert planned is not None
    assert {chain.chain_id: chain.clear for chain in planned.chains} == {"old": 9, "test-chain": 0}
    assert _holds_clear("".join(_bodies(store_url, "old")))  # a dry run changes nothing

    report = store.rekey(_record)

    assert report is not None and not report.failed
    (old,) = [chain for chain in report.chains if chain.rewritten]
    assert (old.chain_id, old.first_seq, old.last_seq, old.rewritten) == ("old", 1, 9, 9)
    bodies = _bodies(store_url, "old")
    assert not _holds_clear("".join(bodies[:9])) and not _holds_clear(_columns(store_url))
    assert all(json.loads(body)["actor"]["git_email"].startswith("subject:")
               for body in bodies[:9])  # fmt: skip
    recorded = json.loads(bodies[9])
    assert recorded["operation"] == "audit.store_rekeyed" and recorded["seq"] == 10
    assert recorded["details"]["records_rewritten"] == 9
    assert recorded["details"]["new_head_hash"] == json.loads(bodies[8])["hash"]
    assert store.verify().ok and store.verify(jobs=2).ok
    checked = _check_notes(store, notes)
    assert checked.ok, checked.findings
    assert checked.rekeyed == 1  # the old chain's head; test-chain did not change
    # readers reveal the tokens: the same person as new events get
    alice = store.query(EventFilter(actor="alice@example.com"))
    assert {event["chain_id"] for event in alice} == {"old", "test-chain"}
    # the full-text index is in step: the old words are gone, the tokens are in
    assert store.query(EventFilter(grep="dora")) == []
    message = json.loads(bodies[0])["details"]["message"]
    hexes = [token.split(":")[1] for token in TOKEN.findall(message)]
    assert len(hexes) == 2 and len(store.query(EventFilter(grep=hexes[1]))) == 1
    with store.reading() as conn:
        raw = conn.execute(select(events.c.id).where(text(
            "events.body LIKE '%dora@example.com%'"))).all()  # fmt: skip
    assert raw == []

    again = store.rekey(_record)  # idempotent
    assert again is not None and again.clear == 0
    assert not any(chain.rewritten for chain in again.chains)
    assert len(_bodies(store_url, "old")) == 10

    done = store.forget("alice@example.com", follow_links=True, confirm=lambda _s: True,
                        record=lambda _s: make_record(91, actor={"host": "h"}))  # fmt: skip
    assert done is not None and done[0].clear_events == 0
    shown = [event["actor"]["git_email"] for event in store.query(EventFilter())
             if event["chain_id"] == "old" and event["actor"].get("uid") == 1000]
    assert shown and all(value.startswith("forgotten subject ") for value in shown)
    assert store.verify().ok
    assert _check_notes(store, notes).ok


def test_a_chain_failing_verification_is_refused_and_left_untouched(
    store: Store, store_url: str
) -> None:
    _old(store_url, "bad", 6)
    _old(store_url, "good", 6, start=10)
    tamper(store_url, "UPDATE events SET body = replace(body, 'refs/heads/main', 'refs/heads/x') "
           "WHERE chain_id = 'bad' AND seq = 4")
    before = _bodies(store_url, "bad")

    report = store.rekey(_record)

    assert report is not None
    (failed,) = report.failed
    assert failed.chain_id == "bad" and failed.refused is not None and failed.refused.seq == 4
    assert _bodies(store_url, "bad") == before
    assert [chain.rewritten for chain in report.chains if chain.chain_id == "good"] == [6]
    assert not _holds_clear("".join(_bodies(store_url, "good")))


def test_a_forged_mapping_does_not_explain_a_rewritten_checkpoint(
    store: Store, store_url: str
) -> None:
    _old(store_url, "old", 6)
    notes = _notes(store)
    report = store.rekey(_record)
    assert report is not None and report.rekey_id
    assert _check_notes(store, notes).ok
    with store.reading() as conn:
        head = conn.execute(select(rekeyed_hashes).where(rekeyed_hashes.c.seq == 6)).one()
    # a forger adds a row to the run's mapping: its digest no longer matches the chain's record
    tamper(store_url, "INSERT INTO rekeyed_hashes (chain_id, seq, rekey_id, old_hash, new_hash, "
           "rekeyed_at) VALUES ('old', 7, :run, :old, :new, '2026-12-04 00:00:00')",
           params={"run": head.rekey_id, "old": "ab" * 32, "new": "cd" * 32})  # fmt: skip
    checked = _check_notes(store, notes)
    assert [finding.kind for finding in checked.findings] == ["rewritten"]
    assert checked.rekeyed == 0


def test_rekey_keeps_the_per_append_checkpoints_in_step(store: Store, store_url: str) -> None:
    _old(store_url, "old", 9)
    store.rekey(_record)
    with store.reading() as conn:
        marks = dict(conn.execute(select(checkpoints.c.seq, checkpoints.c.hash).where(
            checkpoints.c.chain_id == "old")).all())  # fmt: skip
        hashes = dict(conn.execute(select(events.c.seq, events.c.hash).where(
            events.c.chain_id == "old")).all())  # fmt: skip
    assert sorted(marks) == [3, 6, 9, 10]
    assert all(marks[seq] == hashes[seq] for seq in marks)
    for table in ("checkpoints", "events"):  # the triggers are back
        with pytest.raises(Exception, match="append-only"):
            _update(store_url, table)


def _update(url: str, table: str) -> None:
    """An UPDATE through a normal connection (the append-only triggers must refuse it)."""
    engine = create_store_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {table} SET hash = hash"))  # noqa: S608 - constants
    finally:
        engine.dispose()


def test_keyed_chain_is_rekeyed_with_its_key(sqlite_url: str, tmp_path: Any) -> None:
    key = b"k" * 32
    engine = create_store_engine(sqlite_url)
    with Store.open(sqlite_url, chain_id="x"):
        pass
    try:
        with write_transaction(engine) as conn:
            writer_before_0007("keyed", key).append(conn, make_records(4))
    finally:
        engine.dispose()
    with Store.open(sqlite_url, chain_id="x") as unkeyed:
        report = unkeyed.rekey(_record)
        assert report is not None and [c.chain_id for c in report.failed] == ["keyed"]
        assert "no chain key is configured" in str(report.failed[0].error)
    with Store.open(sqlite_url, chain_id="x", chain_key=key) as keyed:
        report = keyed.rekey(_record)
        assert report is not None and not report.failed
        assert keyed.verify().ok
    assert not _holds_clear("".join(_bodies(sqlite_url, "keyed")[:4]))


def test_a_chain_cut_by_retention_is_rekeyed_from_its_first_retained_record(
    store: Store, store_url: str, tmp_path: Any
) -> None:
    from gitaudit.config import Settings
    from gitaudit.store.retention import Policy, RetentionOptions, recorder

    _old(store_url, "old", 3)
    with Store.open(store_url, chain_id="retention") as runner:
        options = RetentionOptions(Policy(0), str(tmp_path / "archive"), 2)
        assert runner.expire(options, recorder(runner, Settings(), "cli")).expired >= 3
    _old(store_url, "old", 6, start=3)  # goes on from the cut, still as before 0007
    with Store.open(store_url, chain_id="retention") as runner:
        notes = _notes(runner)
        report = runner.rekey(_record)
        assert report is not None and not report.failed
        (old,) = [chain for chain in report.chains if chain.chain_id == "old"]
        assert (old.first_seq, old.last_seq, old.rewritten) == (4, 9, 6)
        verified = runner.verify()
        assert verified.ok, verified.first_problem
        assert [a.problem for a in runner.verify_archive(tmp_path / "archive")] == [None]
        assert _check_notes(runner, notes).ok
    assert not _holds_clear("".join(_bodies(store_url, "old")[:6]))
