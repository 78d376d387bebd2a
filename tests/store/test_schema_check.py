"""The schema check every reader makes on start: one cheap version read, Alembic not imported.

A store at the head revision answers it with one ``SELECT`` of the Alembic version table;
only a store without that table (never migrated) costs a look at the catalog, and still
never imports Alembic unless it is migrated.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import event

from gitaudit.errors import ConfigError, StoreError
from gitaudit.store import Store, migrate
from gitaudit.store.engine import create_store_engine, ensure_schema


def _statements(url: str, *, read_only: bool = False) -> list[str]:
    """The SQL statements (BEGIN/ROLLBACK aside) of a reader's schema check on ``url``."""
    engine = create_store_engine(url, read_only=read_only)
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    try:
        ensure_schema(engine, url, upgrade=False)
    finally:
        engine.dispose()
    return [sql for sql in seen if sql.split()[0].upper() not in ("BEGIN", "ROLLBACK")]


@pytest.mark.parametrize("read_only", [False, True])
def test_a_migrated_sqlite_store_is_checked_with_one_select(
    tmp_path: Path, read_only: bool
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    migrate(url)
    assert _statements(url, read_only=read_only) == ["SELECT version_num FROM alembic_version"]


def test_a_migrated_postgresql_store_is_checked_with_one_select(pg_fresh_url: str) -> None:
    migrate(pg_fresh_url)
    assert _statements(pg_fresh_url) == ["SELECT version_num FROM alembic_version"]


def test_a_store_never_migrated_is_named_and_migrated_on_demand(
    tmp_path: Path, pg_fresh_url: str
) -> None:
    path = tmp_path / "bare.db"
    sqlite3.connect(path).close()  # a SQLite file without any table
    for url in (f"sqlite:///{path}", pg_fresh_url):
        with pytest.raises(StoreError, match="schema revision None") as caught:
            Store.open(url, chain_id="c", migrate=False)
        assert "gitaudit db upgrade" in (caught.value.hint or "")
        with Store.open(url, chain_id="c") as store:  # a writer migrates it (PostgreSQL:
            assert store.count() == 0  # after the failed SELECT's transaction is rolled back)


def test_a_corrupt_store_is_an_error_not_a_missing_schema(tmp_path: Path) -> None:
    """A SELECT that fails for another reason than a missing table is not "never migrated"."""
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        Store.open(f"sqlite:///{corrupt}", chain_id="c", migrate=False)


def test_checking_the_schema_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    migrate(url)
    code = (
        "import sys\n"
        "from gitaudit.store import Store\n"
        f"Store.open({url!r}, chain_id='c', migrate=False).close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_an_empty_chain_id_is_refused_on_open_not_at_the_first_append(tmp_path: Path) -> None:
    """The chain writer is made on the first append; its one check still comes first."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    migrate(url)
    with pytest.raises(ConfigError, match="chain_id must not be empty"):
        Store.open(url, chain_id="")
