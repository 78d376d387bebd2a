"""Failures surface as StoreError with a message and a hint, never as a raw driver error."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gitaudit.errors import StoreError
from gitaudit.store import Store, migrate
from tests.store.helpers import make_records

pytestmark = pytest.mark.filterwarnings("error")


def _open(url: str) -> Store:
    return Store.open(url, chain_id="c")


def test_corrupt_sqlite_file(tmp_path: Path) -> None:
    database = tmp_path / "audit.db"
    database.write_bytes(b"this is not a database, just some text " * 200)
    with pytest.raises(StoreError, match="is not a usable SQLite database") as caught:
        _open(f"sqlite:///{database}")
    assert "backup" in caught.value.hint
    assert isinstance(caught.value.__cause__, Exception)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open SQLite store") as caught:
        _open(f"sqlite:///{tmp_path / 'nope' / 'audit.db'}")
    assert "directory exists" in caught.value.hint


def test_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open SQLite store"):
        _open(f"sqlite:///{tmp_path}")


def test_read_only_database_file(tmp_path: Path) -> None:
    database = tmp_path / "audit.db"
    with _open(f"sqlite:///{database}") as store:
        store.append(make_records(1))
    url = f"sqlite:///file:{database}?mode=ro&uri=true"
    with pytest.raises(StoreError, match="read-only") as caught, _open(url) as store:
        store.append(make_records(1, start=1))
    assert "permissions" in caught.value.hint


def test_unwritable_parent_for_from_settings(tmp_path: Path) -> None:
    from gitaudit.config import Settings

    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings = Settings({"database_url": f"sqlite:///{blocker / 'sub' / 'audit.db'}"})
    with pytest.raises(StoreError, match=r"cannot create the store directory .* not a directory"):
        Store.from_settings(settings)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_postgresql_unreachable() -> None:
    url = f"postgresql+psycopg://auditor:hunter2@127.0.0.1:{_closed_port()}/audit"
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL") as caught:
        _open(url)
    assert "hunter2" not in str(caught.value)
    assert "***" in str(caught.value)
    assert "running" in caught.value.hint


def test_postgresql_missing_database(pg_url: str) -> None:
    url = pg_url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(StoreError, match="does not exist"):
        migrate(url)


def test_plain_postgresql_scheme_uses_psycopg(pg_url: str) -> None:
    with Store.open(pg_url.replace("postgresql+psycopg", "postgresql"), chain_id="c") as store:
        assert store.dialect == "postgresql"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "invalid database URL"),
        ("mysql://u@h/db", "cannot use database URL|unsupported database"),
        ("postgresql+nope://u@h/db", "cannot use database URL"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        _open(url)


def test_a_reader_finds_no_store_and_creates_nothing(tmp_path: Path) -> None:
    from gitaudit.config import Settings

    url = f"sqlite:///{tmp_path / 'missing' / 'audit.db'}"
    with pytest.raises(StoreError, match="no audit store at") as caught:
        Store.from_settings(Settings({"database_url": url}), reader=True, create=False)
    assert "gitaudit db upgrade" in caught.value.hint
    assert not (tmp_path / "missing").exists()


def test_a_read_only_store_reads_and_refuses_to_write(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with _open(url) as writer:
        writer.append(make_records(3))
    with Store.open(url, chain_id="c", read_only=True) as reader:
        assert reader.read_only and reader.count() == 3 and reader.verify().ok
        with pytest.raises(StoreError, match="read-only"):
            reader.append(make_records(1, start=3))
    assert sorted(p.name for p in tmp_path.glob("audit.db*")) == ["audit.db"]  # no -wal, -shm


def test_an_unparsable_url_is_named_without_its_password() -> None:
    """The URL is shown as given (not '<invalid database URL>'), its password hidden."""
    with pytest.raises(StoreError) as caught:
        _open("postgresql+psycopg://auditor:hunter2@db.example:notaport/audit")
    message = str(caught.value)
    assert "postgresql+psycopg://auditor:***@db.example:notaport/audit" in message
    assert "hunter2" not in message and "<invalid database URL>" not in message
