"""Readers and the store: they never create one, and they read a read-only copy."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitaudit.catalog import uuid7
from gitaudit.transport import spool
from tests.cli.helpers import isolated_env
from tests.store.helpers import make_records

READERS = [
    ["db", "status"],
    ["log"],
    ["log", "--no-ingest"],
    ["verify"],
    ["tail"],
    ["claude", "usage"],
    ["report", "usage"],
]


def gitaudit(
    env: dict[str, str], *args: str, as_nobody: bool = False
) -> subprocess.CompletedProcess[str]:
    drop = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    prefix = drop if as_nobody and os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "gitaudit", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _spool_events(env: dict[str, str], count: int) -> None:
    records = make_records(count)
    for record in records:
        record["id"] = uuid7()
    spool.append(Path(env["XDG_STATE_HOME"]) / "gitaudit" / "spool", records, 1 << 20)


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_a_reader_on_a_missing_store_says_so_and_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "nowhere" / "dir" / "a.db"
    env = isolated_env(tmp_path, GITAUDIT_DATABASE_URL=f"sqlite:///{missing}")
    result = gitaudit(env, *command)
    assert result.returncode == 2, result.stderr
    assert f"no audit store at sqlite:///{missing}" in result.stderr
    assert "does not exist" in result.stderr
    assert "GITAUDIT_DATABASE_URL" in result.stderr and "gitaudit db upgrade" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_the_default_store_is_not_created_by_a_reader(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    result = gitaudit(env, "db", "status")
    assert result.returncode == 2 and "no audit store" in result.stderr
    assert not (tmp_path / "data" / "gitaudit").exists()


def test_db_upgrade_creates_the_store_readers_then_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'a.db'}"
    env = isolated_env(tmp_path, GITAUDIT_DATABASE_URL=url)
    assert gitaudit(env, "db", "upgrade").returncode == 0
    status = gitaudit(env, "db", "status")
    assert status.returncode == 0 and "events: 0" in status.stdout


def test_a_spool_to_ingest_creates_the_store(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    _spool_events(env, 3)
    result = gitaudit(env, "log", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 3
    assert (tmp_path / "data" / "gitaudit" / "audit.db").is_file()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory under /tmp that ``nobody`` can traverse (tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="gitaudit-ro-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        for folder in [base, *base.rglob("*")]:
            if folder.is_dir():
                folder.chmod(0o755)
        shutil.rmtree(base)


def _files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_a_read_only_copy_is_read_and_verified(shared_dir: Path) -> None:
    """An archived copy (file 0444 in a 0555 directory): as ``nobody`` when the tests run
    as root, since root ignores file modes. Nothing is written next to it or into it."""
    env = isolated_env(shared_dir)
    _spool_events(env, 4)
    assert gitaudit(env, "ingest").returncode == 0
    archive = shared_dir / "archive"
    archive.mkdir()
    shutil.copy2(shared_dir / "data" / "gitaudit" / "audit.db", archive / "audit.db")
    (archive / "audit.db").chmod(0o444)
    archive.chmod(0o555)
    for folder in (shared_dir, shared_dir / "tmp"):
        folder.chmod(0o1777)  # nobody's home, config and emergency spool live under it
    before = _files(archive)
    env["GITAUDIT_DATABASE_URL"] = f"sqlite:///{archive / 'audit.db'}"

    log = gitaudit(env, "log", "--no-ingest", "--format", "json", as_nobody=True)
    assert log.returncode == 0, log.stderr
    assert len(json.loads(log.stdout)) == 4
    verify = gitaudit(env, "verify", "--format", "json", as_nobody=True)
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["ok"] is True
    assert gitaudit(env, "verify", as_nobody=True).returncode == 0
    status = gitaudit(env, "db", "status", as_nobody=True)
    assert status.returncode == 0 and "events: 4" in status.stdout
    assert _files(archive) == before  # no -wal, no -shm, not a byte changed

    # a spool waiting to be ingested is left there, with a warning, and the copy is read
    own_spool = shared_dir / "nobody-spool"
    _spool_events({"XDG_STATE_HOME": str(shared_dir / "unused")}, 1)
    shutil.move(shared_dir / "unused" / "gitaudit" / "spool", own_spool)
    if os.geteuid() == 0:
        for path in [own_spool, *own_spool.rglob("*")]:
            os.chown(path, pwd.getpwnam("nobody").pw_uid, -1)
    env["GITAUDIT_SPOOL_DIR"] = str(own_spool)
    waiting = _files(own_spool)
    log = gitaudit(env, "log", "--format", "json", as_nobody=True)
    assert log.returncode == 0, log.stderr
    assert len(json.loads(log.stdout)) == 4
    assert "1 spool segment(s) not ingested" in log.stderr and "read-only" in log.stderr
    assert _files(own_spool) == waiting and _files(archive) == before


def test_gitaudit_ingest_still_creates_the_store(tmp_path: Path) -> None:
    """`gitaudit ingest` is a writer: with an empty spool it makes an empty store."""
    env = isolated_env(tmp_path)
    result = gitaudit(env, "ingest", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ingested"] == 0
    assert (tmp_path / "data" / "gitaudit" / "audit.db").is_file()


def test_a_read_only_copy_with_an_unreadable_wal_is_refused_clearly(shared_dir: Path) -> None:
    """Commits still in a -wal with no -shm cannot be read from a read-only directory:
    refused with the fix, rather than silently shown without them."""
    env = isolated_env(shared_dir)
    _spool_events(env, 2)
    assert gitaudit(env, "ingest").returncode == 0
    source = shared_dir / "data" / "gitaudit" / "audit.db"
    archive = shared_dir / "archive"
    archive.mkdir()
    holder = sqlite3.connect(source)  # keeps the -wal from being checkpointed away
    try:
        holder.execute("PRAGMA wal_autocheckpoint = 0")
        holder.execute("SELECT count(*) FROM events").fetchall()
        _spool_events(env, 1)
        assert gitaudit(env, "ingest").returncode == 0
        shutil.copy2(source, archive / "audit.db")
        shutil.copy2(f"{source}-wal", archive / "audit.db-wal")
    finally:
        holder.close()
    assert (archive / "audit.db-wal").stat().st_size > 0
    for path in archive.iterdir():
        path.chmod(0o444)
    archive.chmod(0o555)
    for folder in (shared_dir, shared_dir / "tmp"):
        folder.chmod(0o1777)
    env["GITAUDIT_DATABASE_URL"] = f"sqlite:///{archive / 'audit.db'}"
    result = gitaudit(env, "verify", "--no-ingest", as_nobody=True)
    assert result.returncode == 2, result.stderr
    assert "write-ahead log" in result.stderr and ".backup" in result.stderr


def test_a_store_under_a_file_is_a_clear_error_for_a_writer(tmp_path: Path) -> None:
    """Not "run gitaudit db upgrade" for `[Errno 17] File exists`: what is wrong, and the fix."""
    (tmp_path / "plain").write_text("a file, not a directory\n")
    env = isolated_env(tmp_path, GITAUDIT_DATABASE_URL=f"sqlite:///{tmp_path / 'plain' / 'a.db'}")
    for command in (["ingest"], ["db", "status"]):
        result = gitaudit(env, *command)
        assert result.returncode == 2
        assert f"{tmp_path / 'plain'} is not a directory" in result.stderr, result.stderr
        assert "db upgrade`; otherwise" not in result.stderr
