"""The daemon's checkpoint schedule: notes in the directory, audit.checkpoint events at the
sink, and `gitaudit verify --checkpoints` reading either copy after the store was cut."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from gitaudit.store.checkpoints import generate_key
from tests.daemon.daemon_harness import DaemonRun, wait_for
from tests.daemon.daemon_harness import make_event as client_event
from tests.daemon.test_sinks import FlakyServer, flaky_server  # noqa: F401 - the fixture
from tests.store.helpers import tamper


def _gitaudit(run: DaemonRun, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**run.env, "GITAUDIT_DATABASE_URL": run.database_url}
    return subprocess.run(
        [sys.executable, "-m", "gitaudit", *args],
        env=env, capture_output=True, text=True, cwd=run.root, check=False,
    )  # fmt: skip


def _checkpoint_events(server: FlakyServer) -> list[dict[str, object]]:
    with server.lock:
        return [
            event for body in server.bodies for event in body
            if event["operation"] == "audit.checkpoint"
        ]  # fmt: skip


def test_daemon_writes_signed_checkpoints_to_dir_store_and_sink(
    flaky_server: FlakyServer,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    flaky_server.failures = 0
    key = generate_key("build-host")
    key_file, pub_file = tmp_path / "ck.key", tmp_path / "ck.pub"
    key_file.write_text(key.encode() + "\n")
    key_file.chmod(0o600)
    pub_file.write_text(key.verifier().encode() + "\n")
    folder = tmp_path / "checkpoints"
    run = DaemonRun(config={
        "http_sink_url": flaky_server.url, "chain_id": "host-a", "checkpoint_interval": 0.3,
        "checkpoint_key": str(key_file), "checkpoint_dir": str(folder),
    })  # fmt: skip
    try:
        run.start()
        events = [client_event(n) for n in range(12)]
        assert {a["status"] for a in run.send(events)} == {"accepted"}
        run.wait_stored([e["id"] for e in events])
        wait_for(lambda: len(list(folder.glob("*.note"))) >= 3 or None, "three checkpoints")
        wait_for(lambda: len(_checkpoint_events(flaky_server)) >= 3 or None, "them at the sink")
        assert run.stop() == 0
        export = tmp_path / "sink-export.jsonl"
        with flaky_server.lock:
            lines = [json.dumps(event) for body in flaky_server.bodies for event in body]
        export.write_text("\n".join(lines) + "\n")
        for source in (str(folder), str(export)):
            ok = _gitaudit(run, "verify", "--checkpoints", source, "--key", str(pub_file))
            assert ok.returncode == 0, ok.stderr
            assert "signatures checked: ok" in ok.stdout
        database = run.database_url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(database)) as conn:
            (head,) = conn.execute("SELECT max(seq) FROM events").fetchone()
        tamper(  # the tail cut back, store checkpoints to match: the chain alone verifies
            run.database_url,
            "DELETE FROM events WHERE seq > 5",
            "DELETE FROM checkpoints WHERE seq > 5",
            "INSERT INTO checkpoints SELECT chain_id, seq, hash, recorded_at FROM events "
            "WHERE seq = 5",
        )
        assert _gitaudit(run, "verify").returncode == 0
        for source in (str(folder), str(export)):
            cut = _gitaudit(run, "verify", "--checkpoints", source, "--key", str(pub_file))
            assert cut.returncode == 1, cut.stdout
            assert "truncated" in cut.stderr and "host-a" in cut.stderr, cut.stderr
            assert f"6..{head}" in cut.stderr or "records 6.." in cut.stderr
    finally:
        run.cleanup()


def test_daemon_refuses_to_start_with_an_unusable_checkpoint_key(tmp_path: Path) -> None:
    (tmp_path / "pub-not-key").write_text(generate_key("x").verifier().encode() + "\n")
    run = DaemonRun(config={"checkpoint_key": str(tmp_path / "pub-not-key")})
    try:
        run.start(wait=False)
        assert run.process is not None
        assert run.process.wait(60) != 0
        log = run.log_file.read_text()
        assert "not a signed-note private key" in log
    finally:
        run.cleanup()
