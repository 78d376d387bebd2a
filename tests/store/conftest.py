"""Store fixtures: every store test runs against SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitaudit.store import Store


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a fresh SQLite store file."""
    return f"sqlite:///{tmp_path / 'audit.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """URL of a fresh, empty store, once per engine."""
    if request.param == "sqlite":
        return sqlite_url
    url: str = request.getfixturevalue("pg_fresh_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open store (schema migrated) writing chain ``test-chain``."""
    with Store.open(store_url, chain_id="test-chain") as opened:
        yield opened


@pytest.fixture(autouse=True)
def _private_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the emergency spool (under $TMPDIR) inside the test's directory."""
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
