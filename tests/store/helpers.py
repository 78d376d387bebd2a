"""Test helpers for the store: realistic event records and tampering with SQLite files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from gitaudit.events import Event, uuid7
from gitaudit.store.integrity import ChainHasher
from gitaudit.store.subjects import Pseudonymizer
from gitaudit.store.writer import ChainWriter

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
OPERATIONS = ("git.push", "git.fetch", "git.commit", "git.rebase", "conflict.detected")
USERS = ("alice", "bob", "carol")


def make_record(index: int = 0, **overrides: Any) -> dict[str, Any]:
    """A validated event record, varied by ``index`` (one minute apart from BASE_TIME)."""
    user = USERS[index % len(USERS)]
    operation = overrides.pop("operation", OPERATIONS[index % len(OPERATIONS)])
    fields: dict[str, Any] = {
        "id": uuid7(),
        "occurred_at": (BASE_TIME + timedelta(minutes=index)).isoformat(),
        "duration_ms": 12.5 + index,
        "operation": operation,
        "category": "update",
        "outcome": "failure" if index % 4 == 3 else "success",
        "source": "wrapper",
        "correlation_id": f"job-{index // 10}",
        "actor": {
            "uid": 1000 + index % len(USERS),
            "user": user,
            "git_name": user.title() + " Example",
            "git_email": f"{user}@example.com",
            "host": "build-01",
            "ci": {"provider": "github", "job": "build", "run": str(index)},
        },
        "repo": {
            "path": f"/home/{user}/src/project-{index % 2}",
            "remote": "https://git.example.com/acme/project.git",
            "name": f"project-{index % 2}",
            "branch": "main",
        },
        "result": {"exit_code": 0},
        "details": {"remote": "origin", "refs": [{"ref": "refs/heads/main", "forced": False}]},
    }
    fields.update(overrides)
    return Event.model_validate(fields).to_record()


class _NoSubjects(Pseudonymizer):
    """The writer before revision 0007: identities stored as given."""

    def begin(self, conn: Any) -> None:
        """No subject tables to look at."""

    def record(self, conn: Any, record: dict[str, Any]) -> dict[str, Any]:
        """The record unchanged."""
        return record


def writer_before_0007(chain: str, key: bytes | None = None) -> ChainWriter:
    """A chain writer as it was before revision 0007 (clear identities in the bodies)."""
    writer = ChainWriter(chain, ChainHasher(key))
    writer.subjects = _NoSubjects()
    return writer


def make_records(count: int, start: int = 0) -> list[dict[str, Any]]:
    """``count`` records, indexes ``start`` onwards."""
    return [make_record(index) for index in range(start, start + count)]


def sqlite_path(url: str) -> Path:
    """The file of a sqlite:/// URL."""
    return Path(str(make_url(url).database))


def tamper(
    url: str,
    *statements: str,
    params: dict[str, Any] | None = None,
    insert: dict[str, Any] | None = None,
) -> None:
    """Run SQL on a store with the triggers out of the way, as a forger would: on SQLite
    (file access) every trigger dropped, on PostgreSQL as superuser with
    ``session_replication_role = replica``.

    ``params`` are bound in every statement; ``insert`` is an events row (column -> value,
    times as UTC text) inserted after the statements.
    """
    if not url.startswith("sqlite"):
        _tamper_postgresql(url, statements, params or {}, insert)
        return
    with closing(sqlite3.connect(sqlite_path(url), isolation_level=None)) as conn:
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN")
        for (name,) in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        for statement in statements:
            conn.execute(statement, params or {})
        if insert is not None:
            names = ", ".join(insert)
            marks = ", ".join(f":{name}" for name in insert)
            sql = f"INSERT INTO events ({names}) VALUES ({marks})"  # noqa: S608 - our own names
            conn.execute(sql, insert)
        conn.execute("COMMIT")


def _tamper_postgresql(
    url: str, statements: tuple[str, ...], params: dict[str, Any], insert: dict[str, Any] | None
) -> None:
    from sqlalchemy import text

    from gitaudit.store.engine import create_store_engine
    from gitaudit.store.tables import events, parse_utc

    engine = create_store_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            for statement in statements:
                conn.execute(text(statement), params)
            if insert is not None:
                row = {
                    name: parse_utc(value) if name.endswith("_at") else value
                    for name, value in insert.items()
                }
                conn.execute(events.insert(), row)
    finally:
        engine.dispose()


def worker(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``python -m tests.store.worker ARGS`` from the repository root."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = str(REPO_ROOT)
    environment.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store.worker", *args],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str]:
    """Wait for a worker; its return code and stderr."""
    _, stderr = process.communicate(timeout=timeout)
    return process.returncode, stderr


def wait_until_ready(ready: Path, process: subprocess.Popen[str], timeout: float = 60) -> None:
    """Wait until a worker touched ``ready`` (or exited)."""
    import time

    deadline = time.monotonic() + timeout
    while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


def scalar(url: str, statement: str) -> Any:
    """The one value ``statement`` returns on the store at ``url`` (committed)."""
    from sqlalchemy import text

    from gitaudit.store.engine import create_store_engine

    engine = create_store_engine(url)
    try:
        with engine.begin() as conn:
            return conn.scalar(text(statement))
    finally:
        engine.dispose()
