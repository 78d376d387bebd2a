"""Bad input and faults: malformed floods, kill -9 under load, the store going away."""

from __future__ import annotations

import collections
import json
import random
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.daemon_harness import (
    PROJECT_ROOT,
    Client,
    DaemonRun,
    Daemons,
    make_event,
    wait_for,
)
from tests.pg import PgServer, _run_as, _start, _tool

# --- 10,000 malformed messages ------------------------------------------------------------

MAX_BYTES = 4096


def _bad_line(rng: random.Random, kind: str) -> bytes:
    if kind == "random":
        body = bytes(
            rng.choice([b for b in range(256) if b != 10]) for _ in range(rng.randint(1, 120))
        )
        return b"#" + body
    if kind == "utf8":
        return b'{"type":"event","event":{"x":"\xff\xfe' + bytes([rng.randint(0x80, 0xBF)]) + b'"}}'
    if kind == "overlong":
        return b'{"type":"event","event":{"x":"' + b"y" * (MAX_BYTES + rng.randint(1, 20_000))
    if kind == "deep":
        depth = rng.choice([65, 200, 5000, 50_000])
        return b'{"type":"event","event":{"d":' + b"[" * depth + b"]" * depth + b"}}"
    if kind == "types":
        return rng.choice([
            b"[1,2,3]", b"42", b'"event"', b"null", b'{"type":7}', b'{"type":"evnt"}',
            b'{"type":"event","event":"x"}', b'{"type":"events","events":{"a":1}}',
            b'{"type":"events","events":[1,2]}', b'{"event":{}}', b"{", b'{"type":"event",',
        ])  # fmt: skip
    # invalid event: well-formed request, answered with an ack whose status is rejected
    return json.dumps({"type": "event", "event": make_event(operation="no.such.op")}).encode()


KINDS = ["random", "utf8", "overlong", "deep", "types", "invalid"]


def _script(rng: random.Random, bad: int, good: int) -> list[tuple[bytes, str, str | None]]:
    """(line, expected kind, event id) in random order."""
    lines: list[tuple[bytes, str, str | None]] = []
    for index in range(bad):
        lines.append((_bad_line(rng, KINDS[index % len(KINDS)]), "bad", None))
    for index in range(good):
        event = make_event(index)
        lines.append((json.dumps({"type": "event", "event": event}).encode(), "good", event["id"]))
    rng.shuffle(lines)
    return lines


def _converse(path: Path, lines: list[tuple[bytes, str, str | None]]) -> list[str]:
    """Send every line from a thread while reading the answers; returns accepted ids."""
    client = Client(path, timeout=120)
    sender = threading.Thread(
        target=client.send_raw, args=(b"".join(line + b"\n" for line, _, _ in lines),)
    )
    sender.start()
    accepted = []
    for number, (_, kind, event_id) in enumerate(lines, start=1):
        answer = client.answer()
        if kind == "good":
            assert answer["type"] == "ack", (number, answer)
            assert answer["acks"] == [{"id": event_id, "status": "accepted", "error": None}]
            accepted.append(event_id)
        elif answer["type"] == "error":
            assert answer["line"] == number
            assert answer["error"]
        else:  # an invalid event inside a well-formed request
            assert answer["acks"][0]["status"] == "rejected", answer
            assert answer["acks"][0]["error"].startswith("invalid event")
    sender.join()
    client.close()
    return [event_id for event_id in accepted if event_id is not None]


