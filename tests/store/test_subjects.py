"""Identities as subject tokens, revealed by readers, forgotten (crypto-shredding); both engines."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import select, text

from gitaudit.store import EventFilter, Store, migrate
from gitaudit.store.engine import create_store_engine, snapshot, write_transaction
from gitaudit.store.reader import iter_bodies
from gitaudit.store.stats import group_stats
from gitaudit.store.subjects import (
    EMAIL,
    TOKEN,
    ForgetPreview,
    Pseudonymizer,
    Revealer,
    SubjectAlreadyForgotten,
    SubjectNotFound,
    is_token,
)
from gitaudit.store.tables import events, subject_keys, subject_links, subjects
from tests.store.helpers import make_record, make_records

TABLES = ("events", "subjects", "subject_keys", "subject_links", "checkpoints", "chains")


def _dump(url: str) -> str:
    """Every row of every table this feature touches, as text (what an attacker with the
    database would read)."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            return "\n".join(
                repr(tuple(row)) for table in TABLES
                for row in conn.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 - constants
            )  # fmt: skip
    finally:
        engine.dispose()


def _raw_bodies(url: str) -> list[dict[str, Any]]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            return [json.loads(body) for body in conn.scalars(
                select(events.c.body).order_by(events.c.seq))]  # fmt: skip
    finally:
        engine.dispose()


def _yes(_shown: ForgetPreview) -> bool:
    return True


def _record(shown: ForgetPreview) -> dict[str, Any]:
    return make_record(99, operation="audit.subject_forgotten", actor={"host": "h"},
                       details={"subjects": [s.token for s in shown.plan.subjects],
                                "events": shown.events})  # fmt: skip


def _alice(index: int = 0, **overrides: Any) -> dict[str, Any]:
    return make_record(index * 3, **overrides)  # USERS[0] is alice at every multiple of 3


def test_stored_bodies_hold_tokens_not_identities(store: Store, store_url: str) -> None:
    message = "Fix it\n\nSigned-off-by: Alice Example <Alice@Example.com>\ncc bob@example.com"
    store.append([_alice(details={"message": message, "remote": "git@github.com:acme/x.git"})])
    (body,) = _raw_bodies(store_url)
    actor = body["actor"]
    assert all(is_token(actor[name]) for name in ("user", "git_name", "git_email"))
    assert actor["host"] == "build-01"  # not an identity
    dump = _dump(store_url)
    for identity in ("alice@example.com", "Alice@Example.com", "Alice Example", "bob@example",
                     "'alice'"):  # fmt: skip
        assert identity not in dump
    assert body["details"]["remote"] == "git@github.com:acme/x.git"  # a host, not a person
    stored_message = body["details"]["message"]
    assert EMAIL.search(stored_message) is None and "Alice" not in stored_message
    # one subject per identity: the free-text email is the actor's email (any case)
    assert actor["git_email"] in stored_message and actor["git_name"] in stored_message
    (event,) = store.query(EventFilter())
    assert event["actor"]["git_email"] == "alice@example.com"
    assert event["actor"]["user"] == "alice"
    assert event["details"]["message"] == (
        "Fix it\n\nSigned-off-by: Alice Example <alice@example.com>\ncc bob@example.com")
    assert store.verify().ok


def test_actor_filter_matches_exact_values_and_globs(store: Store) -> None:
    store.append(make_records(6))  # alice, bob, carol, alice, bob, carol
    for actor in ("alice", "alice@example.com", "ALICE@example.com", "Alice Example", "ali*",
                  "*@example.com", "[a]lice"):  # fmt: skip
        found = store.query(EventFilter(actor=actor))
        expected = 6 if actor == "*@example.com" else 2
        assert len(found) == expected, actor
        assert store.count_matching(EventFilter(actor=actor)) == expected
    limited = store.query(EventFilter(actor="bob", limit=1))
    assert [event["actor"]["user"] for event in limited] == ["bob"]
    assert store.query(EventFilter(actor="nobody@example.com")) == []


def test_stats_by_actor_shows_identities(store: Store) -> None:
    store.append(make_records(5))
    with store.reading() as conn:
        rows = group_stats(conn, EventFilter(), "actor")
    assert [(row.key, row.count) for row in rows] == [("alice", 2), ("bob", 2), ("carol", 1)]


