"""Appending: integrity fields, idempotence, checkpoints, keys, concurrent writers."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from sqlalchemy import select

from gitaudit.catalog import canonical_json
from gitaudit.errors import ConfigError
from gitaudit.events import validate_event
from gitaudit.store import EventFilter, Store
from gitaudit.store.engine import create_store_engine
from gitaudit.store.tables import checkpoints, events
from tests.store.helpers import finish, make_record, make_records, worker

GENESIS = "0" * 64


def _sha256(prev: str, payload: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev) + payload).hexdigest()


def _all(store: Store) -> list[dict[str, object]]:
    return sorted(store.query(EventFilter()), key=lambda event: int(str(event["seq"])))


def _stored(url: str) -> list[dict[str, object]]:
    """The bodies as stored (identities as subject tokens: what the hashes cover)."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            bodies = conn.execute(select(events.c.body).order_by(events.c.seq)).scalars()
            return [json.loads(body) for body in bodies]
    finally:
        engine.dispose()


def test_integrity_fields_follow_the_documented_formula(store: Store, store_url: str) -> None:
    records = make_records(4)
    store.append(records[:1])
    store.append(records[1:])
    stored = _stored(store_url)
    assert [event["seq"] for event in stored] == [1, 2, 3, 4]
    prev = GENESIS
    for event in stored:
        assert event["chain_id"] == "test-chain"
        assert event["prev_hash"] == prev
        payload = validate_event(event).payload()  # the model's own definition
        assert event["hash"] == _sha256(prev, canonical_json(payload))
        prev = str(event["hash"])


def test_hmac_chain(store_url: str) -> None:
    key = b"k" * 32
    with Store.open(store_url, chain_id="keyed", chain_key=key) as store:
        store.append(make_records(3))
        stored = _stored(store_url)
        assert store.verify().ok
    prev = GENESIS
    for event in stored:
        payload = canonical_json(validate_event(event).payload())
        assert event["hash"] == hmac.new(key, bytes.fromhex(prev) + payload, "sha256").hexdigest()
        prev = str(event["hash"])


def test_body_is_the_full_record(store: Store, store_url: str) -> None:
    record = make_record(7, details={"note": "naïve ünïcode"})
    record["details"]["lone"] = "\ud800"  # validation refuses it; the writer still copes
    store.append([record])
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            body = conn.execute(select(events.c.body)).scalar_one()
    finally:
        engine.dispose()
    assert json.loads(body)["actor"]["git_email"].startswith("subject:")
    (stored,) = store.query(EventFilter())  # identities revealed
    assert {key: stored[key] for key in record if key not in ("chain_id", "seq", "prev_hash",
                                                              "hash")} == {
        key: value for key, value in record.items()
        if key not in ("chain_id", "seq", "prev_hash", "hash")
    }
    assert store.verify().ok


def test_append_is_idempotent(store: Store) -> None:
    records = make_records(5)
    first = store.append(records[:3])
    again = store.append(records)
    assert (first.inserted, first.duplicates) == (3, 0)
    assert (again.inserted, again.duplicates) == (2, 3)
    assert store.count() == 5
    assert [event["id"] for event in _all(store)] == [record["id"] for record in records]


def test_append_reports_the_integrity_fields_it_assigned(store: Store) -> None:
    records = make_records(4)
    store.append(records[:1])
    result = store.append(records)  # the first is a duplicate: no position for it
    stored = {event["id"]: event for event in _all(store)}
    assert set(result.positions) == {record["id"] for record in records[1:]}
    for event_id, (seq, prev_hash, digest) in result.positions.items():
        assert (seq, prev_hash, digest) == (
            stored[event_id]["seq"], stored[event_id]["prev_hash"], stored[event_id]["hash"])
        assert stored[event_id]["chain_id"] == result.chain_id


