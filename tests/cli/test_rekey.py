"""`gitaudit db rekey` as an operator runs it on a store written before revision 0007."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gitaudit.store import Store
from gitaudit.store.engine import create_store_engine, write_transaction
from tests.gitfixtures import GitSandbox, gitaudit_command
from tests.store.helpers import make_records, sqlite_path, writer_before_0007


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*gitaudit_command(), *args], env=env, capture_output=True, text=True,
                          input="", check=False)  # fmt: skip


@pytest.fixture
def sandbox(tmp_path: Path) -> GitSandbox:
    box = GitSandbox(tmp_path)
    box.env["GITAUDIT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'audit.db'}"
    return box


def _file_bytes(url: str) -> bytes:
    path = sqlite_path(url)
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_rekey_through_the_cli(sandbox: GitSandbox, tmp_path: Path) -> None:
    env = sandbox.environ()
    url = env["GITAUDIT_DATABASE_URL"]
    keys = tmp_path / "keys"
    keys.mkdir()
    assert run(env, "keys", "generate", "--out", str(keys), "--name", "t").returncode == 0
    env["GITAUDIT_CHECKPOINT_KEY"] = str(keys / "t.key")
    env["GITAUDIT_CHECKPOINT_DIR"] = str(tmp_path / "notes")
    old = make_records(6)
    old[1]["details"]["message"] = "fix\n\nSigned-off-by: Dora Devel <dora@example.com>"
    with Store.open(url, chain_id="host-new") as store:
        store.append(make_records(1, start=2))  # carol, after revision 0007: a token
    engine = create_store_engine(url)
    try:
        with write_transaction(engine) as conn:  # as the writer stored them before 0007
            writer_before_0007("host-old").append(conn, old)
    finally:
        engine.dispose()
    assert run(env, "checkpoint").returncode == 0  # signed before the rekey
    forgot = run(env, "forget", "--subject", "carol@example.com", "--yes")
    assert forgot.returncode == 0, forgot.stderr
    assert "before revision 0007" in forgot.stdout and "gitaudit db rekey" in forgot.stdout

    refused = run(env, "db", "rekey")  # no TTY, no --yes
    assert refused.returncode == 2
    assert "--yes" in refused.stderr and "--dry-run" in refused.stderr
    planned = run(env, "db", "rekey", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert "host-old: 6 of 6 record(s) hold clear identities (first at seq 1)" in planned.stdout
    assert b"dora@example.com" in _file_bytes(url)

    done = run(env, "db", "rekey", "--yes")
    assert done.returncode == 0, done.stderr
    assert "host-old: 6 record(s) held clear identities; rewrote seq 1..6" in done.stdout
    assert "wrote signed checkpoint" in done.stdout
    assert b"dora@example.com" not in _file_bytes(url)  # nor in freed pages, nor the index
    assert b"Alice Example" not in _file_bytes(url)
    checked = run(env, "verify", "--checkpoints", str(tmp_path / "notes"), "--key",
                  str(keys / "t.pub"))  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "1 stated head(s) rewritten since by `gitaudit db rekey`" in checked.stdout
    shown = run(env, "log", "--op", "git.fetch", "--format", "jsonl")
    emails = [json.loads(line)["actor"]["git_email"] for line in shown.stdout.splitlines()]
    assert sorted(emails) == ["bob@example.com"]  # revealed from its token
    recorded = run(env, "log", "--op", "audit.store_rekeyed", "--format", "jsonl")
    (event,) = [json.loads(line) for line in recorded.stdout.splitlines()]
    assert event["details"]["records_rewritten"] == 6 and "example.com" not in recorded.stdout

    again = run(env, "db", "rekey", "--yes", "--format", "json")
    assert again.returncode == 0 and json.loads(again.stdout)["clear_records"] == 0
    assert "nothing to do" in run(env, "db", "rekey", "--yes").stdout
    # carol was forgotten before the rekey: her old events got a new subject, forgotten now
    assert run(env, "forget", "--subject", "carol@example.com", "--yes").returncode == 0
    assert run(env, "verify").returncode == 0


def test_a_tampered_chain_exits_3_and_json_stays_parseable(sandbox: GitSandbox) -> None:
    from tests.store.helpers import tamper

    env = sandbox.environ()
    url = env["GITAUDIT_DATABASE_URL"]
    with Store.open(url, chain_id="host-new"):
        pass
    engine = create_store_engine(url)
    try:
        for chain in ("bad", "good"):
            with write_transaction(engine) as conn:
                writer_before_0007(chain).append(conn, make_records(3))
    finally:
        engine.dispose()
    tamper(url, "UPDATE events SET body = replace(body, 'build-01', 'build-02') "
           "WHERE chain_id = 'bad' AND seq = 2")  # fmt: skip

    done = run(env, "db", "rekey", "--yes", "--format", "json")

    assert done.returncode == 3, done.stderr
    summary = json.loads(done.stdout)
    assert summary["failed_chains"] == ["bad"] and summary["rewritten"] == 3
    (bad,) = [chain for chain in summary["chains"] if chain["chain_id"] == "bad"]
    assert bad["refused"]["seq"] == 2 and bad["rewritten"] == 0
    assert "1 chain(s) not rewritten: bad" in done.stderr and "gitaudit verify" in done.stderr