def test_ten_thousand_malformed_messages(daemons: Daemons) -> None:
    run = daemons(config={"max_message_bytes": MAX_BYTES}).start()
    rng = random.Random(3)
    scripts = [_script(rng, 1500, 200) for _ in range(4)] + [_script(rng, 4000, 200)]  # + flood
    results: list[list[str]] = [[] for _ in scripts]
    errors: list[BaseException] = []

    def talk(index: int) -> None:
        try:
            results[index] = _converse(run.events_socket, scripts[index])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=talk, args=(i,)) for i in range(len(scripts))]
    for thread in threads:
        thread.start()
    for _ in range(50):  # partial lines, then the client goes away
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(run.events_socket))
        sock.sendall(b'{"type":"event","event":{"id":"cut-')
        sock.close()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    bad_total = sum(1 for script in scripts for _, kind, _ in script if kind == "bad")
    assert bad_total == 10_000
    run.assert_running()
    valid = [event_id for ids in results for event_id in ids]
    assert len(valid) == 1000
    stored = run.wait_stored(valid)
    assert collections.Counter(event["id"] for event in stored) == collections.Counter(valid)
    rejected = run.metric_sum("gitaudit_events_rejected_total{")
    wait_for(
        lambda: run.metric_sum('gitaudit_events_rejected_total{reason="truncated"') >= 50,
        "the 50 cut lines to be counted",
    )
    assert rejected >= 10_000
    assert run.send([make_event()])[0]["status"] == "accepted"  # still serving
    assert run.stop() == 0


# --- kill -9 under load ----------------------------------------------------------------------

SENDER = """
import json, socket, sys, uuid
sys.path.insert(0, sys.argv[4])
from tests.daemon.daemon_harness import make_event
path, count, out = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], "a")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(path)
reader = sock.makefile("rb")
sent = 0
try:
    while sent < count:
        batch = [make_event(sent + i) for i in range(min(25, count - sent))]
        sock.sendall(json.dumps({"type": "events", "events": batch}).encode() + b"\\n")
        line = reader.readline()
        if not line.endswith(b"\\n"):
            break
        for ack in json.loads(line)["acks"]:
            if ack["status"] == "accepted":
                out.write(ack["id"] + "\\n")
        out.flush()
        sent += len(batch)
except OSError:
    pass
"""


def test_kill_9_under_load_loses_no_acknowledged_event(daemons: Daemons) -> None:
    run = daemons(config={"buffer_max_size": 500}).start()
    script = run.root / "sender.py"
    script.write_text(SENDER)
    outputs = [run.root / f"acked-{i}.txt" for i in range(8)]
    clients = [
        subprocess.Popen([sys.executable, str(script), str(run.events_socket), "6250", str(out),
                          str(PROJECT_ROOT)])
        for out in outputs
    ]  # fmt: skip
    wait_for(
        lambda: (
            run.metric_sum("gitaudit_events_accepted_total") >= 15_000
            or all(client.poll() is not None for client in clients)
        ),
        "15,000 accepted events",
    )
    run.kill()
    for client in clients:
        assert client.wait(120) == 0
    acked = [line for out in outputs for line in out.read_text().split()]
    assert len(acked) >= 15_000
    assert len(acked) == len(set(acked))
    run.start()
    stored = run.wait_stored(acked, timeout=180)
    counts = collections.Counter(event["id"] for event in stored)
    assert all(counts[event_id] == 1 for event_id in acked)
    assert max(counts.values()) == 1
    assert run.stop() == 0
    assert not list(run.journal.glob("seg-*.jsonl"))


# --- the store goes away -----------------------------------------------------------------------


def _pg_stop(server: PgServer) -> None:
    """A clean ("fast") stop: the test cluster runs with synchronous_commit=off, so an
    immediate stop could lose commits the daemon was told about (not what is tested here)."""
    subprocess.run(
        [_tool("pg_ctl"), "stop", "-D", str(server.data_dir), "-m", "fast", "-w", "-t", "60"],
        cwd=server.data_dir.parent, capture_output=True, check=True, **_run_as(),
    )  # fmt: skip


def _pg_start(server: PgServer) -> None:
    _start(server.data_dir.parent, server.data_dir)


class Sender(threading.Thread):
    """Sends batches of 10 events until stopped, remembering every accepted id."""

    def __init__(self, run: DaemonRun, **overrides: Any) -> None:
        super().__init__()
        self.run_ = run
        self.overrides = overrides
        self.accepted: list[str] = []
        self.stopping = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            client = self.run_.client()
            while not self.stopping.is_set():
                acks = client.send([make_event(i, **self.overrides) for i in range(10)])
                self.accepted += [ack["id"] for ack in acks if ack["status"] == "accepted"]
            client.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.failure = exc


