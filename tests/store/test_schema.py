"""Schema: Alembic revisions match the tables, migrations are concurrent-safe, append-only holds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from gitaudit.errors import StoreError
from gitaudit.store import Store, migrate
from gitaudit.store.engine import create_store_engine, head_revision, translate_errors
from gitaudit.store.tables import PARTITIONED_KEYS, include_object, metadata
from tests.store.helpers import finish, make_records, wait_until_ready, worker


def _engine(url: str) -> Engine:
    return create_store_engine(url)


def _not_a_partition(name: str | None, kind: str, _parent: Any) -> bool:
    """Partitions are made by gitaudit.store.partitions, not declared in tables.py."""
    return not (kind == "table" and name is not None and name.startswith(("events_p", "events_d")))


def test_migrated_schema_matches_tables(store_url: str) -> None:
    migrate(store_url)
    engine = _engine(store_url)
    try:
        with engine.connect() as conn:
            opts = {"compare_type": True, "include_object": include_object,
                    "include_name": _not_a_partition}
            context = MigrationContext.configure(conn, opts=opts)
            diff = compare_metadata(context, metadata)
            assert context.get_current_revision() == head_revision()
            uniques = {
                str(key["name"]): tuple(key["column_names"])
                for key in inspect(conn).get_unique_constraints("events")
            }
            primary = tuple(inspect(conn).get_pk_constraint("events")["constrained_columns"])
    finally:
        engine.dispose()
    if store_url.startswith("sqlite"):
        assert diff == []
        return
    # PostgreSQL: events is partitioned; its keys carry the partition key (tables.py says so)
    assert primary == PARTITIONED_KEYS["pk_events"]
    unique = "uq_events_chain_id_seq_occurred_at"
    assert uniques == {unique: PARTITIONED_KEYS[unique]}
    expected = {("remove_constraint", unique), ("add_constraint", "uq_events_chain_id_seq")}
    assert {(item[0], str(item[1].name)) for item in diff} == expected, diff


def test_migrate_is_idempotent(store_url: str) -> None:
    migrate(store_url)
    migrate(store_url)
    with Store.open(store_url, chain_id="c", migrate=False) as store:
        assert store.count() == 0


def test_open_without_migrate_refuses_empty_database(store_url: str) -> None:
    with pytest.raises(StoreError, match="schema revision None") as caught:
        Store.open(store_url, chain_id="c", migrate=False)
    assert "gitaudit db upgrade" in caught.value.hint


def test_sqlite_connection_settings(sqlite_url: str) -> None:
    migrate(sqlite_url)
    engine = _engine(sqlite_url)
    try:
        with engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        engine.dispose()
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1,
                       "busy_timeout": 30000}


def test_concurrent_first_open_of_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    go = tmp_path / "go"
    processes = [worker("open", url, str(tmp_path / f"ready-{i}"), str(go)) for i in range(4)]
    for number in range(4):
        wait_until_ready(tmp_path / f"ready-{number}", processes[number])
    go.touch()
    results = [finish(process) for process in processes]
    assert [code for code, _ in results] == [0, 0, 0, 0], [err for _, err in results]
    with Store.open(url, chain_id="reader") as store:
        assert store.count() == 12
        assert store.verify().ok
        assert len(store.verify().chains) == 4


def test_concurrent_first_open_of_postgresql(pg_fresh_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    processes = [
        worker("open", pg_fresh_url, str(tmp_path / f"ready-{i}"), str(go)) for i in range(3)
    ]
    for number in range(3):
        wait_until_ready(tmp_path / f"ready-{number}", processes[number])
    go.touch()
    results = [finish(process) for process in processes]
    assert [code for code, _ in results] == [0, 0, 0], [err for _, err in results]
    with Store.open(pg_fresh_url, chain_id="reader") as store:
        assert store.count() == 9


REFUSED = [
    "UPDATE events SET outcome = 'failure'",
    "DELETE FROM events",
    "UPDATE chains SET algorithm = 'sha256'",
    "DELETE FROM chains",
    "UPDATE checkpoints SET hash = 'x'",
    "DELETE FROM checkpoints",
]


@pytest.mark.parametrize("statement", REFUSED)
def test_database_refuses_update_and_delete(store: Store, store_url: str, statement: str) -> None:
    store.append(make_records(3))
    engine = _engine(store_url)
    try:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
        with pytest.raises(StoreError, match="refused: the audit store is append-only"), \
                translate_errors("tampering", store_url), engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()
    assert store.count() == 3
    assert store.verify().ok


def test_postgresql_refuses_truncate(pg_fresh_url: str) -> None:
    with Store.open(pg_fresh_url, chain_id="c") as store:
        store.append(make_records(2))
    engine = _engine(pg_fresh_url)
    try:
        for table in ("events", "checkpoints", "retention_grants"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {table} CASCADE"))
    finally:
        engine.dispose()


def test_retention_grant_lets_deletes_through_up_to_its_seq(store: Store, store_url: str) -> None:
    """The trigger design retention will use: a grant row, in the same transaction."""
    store.append(make_records(5))
    engine = _engine(store_url)
    grant = text(
        "INSERT INTO retention_grants (chain_id, upto_seq, granted_at, reason) "
        "VALUES ('test-chain', 2, :now, 'test')"
    )
    try:
        with engine.begin() as conn:
            conn.execute(grant, {"now": datetime.now(UTC)})
            conn.execute(text("DELETE FROM events WHERE seq <= 2"))
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("DELETE FROM events WHERE seq = 3"))
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("DELETE FROM retention_grants"))
    finally:
        engine.dispose()
    assert store.count() == 3


def test_foreign_keys_are_enforced(sqlite_url: str) -> None:
    migrate(sqlite_url)
    engine = _engine(sqlite_url)
    try:
        with pytest.raises(DBAPIError, match="FOREIGN KEY"), engine.begin() as conn:
            conn.execute(
                text("INSERT INTO checkpoints VALUES ('nochain', 1, 'x', '2026-01-01 00:00:00')")
            )
    finally:
        engine.dispose()


def test_alembic_env_works_with_a_url(store_url: str) -> None:
    """env.py also runs from a plain sqlalchemy.url (the `alembic` command during development)."""
    from alembic import command

    from gitaudit.store.engine import _alembic_config

    cfg = _alembic_config()
    cfg.set_main_option("sqlalchemy.url", store_url)
    command.upgrade(cfg, "head")
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == head_revision()
    finally:
        engine.dispose()