def test_forget_makes_the_identity_unrecoverable_and_verify_still_passes(
    store: Store, store_url: str
) -> None:
    store.append(make_records(6))
    before = _raw_bodies(store_url)
    with store.reading() as conn:
        keys_before = {bytes(row.key) for row in conn.execute(select(subject_keys.c.key))}
    done = store.forget("Alice@example.com", follow_links=True, confirm=_yes, record=_record)
    assert done is not None
    shown, _scrubbed = done
    assert sorted(s.kind for s in shown.plan.subjects) == ["email", "name", "user"]
    assert shown.events == 2
    assert _raw_bodies(store_url)[:6] == before  # the chained bodies never change
    assert store.verify().ok
    events_now = store.query(EventFilter())
    forgotten = [e for e in events_now if str(e["actor"].get("user", "")).startswith("forgotten")]
    assert len(forgotten) == 2
    actor = forgotten[0]["actor"]
    for name in ("user", "git_name", "git_email"):
        assert actor[name].startswith("forgotten subject subject:")
    shown_text = json.dumps(events_now).lower()
    assert "alice@" not in shown_text and "alice example" not in shown_text
    assert {e["actor"]["user"] for e in events_now} >= {"bob", "carol"}  # others intact
    with store.reading() as conn:
        keys_after = {bytes(row.key) for row in conn.execute(select(subject_keys.c.key))}
        tombstones = conn.execute(select(subjects.c.pseudonym).where(
            subjects.c.forgotten_at.is_not(None))).scalars().all()  # fmt: skip
        links = conn.execute(select(subject_links)).all()
    assert len(tombstones) == 3
    assert keys_before - keys_after and not (keys_before - keys_after) & keys_after
    assert all(token not in {row.pseudonym for row in links} for token in tombstones)
    # the forgotten identity cannot be found any more; its token says it is forgotten
    assert store.query(EventFilter(actor="alice@example.com")) == []
    with pytest.raises(SubjectNotFound):
        store.forget("alice@example.com", follow_links=True, confirm=_yes, record=_record)
    with pytest.raises(SubjectAlreadyForgotten):
        store.forget(tombstones[0], follow_links=True, confirm=_yes, record=_record)
    # alice seen again later is a new subject, with a new token
    store.append([make_record(30)])
    (again,) = store.query(EventFilter(actor="alice@example.com"))
    assert again["actor"]["user"] == "alice"
    assert _raw_bodies(store_url)[-1]["actor"]["user"] not in tombstones
    assert store.verify().ok


