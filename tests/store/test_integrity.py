"""verify: clean chains pass; every kind of tampering is detected and named."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from sqlalchemy import text

from gitaudit.catalog import canonical_json
from gitaudit.store import EventFilter, Store
from gitaudit.store.engine import create_store_engine
from gitaudit.store.tables import denormalize
from tests.store.helpers import make_record, make_records, tamper

CHAIN = "test-chain"


@pytest.fixture
def chained(store_url: str) -> Store:
    """A store with 10 records in 3 appends (checkpoints at seq 4, 7, 10), on each engine."""
    store = Store.open(store_url, chain_id=CHAIN)
    for start in (0, 4, 7):
        store.append(make_records(4 if start == 0 else 3, start=start))
    return store


def _problem(store: Store) -> tuple[str, int | None, str | None]:
    report = store.verify()
    assert not report.ok
    problem = report.first_problem
    assert problem is not None
    assert problem.chain_id == CHAIN
    assert problem.message
    return problem.kind, problem.seq, problem.event_id


def _event_id(store: Store, seq: int) -> str:
    for event in store.query(EventFilter()):
        if event["seq"] == seq:
            return str(event["id"])
    raise AssertionError(seq)


def _body(url: str, seq: int) -> dict[str, Any]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            query = text("SELECT body FROM events WHERE seq = :seq")
            body = conn.execute(query, {"seq": seq}).scalar_one()
    finally:
        engine.dispose()
    result: dict[str, Any] = json.loads(body)
    return result


def test_clean_chain_verifies(chained: Store) -> None:
    report = chained.verify()
    assert report.ok
    assert report.first_problem is None
    (chain,) = report.chains
    assert (chain.chain_id, chain.records, chain.first_seq, chain.last_seq) == (CHAIN, 10, 1, 10)


def test_empty_store_verifies(store: Store) -> None:
    report = store.verify()
    assert report.ok
    assert report.chains == []


def test_progress_is_reported(chained: Store) -> None:
    calls: list[tuple[int, int]] = []
    chained.verify(lambda done, total: calls.append((done, total)))
    assert calls[-1] == (10, 10)


def test_modified_body_is_detected(chained: Store, store_url: str) -> None:
    target = _event_id(chained, 5)
    edited = (
        "json_set(body, '$.actor.user', 'mallory')"
        if store_url.startswith("sqlite")
        else "jsonb_set(body::jsonb, '{actor,user}', '\"mallory\"')::text"
    )
    tamper(store_url, f"UPDATE events SET body = {edited}, actor_user = 'mallory' WHERE seq = 5")  # noqa: S608 - ours
    assert _problem(chained) == ("modified", 5, target)


def test_modified_column_only_is_a_mismatch(chained: Store, store_url: str) -> None:
    target = _event_id(chained, 6)
    tamper(store_url, "UPDATE events SET operation = 'git.fetch', repo_name = 'x' WHERE seq = 6")
    kind, seq, event_id = _problem(chained)
    assert (kind, seq, event_id) == ("mismatch", 6, target)
    problem = chained.verify().first_problem
    assert problem is not None
    assert "operation" in problem.message
    assert "repo_name" in problem.message


def test_deleted_middle_record_is_missing(chained: Store, store_url: str) -> None:
    tamper(store_url, "DELETE FROM events WHERE seq = 3")
    assert _problem(chained) == ("missing", 3, None)


def test_deleted_first_records_are_missing(chained: Store, store_url: str) -> None:
    tamper(store_url, "DELETE FROM events WHERE seq <= 2")
    assert _problem(chained) == ("missing", 1, None)


def test_deleted_last_record_is_missing(chained: Store, store_url: str) -> None:
    tamper(store_url, "DELETE FROM events WHERE seq = 10")
    assert _problem(chained) == ("missing", 10, None)
    report = chained.verify()
    assert (report.chains[0].records, report.chains[0].last_seq) == (9, 9)


def test_truncated_tail_of_several_records_is_missing(chained: Store, store_url: str) -> None:
    tamper(store_url, "DELETE FROM events WHERE seq >= 6")
    assert _problem(chained) == ("missing", 6, None)


def _forged_row(chain_id: str, seq: int, prev_hash: str) -> dict[str, Any]:
    """A well-formed events row, hashed correctly with plain SHA-256 (as a forger can)."""
    record = make_record(50, correlation_id="forged")
    record.update(chain_id=chain_id, seq=seq, prev_hash=prev_hash)
    payload = {k: v for k, v in record.items() if k not in ("prev_hash", "hash")}
    record["hash"] = hashlib.sha256(bytes.fromhex(prev_hash) + canonical_json(payload)).hexdigest()
    row = denormalize(record)
    row["occurred_at"] = row["occurred_at"].strftime("%Y-%m-%d %H:%M:%S.%f")
    row["recorded_at"] = row["occurred_at"]
    row["body"] = canonical_json(record).decode()
    return row


def test_forged_record_appended_past_the_checkpoint_is_inserted(
    chained: Store, store_url: str
) -> None:
    forged = _forged_row(CHAIN, 11, _body(store_url, 10)["hash"])
    tamper(store_url, insert=forged)
    assert _problem(chained) == ("inserted", 11, forged["id"])


def test_forged_record_replacing_one_differs_from_checkpoint(
    chained: Store, store_url: str
) -> None:
    """Delete seq 4 and put a correctly hashed forgery there: seq 4 differs from its checkpoint."""
    forged = _forged_row(CHAIN, 4, _body(store_url, 3)["hash"])
    tamper(store_url, "DELETE FROM events WHERE seq = 4", insert=forged)
    assert _problem(chained) == ("modified", 4, forged["id"])


def test_forged_record_that_does_not_link_is_inserted(chained: Store, store_url: str) -> None:
    forged = _forged_row(CHAIN, 5, "ab" * 32)
    tamper(store_url, "DELETE FROM events WHERE seq = 5", insert=forged)
    assert _problem(chained) == ("inserted", 5, forged["id"])


def test_forged_record_replacing_one_breaks_the_next_link(chained: Store, store_url: str) -> None:
    """A forgery at seq 5 that links to seq 4 is only caught at seq 6, which no longer links."""
    forged = _forged_row(CHAIN, 5, _body(store_url, 4)["hash"])
    tamper(store_url, "DELETE FROM events WHERE seq = 5", insert=forged)
    assert _problem(chained)[:2] == ("inserted", 6)


def test_records_of_an_unregistered_chain_are_inserted(chained: Store, store_url: str) -> None:
    forged = _forged_row("ghost", 1, "0" * 64)
    tamper(store_url, insert=forged)
    report = chained.verify()
    assert [(c.chain_id, c.problem is None) for c in report.chains] == [
        ("ghost", False),
        (CHAIN, True),
    ]
    assert report.first_problem is not None
    assert report.first_problem.kind == "inserted"


def test_swapped_records_are_reordered(chained: Store, store_url: str) -> None:
    moved = _event_id(chained, 7)
    tamper(
        store_url,
        "UPDATE events SET seq = -1 WHERE seq = 3",
        "UPDATE events SET seq = 3 WHERE seq = 7",
        "UPDATE events SET seq = 7 WHERE seq = -1",
    )
    assert _problem(chained) == ("reordered", 3, moved)


def test_rewritten_keyed_chain_is_detected(store_url: str) -> None:
    """A forger without the key who recomputes SHA-256 hashes still fails an HMAC chain."""
    with Store.open(store_url, chain_id=CHAIN, chain_key=b"secret") as store:
        store.append(make_records(3))
        body = _body(store_url, 2)
        body["actor"]["user"] = "mallory"
        payload = {k: v for k, v in body.items() if k not in ("prev_hash", "hash")}
        body["hash"] = hashlib.sha256(
            bytes.fromhex(body["prev_hash"]) + canonical_json(payload)
        ).hexdigest()
        tamper(
            store_url,
            "UPDATE events SET body = :body, hash = :hash, actor_user = 'mallory' WHERE seq = 2",
            params={"body": canonical_json(body).decode(), "hash": body["hash"]},
        )
        assert _problem(store)[:2] == ("modified", 2)


def test_only_the_tampered_chain_fails(store_url: str) -> None:
    with Store.open(store_url, chain_id="a") as first, Store.open(
        store_url, chain_id=CHAIN
    ) as second:
        first.append(make_records(3))
        second.append(make_records(3, start=3))
        tamper(store_url, "DELETE FROM events WHERE chain_id = 'test-chain' AND seq = 2")
        report = first.verify()
    assert [(c.chain_id, c.problem is None) for c in report.chains] == [("a", True), (CHAIN, False)]


def test_postgresql_tampering_with_triggers_disabled(pg_fresh_url: str) -> None:
    """As superuser, switch triggers off (session_replication_role) and edit records."""
    with Store.open(pg_fresh_url, chain_id=CHAIN) as store:
        store.append(make_records(4))
        store.append(make_records(2, start=4))
        engine = create_store_engine(pg_fresh_url)
        try:
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                conn.execute(
                    text(
                        "UPDATE events SET body = jsonb_set(body::jsonb, '{outcome}', "
                        "'\"failure\"')::text WHERE seq = 2"
                    )
                )
            assert _problem(store)[:2] == ("modified", 2)
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                conn.execute(text("DELETE FROM events WHERE seq = 6"))
            report = store.verify()
            assert report.first_problem is not None
            assert report.first_problem.kind == "modified"  # still the first bad record
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                conn.execute(text("DELETE FROM events WHERE seq <= 2"))
            assert _problem(store)[:2] == ("missing", 1)
        finally:
            engine.dispose()
