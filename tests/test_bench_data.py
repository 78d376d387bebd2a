"""The reader benchmarks' store generator: its bulk path stores what the writer stores.

``bench/readers_data.py --bulk`` (how the 1 and 10 million event stores of
``bench/bench_readers.py`` are made) writes through the same chain writer as
:meth:`Store.append`, but with the secondary indexes rebuilt at the end and
``synchronous=OFF``. These tests build the same events both ways and compare the
databases: rows, integrity fields, search index, schema; then ``gitaudit verify``.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from bench.readers_data import COMMON, RARE, TRACE_JOB, cached_store, generate
from tests.cli.helpers import isolated_env

COUNT = 3000
# Every events column but recorded_at (the time of writing) and the hashes: identities
# are stored as random subject tokens, different in each store (so are the hashes over
# them); the rows are compared with the tokens revealed, and each store verifies.
COLUMNS = (
    "rowid, id, chain_id, seq, occurred_at, operation, category, outcome, severity, source, "
    "correlation_id, parent_id, actor_user, actor_uid, actor_git_name, actor_git_email, "
    "actor_host, repo_name, repo_path, repo_branch, duration_ms, body"
)


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def _revealed(path: Path, sql: str) -> list[tuple[object, ...]]:
    """``sql``'s rows with every subject token shown as the identity it stands for."""
    from sqlalchemy import create_engine

    from gitaudit.store.subjects import Revealer, is_token

    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            revealer = Revealer(conn)
            def shown(cell: object) -> object:
                if not isinstance(cell, str):
                    return cell
                if is_token(cell):
                    return revealer.value(cell)
                if not cell.startswith("{"):
                    return cell
                body = json.loads(revealer.body(cell))
                body.pop("hash"), body.pop("prev_hash")  # over the tokens: compared apart
                return body

            return [tuple(shown(cell) for cell in row) for row in _rows(path, sql)]
    finally:
        engine.dispose()


def _build(tmp_path: Path) -> tuple[Path, Path]:
    plain, bulk = tmp_path / "plain.db", tmp_path / "bulk.db"
    generate(f"sqlite:///{plain}", COUNT, batch=700)
    generate(f"sqlite:///{bulk}", COUNT, batch=700, bulk=True)
    return plain, bulk


def test_bulk_path_stores_what_the_writer_stores(tmp_path: Path) -> None:
    plain, bulk = _build(tmp_path)
    rows = f"SELECT {COLUMNS} FROM events ORDER BY rowid"  # noqa: S608 - constant
    assert len(_rows(bulk, rows)) == COUNT
    assert "subject:" in str(_rows(bulk, rows)[0])  # identities are tokens in the store
    assert _revealed(bulk, rows) == _revealed(plain, rows)
    checkpoints = "SELECT chain_id, seq FROM checkpoints ORDER BY seq"
    assert _rows(bulk, checkpoints) == _rows(plain, checkpoints)
    schema = "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_stat%' "
    assert sorted(_rows(bulk, schema)) == sorted(_rows(plain, schema))
    assert _rows(bulk, "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'events'")[0][0] > 10
    for word in (RARE, COMMON, "parser", "busy"):
        search = f"SELECT rowid FROM events_fts WHERE events_fts MATCH '{word}' ORDER BY rowid"  # noqa: S608 - constants
        assert _rows(bulk, search) == _rows(plain, search)
    assert len(_rows(bulk, f"SELECT rowid FROM events_fts WHERE events_fts MATCH '{RARE}'")) == 20  # noqa: S608 - constant
    assert not (tmp_path / "bulk.db-wal").exists() or (tmp_path / "bulk.db-wal").stat().st_size == 0


def test_bulk_store_verifies_and_reads(tmp_path: Path) -> None:
    bulk = tmp_path / "bulk.db"
    generate(f"sqlite:///{bulk}", COUNT, batch=700, bulk=True)
    env = isolated_env(tmp_path, GITAUDIT_DATABASE_URL=f"sqlite:///{bulk}")

    def gitaudit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gitaudit", *args, "--no-ingest"],
                              env=env, capture_output=True, text=True, check=False)  # fmt: skip

    verified = gitaudit("verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{COUNT}" in verified.stdout.replace(",", "")
    found = gitaudit("log", "--grep", RARE, "--count")
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "20"
    traced = gitaudit("trace", TRACE_JOB, "--format", "json")
    assert traced.returncode == 0, traced.stderr


def test_cached_store_is_made_once(tmp_path: Path) -> None:
    path = tmp_path / "cached.db"
    made, seconds = cached_store(500, path)
    assert (made, seconds is not None) == (path, True)
    before = path.stat().st_mtime_ns
    assert cached_store(500, path) == (path, None)
    assert path.stat().st_mtime_ns == before
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
