"""Lifecycle of the real daemon process: READY, SIGTERM drain, SIGHUP reload, watchdog."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path
from typing import Any

from tests.daemon.daemon_harness import Daemons, make_event, wait_for


class NotifySocket:
    """The datagram socket systemd would listen on for sd_notify messages."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(60)
        self.messages: list[str] = []

    def wait(self, state: str) -> list[str]:
        """Read datagrams until one contains ``state`` (a line such as READY=1)."""
        while not any(state in message.splitlines() for message in self.messages):
            self.messages.append(self.sock.recv(4096).decode())
        return self.messages


def test_ready_sigterm_drain_and_cleanup(daemons: Daemons) -> None:
    run = daemons(
        env={"WATCHDOG_USEC": "200000"},
        # flush only at shutdown: what SIGTERM drains must come from the journal
        config={"buffer_flush_interval": 3600.0, "buffer_max_size": 100_000},
    )
    notify = NotifySocket(run.root)
    run.env["NOTIFY_SOCKET"] = str(notify.path)
    run.start(wait=False)
    notify.wait("READY=1")
    notify.wait("WATCHDOG=1")
    events = [make_event(i) for i in range(50)]
    acks = run.send(events)
    assert [ack["status"] for ack in acks] == ["accepted"] * 50
    assert run.stored() == []  # journaled, not yet written
    assert sorted(p.name for p in run.runtime.iterdir()) >= ["events.sock"]
    assert run.events_socket.stat().st_mode & 0o777 == 0o666
    assert run.stop() == 0
    notify.wait("STOPPING=1")
    assert {event["id"] for event in run.stored()} == {event["id"] for event in events}
    assert not [p for p in run.runtime.iterdir() if p.name.endswith(".sock")]
    assert not list(run.journal.glob("seg-*.jsonl"))
    assert '"event": "stopped"' in run.log()


def test_sigint_stops_cleanly_too(daemons: Daemons) -> None:
    run = daemons().start()
    run.send([make_event()])
    run.signal(signal.SIGINT)
    assert run.stop() == 0
    assert len(run.stored()) == 1


def test_sighup_reloads_policy_and_records_the_change(daemons: Daemons) -> None:
    run = daemons(config={"level": "all", "exclude_actions": []}).start()
    read = make_event(operation="git.other", category="read", details={"subcommand": "status"})
    assert run.send([read])[0]["status"] == "accepted"
    run.write_config(level="writes_only", exclude_actions=["git.tag"])
    run.signal(signal.SIGHUP)

    def recorded() -> dict[str, Any] | None:
        found = [e for e in run.stored() if e["operation"] == "audit.config_changed"]
        return found[0] if found else None

    change = wait_for(recorded, "the audit.config_changed event")
    assert change["source"] == "daemon"
    assert change["details"]["before"] == {"exclude_actions": [], "level": "all"}
    assert change["details"]["after"] == {"exclude_actions": ["git.tag"], "level": "writes_only"}
    assert change["actor"]["verified"] is True and change["actor"]["uid"] == os.getuid()
    again = make_event(operation="git.other", category="read", details={"subcommand": "status"})
    assert run.send([again])[0]["status"] == "filtered"
    assert run.stop() == 0


def test_sighup_with_a_broken_config_keeps_the_old_settings(daemons: Daemons) -> None:
    run = daemons().start()
    run.config_file.write_text("level = 'nonsense'\n")
    run.signal(signal.SIGHUP)
    wait_for(lambda: "reload_failed" in run.log(), "the reload error in the log")
    assert run.send([make_event()])[0]["status"] == "accepted"
    assert run.stop() == 0


def test_database_password_is_redacted_in_the_change_record(daemons: Daemons) -> None:
    run = daemons().start()
    run.write_config(http_sink_url="https://user:s3cret-pass@example.invalid/hook")
    run.signal(signal.SIGHUP)
    found = wait_for(
        lambda: [e for e in run.stored() if e["operation"] == "audit.config_changed"],
        "the audit.config_changed event",
    )
    assert "s3cret-pass" not in str(found[0])
    assert run.stop() == 0


def test_second_daemon_on_the_same_sockets_is_refused(daemons: Daemons) -> None:
    first = daemons().start()
    second = daemons(root=None)
    second.config.update(runtime_dir=str(first.runtime))
    second.write_config()
    second.start(wait=False)
    assert second.process is not None
    assert second.process.wait(60) != 0
    assert "another gitaudit daemon" in second.log()
    assert first.send([make_event()])[0]["status"] == "accepted"
    assert first.stop() == 0


def test_stale_socket_file_is_replaced(daemons: Daemons) -> None:
    run = daemons()
    run.runtime.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(run.events_socket))
    stale.close()  # the file stays, nobody listens: a crashed daemon's leftover
    run.start()
    assert run.send([make_event()])[0]["status"] == "accepted"
    assert run.stop() == 0


def test_surrogate_escapes_are_repaired_and_plain_text_kept(daemons: Daemons) -> None:
    run = daemons().start()
    client = run.client()
    lone, plain = make_event(1), make_event(2, details={"subject": "café ✓"})
    line = json.dumps({"type": "events", "events": [plain]}, ensure_ascii=False).encode()
    client.send_raw(line + b"\n")
    assert client.answer()["acks"][0]["status"] == "accepted"
    lone["details"] = {"subject": "bad \udcff byte"}
    client.send_raw(json.dumps({"type": "event", "event": lone}).encode() + b"\n")
    assert client.answer()["acks"][0]["status"] == "accepted"
    stored = {row["id"]: row for row in run.wait_stored([lone["id"], plain["id"]])}
    assert stored[plain["id"]]["details"]["subject"] == "café ✓"
    repaired = stored[lone["id"]]["details"]["subject"]
    assert repaired.startswith("bad ") and repaired.endswith(" byte")
    repaired.encode("utf-8")
    client.close()
    assert run.stop() == 0