def test_forget_on_sqlite_leaves_no_key_bytes_in_the_files(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with Store.open(url, chain_id="c") as store:
        store.append(make_records(3))
        with store.reading() as conn:
            alice = conn.execute(select(subject_keys.c.key, subject_keys.c.blind_index).join(
                subjects, subjects.c.pseudonym == subject_keys.c.pseudonym)).all()  # fmt: skip
        done = store.forget("alice", follow_links=True, confirm=_yes, record=_record)
        assert done is not None and done[1]  # scrubbed: WAL checkpointed and truncated
        with store.reading() as conn:
            left = {bytes(row.key) for row in conn.execute(select(subject_keys.c.key))}
    forgotten = [(bytes(key), index) for key, index in alice if bytes(key) not in left]
    assert len(forgotten) == 3
    files = b"".join(path.read_bytes() for path in tmp_path.glob("audit.db*"))
    for key, index in forgotten:
        assert key not in files and index.encode() not in files
    assert b"alice@" not in files.lower() and b"alice example" not in files.lower()


def test_forget_keeps_linked_identities_that_others_share(store: Store) -> None:
    shared = {"uid": 0, "user": "root", "host": "ci-1"}
    store.append([
        make_record(0, actor={**shared, "git_name": "Alice A", "git_email": "alice@x.org"}),
        make_record(1, actor={**shared, "git_name": "Bob B", "git_email": "bob@x.org"}),
    ])
    declined: list[ForgetPreview] = []
    assert store.forget("alice@x.org", follow_links=True, confirm=lambda s: bool(
        declined.append(s)), record=_record) is None  # fmt: skip
    assert store.query(EventFilter(actor="alice@x.org"))  # answered no: nothing changed
    done = store.forget("alice@x.org", follow_links=True, confirm=_yes, record=_record)
    assert done is not None
    shown = done[0]
    assert {s.identity for s in shown.plan.subjects} == {"alice@x.org", "Alice A"}
    assert [s.identity for s in shown.plan.kept] == ["root"]
    users = [e["actor"]["user"] for e in store.query(EventFilter(operations=("git.*",)))]
    assert users == ["root", "root"]
    only = store.forget("Bob B", follow_links=False, confirm=_yes, record=_record)
    assert only is not None and [s.identity for s in only[0].plan.subjects] == ["Bob B"]
    assert store.query(EventFilter(actor="bob@x.org"))


def test_forget_records_audit_subject_forgotten_without_the_identity(
    store: Store, store_url: str
) -> None:
    store.append(make_records(3))
    store.forget("carol", follow_links=True, confirm=_yes, record=_record)
    (event,) = store.query(EventFilter(operations=("audit.subject_forgotten",)))
    assert all(shown.startswith("forgotten subject subject:")
               for shown in event["details"]["subjects"])  # fmt: skip
    stored = _raw_bodies(store_url)[-1]
    assert all(is_token(token) for token in stored["details"]["subjects"])
    assert "carol" not in json.dumps(stored).lower()
    assert store.verify().ok


def test_hash_user_ids_values_are_left_alone(store: Store, store_url: str) -> None:
    anon = {"uid": 1, "user": "anon:0123456789abcdef", "git_name": "anon:00000000000000aa",
            "git_email": "anon:fedcba9876543210", "host": "h"}  # fmt: skip
    store.append([make_record(0, actor=anon, details={"message": "by dora@example.com"})])
    (body,) = _raw_bodies(store_url)
    assert {key: body["actor"][key] for key in anon} == anon
    assert TOKEN.search(body["details"]["message"])  # free text is still pseudonymized
    with store.reading() as conn:
        assert conn.scalar(select(subjects.c.kind)) == "email"
    (event,) = store.query(EventFilter(actor="anon:0123456789abcdef"))
    assert event["details"]["message"] == "by dora@example.com"


def test_writer_cache_sees_a_forget_made_by_another_store(store_url: str) -> None:
    with Store.open(store_url, chain_id="daemon") as daemon, \
            Store.open(store_url, chain_id="cli") as cli:  # fmt: skip
        daemon.append([make_record(0)])
        cli.forget("alice", follow_links=True, confirm=_yes, record=_record)
        daemon.append([make_record(3)])  # alice again, through the daemon's warm cache
        newest = daemon.query(EventFilter(actor="alice", limit=1))
        assert [e["actor"]["user"] for e in newest] == ["alice"]


def test_concurrent_writers_create_one_subject(store_url: str) -> None:
    errors: list[BaseException] = []

    def write(chain: str) -> None:
        try:
            with Store.open(store_url, chain_id=chain) as store:
                for index in range(5):
                    store.append([make_record(index * 3)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"w{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            kinds = conn.execute(select(subjects.c.kind)).scalars().all()
    finally:
        engine.dispose()
    assert sorted(kinds) == ["email", "name", "user"]


def test_a_rolled_back_append_does_not_leave_a_cached_subject(store_url: str) -> None:
    migrate(store_url)
    engine = create_store_engine(store_url)
    keeper = Pseudonymizer()
    try:
        def failed_append() -> None:
            with write_transaction(engine) as conn:
                keeper.begin(conn)
                keeper.token(conn, "email", "eve@example.com")
                raise RuntimeError("the append failed")

        with pytest.raises(RuntimeError):
            failed_append()
        with write_transaction(engine) as conn:
            keeper.begin(conn)
            token = keeper.token(conn, "email", "eve@example.com")
            assert conn.scalar(select(subjects.c.pseudonym)) == token  # made again, stored
        with snapshot(engine) as conn:
            raw = list(iter_bodies(conn, EventFilter()))
        assert raw == []
    finally:
        engine.dispose()


def test_subject_tombstones_refuse_changes(store: Store, store_url: str) -> None:
    store.append([make_record(0)])
    engine = create_store_engine(store_url)
    try:
        for statement in ("DELETE FROM subjects", "UPDATE subjects SET kind = 'user'"):
            with pytest.raises(Exception, match="subjects refused"), engine.begin() as conn:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def test_trace_shows_identities(store: Store) -> None:
    from gitaudit.store.trace import trace

    store.append(make_records(3))  # one job: job-0
    with store.reading() as conn:
        found = trace(conn, "job-0")
    assert sorted(node.event["actor"]["git_email"] for node in found.roots) == [
        "alice@example.com", "bob@example.com", "carol@example.com"]


def test_text_that_only_contains_a_token_inside_a_word_is_left_alone(store: Store) -> None:
    store.append([make_record(0)])
    with store.reading() as conn:
        token = conn.scalar(select(subjects.c.pseudonym).where(subjects.c.kind == "user"))
        revealer = Revealer(conn)
        assert revealer.body(f'["{token}", "x{token}", "{token}0"]') == (
            f'["alice", "x{token}", "{token}0"]')


def test_actors_sharing_identities_keep_their_own_fields(store: Store, store_url: str) -> None:
    """The writer's per-actor cache never adds or drops a field of an actor."""
    actor = {"uid": 1, "user": None, "git_email": "eve@example.com", "host": "h"}
    first, second, third = (make_record(index, actor=actor) for index in range(3))
    del second["actor"]["user"]  # a record whose actor lacks the field altogether
    store.append([first])
    store.append([second, third])
    actors = [body["actor"] for body in _raw_bodies(store_url)]
    assert ["user" in actor for actor in actors] == [True, False, True]
    assert len({actor["git_email"] for actor in actors}) == 1
    assert store.verify().ok