def _store_down(run: DaemonRun) -> bool:
    return run.metrics().get("gitaudit_store_up") == 0.0


def test_store_down_under_load_journal_mode_catches_up(
    daemons: Daemons, pg_server: PgServer, pg_fresh_url: str
) -> None:
    run = daemons(database_url=pg_fresh_url).start()
    sender = Sender(run)
    sender.start()
    wait_for(lambda: len(sender.accepted) >= 200, "events before the outage")
    _pg_stop(pg_server)
    try:
        wait_for(lambda: _store_down(run), "the daemon to notice the store is down")
        during = len(sender.accepted)
        wait_for(lambda: len(sender.accepted) >= during + 500, "events accepted during the outage")
        assert _store_down(run)
    finally:
        _pg_start(pg_server)
    wait_for(lambda: len(sender.accepted) >= during + 1000, "events after the outage")
    sender.stopping.set()
    sender.join()
    assert sender.failure is None, sender.failure
    stored = run.wait_stored(sender.accepted, timeout=120)
    counts = collections.Counter(event["id"] for event in stored)
    assert max(counts.values()) == 1 and len(counts) == len(sender.accepted)
    assert run.metrics().get("gitaudit_store_up") == 1.0
    assert run.stop() == 0


def test_store_down_block_mode_holds_acknowledgements(
    daemons: Daemons, pg_server: PgServer, pg_fresh_url: str
) -> None:
    run = daemons(database_url=pg_fresh_url, config={"on_store_failure": "block"}).start()
    first = make_event()
    run.send([first])
    run.wait_stored([first["id"]])
    _pg_stop(pg_server)
    try:
        probe = make_event()
        run.send([probe])  # taken while the daemon still believes the store is up
        wait_for(lambda: _store_down(run), "the daemon to notice the store is down")
        held = make_event()
        client = Client(run.events_socket, timeout=1.0)
        client.send_raw(json.dumps({"type": "event", "event": held}).encode() + b"\n")
        with pytest.raises(TimeoutError):
            client.sock.recv(65536)  # no acknowledgement while the store is down: clients spool
    finally:
        _pg_start(pg_server)
    client.sock.settimeout(60)
    answer = json.loads(client.sock.recv(65536))  # answered once the store is back
    assert answer["acks"][0]["status"] == "accepted"
    client.close()
    run.wait_stored([first["id"], probe["id"], held["id"]], timeout=120)
    assert run.stop() == 0


def test_store_down_reject_mode_tells_clients_to_spool(
    daemons: Daemons, pg_server: PgServer, pg_fresh_url: str
) -> None:
    run = daemons(database_url=pg_fresh_url, config={"on_store_failure": "reject"}).start()
    _pg_stop(pg_server)
    try:
        probe = make_event()
        run.send([probe])
        wait_for(lambda: _store_down(run), "the daemon to notice the store is down")
        ack = run.send([make_event()])[0]
        assert ack["status"] == "rejected"
        assert "on_store_failure=reject" in ack["error"]
    finally:
        _pg_start(pg_server)
    after = make_event()
    wait_for(lambda: run.send([make_event()])[0]["status"] == "accepted", "acceptance again")
    run.send([after])
    run.wait_stored([probe["id"], after["id"]], timeout=120)
    assert run.stop() == 0


def test_unreachable_store_at_start_is_journaled_then_caught_up(
    daemons: Daemons, tmp_path: Path
) -> None:
    """SQLite in a directory that does not exist yet: the daemon starts, journals, retries."""
    missing = tmp_path / "later"
    run = daemons(database_url=f"sqlite:///{missing / 'sub' / 'audit.db'}")
    missing.write_text("a file where the directory should be")
    run.start()
    events = [make_event(i) for i in range(20)]
    assert {ack["status"] for ack in run.send(events)} == {"accepted"}
    wait_for(lambda: _store_down(run), "the store to be reported down")
    missing.unlink()
    run.wait_stored([event["id"] for event in events], timeout=120)
    assert run.stop() == 0