def test_repeated_id_within_one_batch_is_stored_once(store: Store) -> None:
    record = make_record(1)
    result = store.append([record, dict(record), make_record(2)])
    assert (result.inserted, result.duplicates) == (2, 1)


def test_empty_and_all_duplicate_appends_write_nothing(store: Store, store_url: str) -> None:
    assert store.append([]).inserted == 0
    records = make_records(2)
    store.append(records)
    assert store.append(records).inserted == 0
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            marks = conn.execute(select(checkpoints.c.seq).order_by(checkpoints.c.seq)).scalars()
            assert list(marks) == [2]
    finally:
        engine.dispose()


def test_one_checkpoint_per_batch(store: Store, store_url: str) -> None:
    store.append(make_records(3))
    store.append(make_records(2, start=3))
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(checkpoints.c.seq, checkpoints.c.hash)).all()
            heads = dict(conn.execute(select(events.c.seq, events.c.hash)).all())
    finally:
        engine.dispose()
    assert sorted(seq for seq, _ in rows) == [3, 5]
    assert all(heads[seq] == value for seq, value in rows)


def test_chains_are_independent(store_url: str) -> None:
    with (
        Store.open(store_url, chain_id="a") as first,
        Store.open(store_url, chain_id="b") as second,
    ):
        first.append(make_records(2))
        second.append(make_records(3, start=2))
        first.append(make_records(1, start=5))
        by_chain: dict[str, list[int]] = {}
        for event in first.query(EventFilter()):
            by_chain.setdefault(str(event["chain_id"]), []).append(int(str(event["seq"])))
        report = first.verify()
    assert {chain: sorted(seqs) for chain, seqs in by_chain.items()} == {
        "a": [1, 2, 3],
        "b": [1, 2, 3],
    }
    assert report.ok
    assert [(chain.chain_id, chain.records) for chain in report.chains] == [("a", 3), ("b", 3)]


def test_a_chain_keeps_its_key(store_url: str) -> None:
    with Store.open(store_url, chain_id="c", chain_key=b"one") as store:
        store.append(make_records(1))
    with Store.open(store_url, chain_id="c", chain_key=b"two") as store, pytest.raises(
        ConfigError, match="was started with hmac-sha256"
    ):
        store.append(make_records(1, start=1))
    with Store.open(store_url, chain_id="c") as store, pytest.raises(ConfigError):
        store.append(make_records(1, start=1))
    with Store.open(store_url, chain_id="c", chain_key=b"two") as store, pytest.raises(
        ConfigError, match="not the key"
    ):
        store.verify()


@pytest.mark.parametrize("writers", [4])
def test_concurrent_writer_processes_share_one_chain(store_url: str, writers: int) -> None:
    Store.open(store_url, chain_id="shared").close()  # migrate once, up front
    processes = [worker("append", store_url, "shared", "15", "7") for _ in range(writers)]
    results = [finish(process) for process in processes]
    assert [code for code, _ in results] == [0] * writers, [err for _, err in results]
    with Store.open(store_url, chain_id="shared") as store:
        # every worker generates its own ids, so nothing is a duplicate
        assert store.count() == writers * 15 * 7
        report = store.verify()
        assert report.ok, report.first_problem
        (chain,) = report.chains
        assert (chain.first_seq, chain.last_seq) == (1, writers * 15 * 7)


def test_placeholder_lookalikes_in_data_do_not_confuse_the_encoder(
    store: Store, store_url: str
) -> None:
    """Data holding the serializer's placeholders takes the plain two-pass encoding."""
    from gitaudit.store import writer

    sneaky = make_record(1, details={"a": writer._HASH_MARK, "hash": writer._PREV_ENTRY})
    store.append([sneaky, make_record(2)])
    stored = _stored(store_url)
    assert stored[0]["details"] == sneaky["details"]
    prev = GENESIS
    for event in stored:
        assert event["hash"] == _sha256(prev, canonical_json(validate_event(event).payload()))
        prev = str(event["hash"])
    assert store.verify().ok
