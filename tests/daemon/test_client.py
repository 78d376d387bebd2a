"""The synchronous client (transport.socket, deliver) against a real daemon, and without one."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gitaudit.config import Settings
from gitaudit.transport import deliver
from gitaudit.transport import socket as daemon_socket
from tests.daemon.daemon_harness import PROJECT_ROOT, Daemons, make_event, short_dir, wait_for
from tests.gitfixtures import GitSandbox


def _settings(runtime: Path, spool: Path, **extra: object) -> Settings:
    return Settings({"runtime_dir": str(runtime), "spool_dir": str(spool), **extra})


def test_without_a_daemon_deliver_spools(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "no-daemon", tmp_path / "spool")
    delivery = deliver([make_event()], settings)
    assert delivery.transport == "spool"
    assert delivery.path == str(tmp_path / "spool")
    assert (tmp_path / "spool" / "active.jsonl").exists()


def test_a_socket_nobody_listens_on_falls_back_to_the_spool(tmp_path: Path) -> None:
    import socket

    folder = short_dir()
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(folder / "events.sock"))
    dead.close()
    delivery = deliver([make_event()], _settings(folder, tmp_path / "spool"))
    assert delivery.transport == "spool"
    shutil.rmtree(folder)


def test_a_daemon_that_does_not_answer_in_time_falls_back(tmp_path: Path) -> None:
    import socket

    folder = short_dir()
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(str(folder / "events.sock"))
    mute.listen(4)  # accepts connections (backlog) but never answers
    try:
        settings = _settings(folder, tmp_path / "spool", socket_timeout=0.2)
        with pytest.raises(daemon_socket.Unavailable):
            daemon_socket.send([make_event()], settings)
        assert deliver([make_event()], settings).transport == "spool"
    finally:
        mute.close()
        shutil.rmtree(folder)


def test_with_a_daemon_deliver_uses_the_socket(daemons: Daemons, tmp_path: Path) -> None:
    run = daemons().start()
    event = make_event()
    delivery = deliver([event], _settings(run.runtime, tmp_path / "spool", socket_timeout=10))
    assert delivery.transport == "socket"
    assert delivery.path == str(run.events_socket)
    assert not (tmp_path / "spool").exists()
    stored = run.wait_stored([event["id"]])
    assert stored[0]["actor"]["verified"] is True
    assert stored[0]["details"]["peer_pid"] == os.getpid()
    assert run.stop() == 0


def test_events_the_daemon_rejects_are_spooled(daemons: Daemons, tmp_path: Path) -> None:
    run = daemons().start()
    good, bad = make_event(), make_event(operation="git.nonsense")
    delivery = deliver([good, bad], _settings(run.runtime, tmp_path / "spool", socket_timeout=10))
    assert delivery.transport == "spool"
    spooled = [
        json.loads(line) for line in (tmp_path / "spool" / "active.jsonl").read_text().split()
    ]
    assert [event["id"] for event in spooled] == [bad["id"]]
    run.wait_stored([good["id"]])
    assert run.stop() == 0


def test_a_batch_bigger_than_one_socket_message_goes_in_several(
    daemons: Daemons, tmp_path: Path
) -> None:
    run = daemons().start()
    batch = [make_event(index, details={"note": "n" * 200_000}) for index in range(8)]
    settings = _settings(run.runtime, tmp_path / "spool", socket_timeout=10)
    delivery = deliver(batch, settings)  # 1.6 MB together; max_message_bytes is 1 MiB
    assert delivery.transport == "socket"
    assert not (tmp_path / "spool").exists()
    run.wait_stored([event["id"] for event in batch])
    alone = make_event(9, details={"note": "n" * 300_000})
    small = _settings(run.runtime, tmp_path / "spool", socket_timeout=10,
                      max_message_bytes=100_000)
    _, left = daemon_socket.send([alone, make_event(10)], small)
    assert left == [alone]  # too big for any request under this limit: the caller spools it
    assert run.stop() == 0


def test_wrapper_event_arrives_through_the_daemon_verified(
    daemons: Daemons, tmp_path: Path
) -> None:
    run = daemons().start()
    sandbox = GitSandbox(tmp_path)
    repo = sandbox.repo()
    env = {"GITAUDIT_RUNTIME_DIR": str(run.runtime), "GITAUDIT_SOCKET_TIMEOUT": "10"}
    result = sandbox.audited("commit", "-q", "--allow-empty", "-m", "via daemon", cwd=repo, env=env)
    assert result.returncode == 0, result.stderr
    assert sandbox.events() == []  # nothing spooled: the daemon took it
    found = wait_for(
        lambda: [e for e in run.stored() if e["operation"] == "git.commit"],
        "the wrapper's git.commit event",
    )
    event = found[0]
    assert event["source"] == "wrapper"
    assert event["actor"]["verified"] is True
    assert event["actor"]["uid"] == os.getuid()
    assert event["details"]["peer_pid"] > 0
    assert run.stop() == 0


CLAIMING_CLIENT = """
import json, socket, sys
event = json.loads(sys.argv[2])
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])
sock.sendall(json.dumps({"type": "event", "event": event}).encode() + b"\\n")
print(sock.makefile("rb").readline().decode(), end="")
"""


def test_a_client_claiming_to_be_another_user_is_recorded_as_who_it_is(
    daemons: Daemons,
) -> None:
    """As root the client runs as nobody and claims root; otherwise it claims root itself."""
    run = daemons().start()
    run.runtime.chmod(0o755)
    real = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.getuid())
    drop = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    event = make_event(actor={"uid": 0, "user": "root", "verified": True, "host": "h"})
    if os.geteuid() != 0:
        event["actor"].update(uid=real.pw_uid + 4242, user="root")
        drop = []
    answer = subprocess.run(
        [*drop, sys.executable, "-c", CLAIMING_CLIENT, str(run.events_socket),
         json.dumps(event)],
        capture_output=True, check=True, cwd="/", env={"PATH": os.environ["PATH"],
                                                      "PYTHONPATH": str(PROJECT_ROOT)},
    )  # fmt: skip
    assert json.loads(answer.stdout)["acks"][0]["status"] == "accepted"
    stored = run.wait_stored([event["id"]])[0]
    assert stored["actor"]["uid"] == real.pw_uid
    assert stored["actor"]["user"] == real.pw_name
    assert stored["actor"]["verified"] is True
    claimed = {"uid": event["actor"]["uid"], "user": "root"}
    assert stored["details"]["claimed_actor"] == claimed
    assert run.stop() == 0


def test_a_truthful_client_has_no_claim_recorded(daemons: Daemons) -> None:
    run = daemons().start()
    me = pwd.getpwuid(os.getuid()).pw_name
    event = make_event(actor={"uid": os.getuid(), "user": me})
    run.send([event])
    stored = run.wait_stored([event["id"]])[0]
    assert "claimed_actor" not in stored["details"]
    assert run.stop() == 0
