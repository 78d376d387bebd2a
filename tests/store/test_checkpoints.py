"""Signed checkpoints: the signed-note format, and catching tampering the chain alone cannot.

Each tampering test first shows that plain ``verify`` passes (what today's verify
misses, issue 12), then that the checkpoints kept outside the store name it.
Every tampering test runs on SQLite and PostgreSQL (the ``store_url`` fixture).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from gitaudit.store import EventFilter, Store
from gitaudit.store.checkpoint_store import (
    WrittenCheckpoint,
    checkpoint_event,
    note_of_event,
    save_note,
)
from gitaudit.store.checkpoint_verify import (
    CheckpointReport,
    LoadedNote,
    load_notes,
)
from gitaudit.store.checkpoints import (
    ChainHead,
    Checkpoint,
    CheckpointError,
    SignerKey,
    build_body,
    generate_key,
    open_note,
    parse_body,
    parse_signer_key,
    parse_verifier_key,
    sign,
    split_note,
)
from gitaudit.store.engine import create_store_engine
from tests.store.helpers import make_records, tamper

CHAIN = "test-chain"
SKEW = timedelta(seconds=300)

# The example of golang.org/x/mod/sumdb/note (also the C2SP signed-note reference vector).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2"
    "pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


# --- the format --------------------------------------------------------------------------


def test_signer_key_of_the_reference_vector_derives_its_verifier_key() -> None:
    key = parse_signer_key(GO_SKEY)
    assert key.verifier().encode() == GO_VKEY
    assert key.encode() == GO_SKEY


def test_signing_matches_the_reference_vector_byte_for_byte() -> None:
    assert sign(GO_TEXT, parse_signer_key(GO_SKEY)) == GO_NOTE


def test_reference_note_opens_under_its_key() -> None:
    assert open_note(GO_NOTE, parse_verifier_key(GO_VKEY)) == GO_TEXT


def test_body_round_trips_with_odd_chain_ids() -> None:
    heads = (ChainHead("daemon@build 01", 7, "a" * 64), ChainHead("x+y%z", 1, "b" * 64))
    checkpoint = Checkpoint("gitaudit/host/db", datetime(2026, 12, 4, tzinfo=UTC), None, heads)
    body = build_body(checkpoint)
    assert body.splitlines()[:3] == ["gitaudit/host/db", "time 2026-12-04T00:00:00Z", "prev -"]
    parsed = parse_body(body)
    assert parsed.head("daemon@build 01") == heads[0]
    assert parsed.head("x+y%z") == heads[1]


def test_note_signed_by_another_key_is_named() -> None:
    note = sign(GO_TEXT, generate_key("intruder"))
    with pytest.raises(CheckpointError) as caught:
        open_note(note, parse_verifier_key(GO_VKEY))
    assert caught.value.kind == "other-key"
    assert "intruder" in caught.value.message


def test_altered_note_fails_its_signature() -> None:
    altered = GO_NOTE.replace("cryptography", "cryptographY")
    with pytest.raises(CheckpointError) as caught:
        open_note(altered, parse_verifier_key(GO_VKEY))
    assert caught.value.kind == "bad-signature"


def test_unsigned_note_is_refused_when_a_key_is_given() -> None:
    with pytest.raises(CheckpointError) as caught:
        open_note(GO_TEXT, parse_verifier_key(GO_VKEY))
    assert caught.value.kind == "unsigned"
    assert split_note(GO_TEXT) == (GO_TEXT, [])


@pytest.mark.parametrize("junk", ["", "hello\n", "gitaudit/x\ntime now\nprev -\n", "\x00\xff"])
def test_corrupt_bodies_are_named(junk: str) -> None:
    with pytest.raises(CheckpointError) as caught:
        parse_body(junk)
    assert caught.value.kind == "corrupt"


# --- against a store ---------------------------------------------------------------------


@pytest.fixture
def key() -> SignerKey:
    return generate_key("test-signer")


@pytest.fixture
def chained(store_url: str) -> Iterator[Store]:
    """20 records in 4 appends (store checkpoints at seq 5, 10, 15, 20)."""
    with Store.open(store_url, chain_id=CHAIN) as store:
        for start in range(0, 20, 5):
            store.append(make_records(5, start=start))
        yield store


def _sign_now(store: Store, key: SignerKey, folder: Path, **kwargs: Any) -> WrittenCheckpoint:
    written = store.checkpoint(key, **kwargs)
    save_note(folder, written)
    return written


def _check(store: Store, folder: Path, key: SignerKey | None) -> CheckpointReport:
    verifier = None if key is None else key.verifier()
    return store.verify_checkpoints(load_notes(str(folder)), verifier, datetime.now(UTC), SKEW)


def _kinds(report: CheckpointReport) -> list[str]:
    return [finding.kind for finding in report.findings]


def forge(url: str, *statements: str, params: dict[str, Any] | None = None) -> None:
    """Run SQL with the append-only triggers off, as a forger who owns the database would."""
    if url.startswith("sqlite"):
        tamper(url, *statements, params=params)
        return
    engine = create_store_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            for statement in statements:
                conn.execute(text(statement), params or {})
    finally:
        engine.dispose()


def as_owner(url: str, *statements: str, params: dict[str, Any] | None = None) -> None:
    """Run SQL with the triggers in force (INSERTs pass; a grant lets DELETEs through)."""
    engine = create_store_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement), params or {})
    finally:
        engine.dispose()


def test_clean_store_verifies_against_its_checkpoints(
    chained: Store, key: SignerKey, tmp_path: Path
) -> None:
    _sign_now(chained, key, tmp_path / "cps")
    chained.append(make_records(2, start=100))
    _sign_now(chained, key, tmp_path / "cps")
    chained.append(make_records(1, start=200))
    report = _check(chained, tmp_path / "cps", key)
    assert report.ok, report.findings
    assert (report.checkpoints, report.signed) == (2, 2)
    assert report.newest == {CHAIN: 22}
    assert report.unattested == {CHAIN: 1}


def test_checkpoints_are_numbered_and_linked(
    chained: Store, key: SignerKey, tmp_path: Path
) -> None:
    first = _sign_now(chained, key, tmp_path / "cps")
    second = chained.checkpoint(None)
    save_note(tmp_path / "cps", second)
    assert (first.number, second.number) == (1, 2)
    assert first.checkpoint.prev is None
    body = split_note(first.note)[0]
    assert second.checkpoint.prev == hashlib.sha256(body.encode()).hexdigest()
    assert second.key_name is None
    names = sorted(path.name for path in (tmp_path / "cps").iterdir())
    assert [name.endswith(f"{n:010d}.note") for n, name in enumerate(names, 1)] == [True, True]
    assert [note.text for note in load_notes(str(tmp_path / "cps"))] == [first.note, second.note]


def test_chain_cut_back_to_an_older_checkpoint_is_truncated(
    chained: Store, store_url: str, key: SignerKey, tmp_path: Path
) -> None:
    _sign_now(chained, key, tmp_path / "cps")
    forge(
        store_url,
        "DELETE FROM events WHERE chain_id = 'test-chain' AND seq > 15",
        "DELETE FROM checkpoints WHERE chain_id = 'test-chain' AND seq > 15",
    )
    assert chained.verify().ok  # what the chain alone cannot see
    report = _check(chained, tmp_path / "cps", key)
    assert _kinds(report) == ["truncated"]
    finding = report.findings[0]
    assert (finding.chain_id, finding.seq) == (CHAIN, 16)
    assert "16..20" in finding.message


def test_cut_through_a_forged_retention_grant_is_caught_by_both(
    chained: Store, store_url: str, key: SignerKey, tmp_path: Path
) -> None:
    _sign_now(chained, key, tmp_path / "cps")
    as_owner(  # triggers intact: the grant row is what lets the DELETEs through
        store_url,
        "INSERT INTO retention_grants (chain_id, upto_seq, granted_at, reason) "
        "VALUES ('test-chain', 999999999, '2026-12-01 00:00:00', 'retention')",
        "DELETE FROM events WHERE chain_id = 'test-chain' AND seq > 10",
        "DELETE FROM checkpoints WHERE chain_id = 'test-chain' AND seq > 10",
    )
    plain = chained.verify()
    assert not plain.ok
    problem = plain.first_problem
    assert problem is not None and problem.chain_id == CHAIN
    assert "999999999" in problem.message and "audit.retention" in problem.message
    report = _check(chained, tmp_path / "cps", key)
    assert _kinds(report) == ["truncated"]


def test_chain_rewritten_from_seq_10_with_recomputed_hashes(
    chained: Store, store_url: str, key: SignerKey, tmp_path: Path
) -> None:
    _sign_now(chained, key, tmp_path / "cps")
    forge(
        store_url,
        "DELETE FROM events WHERE chain_id = 'test-chain' AND seq >= 10",
        "DELETE FROM checkpoints WHERE chain_id = 'test-chain' AND seq >= 10",
    )
    chained.append(make_records(11, start=500))  # fresh hashes and store checkpoints
    assert chained.verify().ok
    report = _check(chained, tmp_path / "cps", key)
    assert _kinds(report) == ["rewritten"]
    assert (report.findings[0].chain_id, report.findings[0].seq) == (CHAIN, 20)


def test_whole_chain_deleted_with_its_chains_row(
    chained: Store, store_url: str, key: SignerKey, tmp_path: Path
) -> None:
    with Store.open(store_url, chain_id="other") as other:
        other.append(make_records(3, start=50))
    _sign_now(chained, key, tmp_path / "cps")
    forge(
        store_url,
        "DELETE FROM events WHERE chain_id = 'test-chain'",
        "DELETE FROM checkpoints WHERE chain_id = 'test-chain'",
        "DELETE FROM chains WHERE chain_id = 'test-chain'",
    )
    assert chained.verify().ok
    report = _check(chained, tmp_path / "cps", key)
    assert _kinds(report) == ["deleted"]
    assert report.findings[0].chain_id == CHAIN


@pytest.mark.parametrize("tampering", ["rewrite", "cut"])
def test_keyed_chain_tampered_by_a_holder_of_the_hmac_key(
    store_url: str, key: SignerKey, tmp_path: Path, tampering: str
) -> None:
    chain_key = b"the-hmac-key-the-forger-also-has"
    with Store.open(store_url, chain_id=CHAIN, chain_key=chain_key) as store:
        store.append(make_records(12))
        _sign_now(store, key, tmp_path / "cps")
        forge(
            store_url,
            "DELETE FROM events WHERE chain_id = 'test-chain' AND seq > 6",
            "DELETE FROM checkpoints WHERE chain_id = 'test-chain'",
            "INSERT INTO checkpoints (chain_id, seq, hash, created_at) SELECT chain_id, seq, "
            "hash, recorded_at FROM events WHERE chain_id = 'test-chain' AND seq = 6",
        )
        if tampering == "rewrite":
            store.append(make_records(6, start=300))
        assert store.verify().ok
        report = _check(store, tmp_path / "cps", key)
    assert _kinds(report) == ["rewritten" if tampering == "rewrite" else "truncated"]


def test_forged_tail_row_with_a_matching_store_checkpoint(
    chained: Store, store_url: str, key: SignerKey, tmp_path: Path
) -> None:
    """INSERT only (triggers intact): a backdated record chained onto the head, with its
    own store checkpoint, as a forger who fabricates evidence of the past would add it."""
    written = _sign_now(chained, key, tmp_path / "cps")
    when = written.checkpoint.time - timedelta(hours=1)
    row = _forge_successor(store_url, when)
    names = ", ".join(row)
    marks = ", ".join(f":{name}" for name in row)
    as_owner(
        store_url,
        f"INSERT INTO events ({names}) VALUES ({marks})",  # noqa: S608 - our own names
        "INSERT INTO checkpoints (chain_id, seq, hash, created_at) "
        "VALUES (:chain_id, :seq, :hash, :recorded_at)",
        params=row,
    )
    assert chained.verify().ok  # a well-formed link past the head, with its checkpoint
    report = _check(chained, tmp_path / "cps", key)
    assert _kinds(report) == ["inserted"]
    assert (report.findings[0].chain_id, report.findings[0].seq) == (CHAIN, 21)


def _forge_successor(url: str, when: datetime) -> dict[str, Any]:
    """The events row of seq 21 of CHAIN, hashed and linked as the writer would (SHA-256)."""
    from gitaudit.catalog import canonical_json
    from gitaudit.store.integrity import ChainHasher, payload_of
    from gitaudit.store.tables import denormalize
    from gitaudit.store.writer import body_text
    from tests.store.helpers import make_record

    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            head = conn.execute(
                text("SELECT hash FROM events WHERE chain_id = :c AND seq = 20"), {"c": CHAIN}
            ).scalar_one()
    finally:
        engine.dispose()
    record = make_record(7, occurred_at=when.isoformat())
    record.update(chain_id=CHAIN, seq=21, prev_hash=head)
    record["hash"] = ChainHasher(None).link(head, canonical_json(payload_of(record)))
    row = denormalize(record)
    row["body"] = body_text(record)
    row["recorded_at"] = when
    if url.startswith("sqlite"):  # as the store keeps timestamps there: naive UTC text
        for name in ("occurred_at", "recorded_at"):
            row[name] = row[name].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return row


def test_signature_problems_are_each_named(chained: Store, key: SignerKey, tmp_path: Path) -> None:
    folder = tmp_path / "cps"
    good = _sign_now(chained, key, folder)
    other = chained.checkpoint(generate_key("someone-else"))
    (folder / "checkpoint-1-other.note").write_text(other.note)
    (folder / "checkpoint-2-corrupt.note").write_text("this is not a checkpoint\n")
    (folder / "checkpoint-3-altered.note").write_text(good.note.replace("seq", "seq", 1).replace(
        f" 20 {good.checkpoint.heads[0].hash}", f" 19 {good.checkpoint.heads[0].hash}"
    ))  # fmt: skip
    future = chained.checkpoint(key, now=datetime.now(UTC) + timedelta(days=1))
    save_note(folder, future)
    report = _check(chained, folder, key)
    by_label = {Path(f.label).name: f.kind for f in report.findings}
    assert by_label["checkpoint-1-other.note"] == "other-key"
    assert by_label["checkpoint-2-corrupt.note"] == "corrupt"
    assert by_label["checkpoint-3-altered.note"] == "bad-signature"
    assert sorted(by_label.values()).count("future") == 1
    assert report.checkpoints == 5


def test_checkpoints_read_from_a_sink_export(
    chained: Store, store_url: str, key: SignerKey, tmp_path: Path
) -> None:
    """A JSON-lines file of events as the HTTP sink / Fluent Bit wrote them."""
    for _ in range(2):
        written = chained.checkpoint(key)
        chained.append([_as_stored(checkpoint_event(written, "cli"))])
    exported = [json.dumps(event) for event in chained.query(EventFilter(limit=1000))]
    export = tmp_path / "sink.jsonl"
    export.write_text("\n".join(exported) + "\n")
    notes = load_notes(str(export))
    assert len(notes) == 2
    assert all(note.text.startswith("gitaudit/") for note in notes)
    forge(store_url, "DELETE FROM events WHERE chain_id = 'test-chain' AND seq > 18")
    report = chained.verify_checkpoints(notes, key.verifier(), datetime.now(UTC), SKEW)
    assert "truncated" in _kinds(report)


def _as_stored(event: dict[str, Any]) -> dict[str, Any]:
    from gitaudit.config import Settings
    from gitaudit.events import Event
    from gitaudit.pipeline import Pipeline

    return Event.model_validate(Pipeline(Settings()).sanitize(event)).to_record()


def test_note_survives_the_sanitizer_with_many_chains(key: SignerKey) -> None:
    heads = tuple(
        ChainHead(f"daemon@host-{n:04d}.example.com", n + 1, "c" * 64) for n in range(500)
    )
    checkpoint = Checkpoint("gitaudit/x", datetime.now(UTC).replace(microsecond=0), None, heads)
    note = sign(build_body(checkpoint), key)
    written = WrittenCheckpoint(1, checkpoint, note, "0" * 64, key.name)
    stored = _as_stored(checkpoint_event(written, "daemon"))
    assert note_of_event(stored["details"]) == note


def test_signed_checkpoints_table_is_append_only(
    chained: Store, store_url: str, key: SignerKey
) -> None:
    chained.checkpoint(key)
    for statement in ("UPDATE signed_checkpoints SET note = 'x'", "DELETE FROM signed_checkpoints"):
        with pytest.raises(Exception, match="append-only"):
            as_owner(store_url, statement)


def test_loading_a_missing_source_is_a_usage_error(tmp_path: Path) -> None:
    from gitaudit.errors import UsageError

    with pytest.raises(UsageError, match="no checkpoints at"):
        load_notes(str(tmp_path / "nowhere"))
    assert load_notes(str(tmp_path)) == []
    note = LoadedNote("x", "y")
    assert note.label == "x"


def test_checkpoints_fetched_from_a_sink_export_url(
    chained: Store, key: SignerKey, tmp_path: Path
) -> None:
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    written = chained.checkpoint(key)
    (tmp_path / "export").mkdir()
    line = json.dumps(_as_stored(checkpoint_event(written, "daemon")))
    (tmp_path / "export" / "events.jsonl").write_text(line + "\n")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Quiet, directory=str(tmp_path / "export"))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        notes = load_notes(f"{base}/events.jsonl")
        assert [note.text for note in notes] == [written.note]
        report = chained.verify_checkpoints(notes, key.verifier(), datetime.now(UTC), SKEW)
        assert report.ok, report.findings
        from gitaudit.errors import UsageError

        with pytest.raises(UsageError, match="cannot fetch checkpoints"):
            load_notes(f"{base}/missing.jsonl")
    finally:
        server.shutdown()
        server.server_close()


def test_concurrent_checkpoints_number_and_link_in_order(
    chained: Store, store_url: str, key: SignerKey
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        written = list(pool.map(lambda _: chained.checkpoint(key), range(8)))
    ordered = sorted(written, key=lambda item: item.number)
    assert [item.number for item in ordered] == list(range(1, 9))
    for before, after in itertools.pairwise(ordered):
        assert after.checkpoint.prev == before.body_sha256


def test_prefix_removed_by_an_accounted_retention_run_is_not_a_finding(
    chained: Store, store_url: str, key: SignerKey, tmp_path: Path
) -> None:
    """A checkpoint older than a retention cut states a seq that is gone, legitimately:
    the grant and the audit.retention record naming it account for it (the archive
    verifies those records; that is `verify --archive`, not this)."""
    early = chained.checkpoint(key)  # states seq 20
    save_note(tmp_path / "cps", early)
    chained.append(make_records(5, start=40))
    record = make_records(1, start=800)[0]
    record.update(
        operation="audit.retention", category="delete", source="cli",
        details={"chains": [{"chain_id": CHAIN, "upto_seq": 22, "deleted": 22}]},
    )  # fmt: skip
    chained.append([record])
    as_owner(
        store_url,
        "INSERT INTO retention_grants (chain_id, upto_seq, granted_at, reason) "
        "VALUES ('test-chain', 22, '2026-12-01 00:00:00', 'retention')",
        "DELETE FROM events WHERE chain_id = 'test-chain' AND seq <= 22",
    )
    assert _check(chained, tmp_path / "cps", key).ok
    forged = tmp_path / "forged"  # the same cut without the audit.retention record
    save_note(forged, early)
    as_owner(
        store_url,
        "INSERT INTO retention_grants (chain_id, upto_seq, granted_at, reason) "
        "VALUES ('test-chain', 999999999, '2026-12-01 00:00:00', 'retention')",
    )
    assert _check(chained, forged, key).ok  # seq 20 is still accounted by the real grant
    assert not chained.verify().ok  # but plain verify names the forged grant


def test_a_later_checkpoint_of_a_cut_store_is_rolled_back(
    chained: Store, store_url: str, key: SignerKey, tmp_path: Path
) -> None:
    """The daemon signs whatever the store holds: after a cut, its next checkpoint states
    a lower seq than the one before, and both disagreements are named."""
    _sign_now(chained, key, tmp_path / "cps", now=datetime.now(UTC) - timedelta(hours=2))
    forge(
        store_url,
        "DELETE FROM events WHERE chain_id = 'test-chain' AND seq > 15",
        "DELETE FROM checkpoints WHERE chain_id = 'test-chain' AND seq > 15",
    )
    _sign_now(chained, key, tmp_path / "cps", now=datetime.now(UTC) - timedelta(hours=1))
    report = _check(chained, tmp_path / "cps", key)
    assert sorted(_kinds(report)) == ["rolled-back", "truncated"]
