"""Issue 8: one socket message must not freeze the daemon; clients cannot forge gitaudit's word."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from typing import Any

import pytest

from tests.daemon.daemon_harness import Daemons, make_event, wait_for

# Each value once made the journal task, the store writer or the connection die.
UNSTORABLE = [
    ("duration_ms", b"NaN", "duration_ms"),
    ("duration_ms", b"Infinity", "duration_ms"),
    ("duration_ms", b"1e999", "duration_ms"),
    ("occurred_at", b'"0001-01-01T00:00:00Z"', "occurred_at"),
    ("occurred_at", b'"0001-01-01T00:00:00+01:00"', "occurred_at"),
    ("occurred_at", b'"9999-12-31T23:59:59-01:00"', "occurred_at"),
    ("details", b'{"x": "a\\u0000b"}', "details.x"),
    ("actor", b'{"uid": 1, "user": "u", "git_name": "a\\u0000"}', "actor.git_name"),
    ("result", b'{"exit_code": 100000000000000000000000}', "result.exit_code"),
    ("operation", b'"git.other", "details": {"subcommand": {"a": 1}}', "invalid event"),
]


def _line(event: dict[str, Any], field: str, raw: bytes) -> bytes:
    """A request line with ``field`` set to the raw JSON text ``raw`` (NaN included)."""
    rest = {key: value for key, value in event.items() if key != field}
    body = json.dumps({"type": "event", "event": rest}).encode()
    return body[:-2] + b", " + json.dumps(field).encode() + b": " + raw + b"}}\n"


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_unstorable_values_are_answered_and_the_daemon_keeps_serving(
    daemons: Daemons, store: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_fresh_url") if store == "postgresql" else None
    run = daemons(database_url=url).start()
    client = run.client()
    sent: list[str] = []
    for field, raw, named in UNSTORABLE:
        event = make_event()
        sent.append(event["id"])
        client.send_raw(_line(event, field, raw))
        answer = client.answer()  # the connection stays up and answers every line
        assert answer["type"] == "ack", answer
        (ack,) = answer["acks"]
        assert ack["status"] == "rejected", (field, raw[:40], ack)
        assert named in ack["error"], ack["error"]
    canary = make_event()
    assert client.send([canary])[0]["status"] == "accepted"
    client.close()
    stored = run.wait_stored([canary["id"]])
    assert not {event["id"] for event in stored} & set(sent)
    run.assert_running()
    assert "Traceback" not in run.log()
    assert run.stop() == 0


def test_an_over_long_indexed_string_is_cut_not_refused(daemons: Daemons) -> None:
    """3,000 bytes of repo.path exceed what the store indexes: the daemon's pipeline cuts it
    (details.truncated keeps its size and hash), so the event is stored, never refused."""
    run = daemons().start()
    client = run.client()
    event = make_event()
    client.send_raw(_line(event, "repo", b'{"path": "/' + b"p" * 3000 + b'"}'))
    (ack,) = client.answer()["acks"]
    assert ack["status"] == "accepted", ack
    client.close()
    (stored,) = run.wait_stored([event["id"]])
    assert len(stored["repo"]["path"].encode()) <= 2048
    (cut,) = stored["details"]["truncated"]
    assert cut["field"] == "repo.path" and cut["bytes"] == 3001
    assert run.stop() == 0


GITAUDIT_ONLY: list[dict[str, Any]] = [
    {"source": "daemon", "operation": "audit.config_changed", "category": "update"},
    {"source": "trace2"},
    {"operation": "audit.verify", "category": "read"},
    {"operation": "audit.rejected", "category": "create"},
]

FOREIGN_CLIENT = """
import json, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])
reader = sock.makefile("rb")
for event in json.loads(sys.argv[2]):
    sock.sendall(json.dumps({"type": "event", "event": event}).encode() + b"\\n")
    print(reader.readline().decode(), end="", flush=True)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="a client of another uid needs root to start")
def test_another_uid_cannot_say_what_only_gitaudit_says(daemons: Daemons) -> None:
    run = daemons().start()
    run.runtime.chmod(0o755)
    nobody = pwd.getpwnam("nobody")
    forged = [make_event(0, **fields) for fields in GITAUDIT_ONLY]
    honest = make_event(
        actor={"uid": nobody.pw_uid, "user": nobody.pw_name},  # truthful about itself
        details={"claimed_actor": {"uid": 0, "user": "root"}, "peer_pid": 1},
    )
    answers = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
         "-c", FOREIGN_CLIENT, str(run.events_socket), json.dumps([*forged, honest])],
        capture_output=True, check=True, cwd="/", env={"PATH": os.environ["PATH"]},
    ).stdout.decode().splitlines()  # fmt: skip
    acks = [json.loads(line)["acks"][0] for line in answers]
    assert [ack["status"] for ack in acks] == ["rejected"] * len(forged) + ["accepted"]
    assert "recorded by gitaudit itself" in acks[0]["error"]
    stored = run.wait_stored([honest["id"]])
    assert not {event["id"] for event in stored} & {event["id"] for event in forged}
    (kept,) = [event for event in stored if event["id"] == honest["id"]]
    assert kept["actor"]["uid"] == nobody.pw_uid
    assert "claimed_actor" not in kept["details"]  # the client's own claim is not the daemon's
    assert kept["details"]["peer_pid"] != 1
    assert run.stop() == 0


def test_a_client_cannot_write_claimed_actor_itself(daemons: Daemons) -> None:
    """Truthful about itself, but a claim of its own in details: only the daemon writes one."""
    run = daemons().start()
    me = pwd.getpwuid(os.getuid()).pw_name
    event = make_event(
        actor={"uid": os.getuid(), "user": me, "git_name": "Root Admin"},
        details={"claimed_actor": {"uid": 0, "user": "root"}},
    )
    assert run.send([event])[0]["status"] == "accepted"
    (stored,) = [e for e in run.wait_stored([event["id"]]) if e["id"] == event["id"]]
    assert "claimed_actor" not in stored["details"]
    assert run.stop() == 0


def test_client_spools_cannot_say_what_only_gitaudit_says(daemons: Daemons) -> None:
    """The daemon drains client spools (anyone may write one) through the same intake."""
    from gitaudit.transport import spool

    run = daemons()
    client_spool = run.root / "client-spool"
    run.write_config(watch_spool_dirs=[str(client_spool)])
    forged = make_event(source="daemon", operation="audit.config_changed", category="update")
    nan = make_event()
    nan["duration_ms"] = float("nan")
    honest = make_event(details={"claimed_actor": {"uid": 0, "user": "root"}})
    spool.ensure_dir(client_spool)
    with (client_spool / "seg-00000000000000000001-1.jsonl").open("wb") as segment:
        for event in (forged, nan, honest):
            segment.write(json.dumps(event).encode() + b"\n")  # NaN written as Python's json does
    run.start()
    stored = run.wait_stored([honest["id"]])
    assert not {event["id"] for event in stored} & {forged["id"], nan["id"]}
    (kept,) = [event for event in stored if event["id"] == honest["id"]]
    assert kept["actor"]["verified"] is False
    assert "claimed_actor" not in kept["details"]
    set_aside = client_spool / "rejected" / "seg-00000000000000000001-1.jsonl.rejected"
    wait_for(set_aside.exists, "the refused lines to be set aside")
    assert len(set_aside.read_bytes().splitlines()) == 2
    run.assert_running()
    assert run.stop() == 0
