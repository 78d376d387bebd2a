"""The public surface of gitaudit.store: names, opening, keys."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

import gitaudit.store
from gitaudit.config import Settings
from gitaudit.errors import ConfigError
from gitaudit.store import Store, load_chain_key
from gitaudit.store.engine import migrations_dir
from tests.store.helpers import make_records


def test_exported_names() -> None:
    assert sorted(gitaudit.store.__all__) == [
        "AppendResult",
        "ChainReport",
        "EventFilter",
        "IngestReport",
        "Problem",
        "Store",
        "VerifyReport",
        "ingest",
        "load_chain_key",
        "migrate",
        "pending_segments",
    ]
    for name in gitaudit.store.__all__:
        assert getattr(gitaudit.store, name) is not None


def test_migrations_directory_is_found() -> None:
    assert (migrations_dir() / "env.py").is_file()
    assert (migrations_dir() / "versions" / "0001_initial.py").is_file()


def test_context_manager_round_trip(store: Store) -> None:
    assert store.count() == 0
    result = store.append(make_records(3))
    assert (result.inserted, result.duplicates) == (3, 0)
    assert store.count() == 3
    assert store.chain_id == "test-chain"


def test_from_settings_creates_private_directory(tmp_path: Path) -> None:
    database = tmp_path / "deep" / "er" / "audit.db"
    settings = Settings({"database_url": f"sqlite:///{database}", "chain_id": "c"})
    with Store.from_settings(settings) as store:
        store.append(make_records(1))
    assert database.is_file()
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700


def test_from_settings_default_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with Store.from_settings(Settings({"chain_id": "c"})) as store:
        assert store.count() == 0
    assert (tmp_path / "data" / "gitaudit" / "audit.db").is_file()


def test_from_settings_uses_chain_key(tmp_path: Path) -> None:
    key_file = tmp_path / "chain.key"
    key_file.write_bytes(b"s3cret\n")
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    settings = Settings({"database_url": url, "chain_id": "c", "chain_key_file": key_file})
    with Store.from_settings(settings) as store:
        stored = store.append(make_records(2))
        assert stored.inserted == 2
        assert store.verify().ok
    with Store.open(url, chain_id="c") as keyless, pytest.raises(ConfigError, match="keyed"):
        keyless.verify()


def test_load_chain_key(tmp_path: Path) -> None:
    assert load_chain_key(None) is None
    key_file = tmp_path / "key"
    key_file.write_bytes(b"  abc\n")
    assert load_chain_key(key_file) == b"abc"


def test_load_chain_key_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read chain key file") as caught:
        load_chain_key(tmp_path / "nope")
    assert "GITAUDIT_CHAIN_KEY_FILE" in caught.value.hint


def test_load_chain_key_empty(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(b"\n")
    with pytest.raises(ConfigError, match="is empty"):
        load_chain_key(key_file)


def test_migrate_creates_the_sqlite_directory(tmp_path: Path) -> None:
    from gitaudit.store import migrate

    database = tmp_path / "new" / "audit.db"
    migrate(f"sqlite:///{database}")
    assert database.is_file()
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700


def test_home_relative_sqlite_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with Store.open("sqlite:///~/audit.db", chain_id="c") as store:
        store.append(make_records(1))
    assert (tmp_path / "audit.db").is_file()
