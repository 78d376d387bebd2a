"""PostgreSQL partitions: revision 0002 on a store with rows, partitions ahead, the default one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from gitaudit.cli.app import app
from gitaudit.store import EventFilter, Store, migrate
from gitaudit.store.engine import _alembic_config, create_store_engine, write_transaction
from gitaudit.store.integrity import ChainHasher
from gitaudit.store.partitions import ensure_partitions, list_partitions, partition_name
from gitaudit.store.writer import ChainWriter
from tests.store.helpers import make_record, scalar, tamper, writer_before_0007

NOW = datetime.now(UTC)
SKEWED = NOW + timedelta(days=5 * 366)  # a host whose clock is five years ahead


def _at(moment: datetime, index: int) -> dict[str, Any]:
    return make_record(index, occurred_at=moment.isoformat())


def _upgrade_to(url: str, revision: str) -> None:
    from alembic import command

    engine = create_store_engine(url)
    try:
        with write_transaction(engine) as conn:
            command.upgrade(_alembic_config(conn), revision)
    finally:
        engine.dispose()


def _append(url: str, chain: str, records: list[dict[str, Any]]) -> None:
    engine = create_store_engine(url)
    try:
        with write_transaction(engine) as conn:
            old = "subjects" not in inspect(conn).get_table_names()
            writer = writer_before_0007(chain) if old else ChainWriter(chain, ChainHasher(None))
            writer.append(conn, records)
    finally:
        engine.dispose()


def _rows_by_partition(conn: Connection) -> dict[str, int]:
    rows = conn.execute(text("SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1"))
    return {str(name): int(count) for name, count in rows}


def test_revision_0002_partitions_a_store_that_has_rows(pg_fresh_url: str) -> None:
    _upgrade_to(pg_fresh_url, "0001")
    old_months = [NOW - timedelta(days=70), NOW - timedelta(days=35), NOW]
    records = [_at(moment, i) for i, moment in enumerate(old_months)] + [_at(SKEWED, 3)]
    _append(pg_fresh_url, "host-a", records)
    assert scalar(pg_fresh_url, "SELECT relkind FROM pg_class WHERE relname = 'events'") == "r"

    migrate(pg_fresh_url)

    with Store.open(pg_fresh_url, chain_id="reader", migrate=False) as store:
        parts = store.partitions()
        assert store.count() == 4
        assert store.verify().ok
        ordered = store.query(EventFilter())
    assert [event["seq"] for event in ordered] == [1, 2, 3, 4]  # by occurred_at
    names = [part.name for part in parts]
    for moment in old_months:
        assert partition_name(moment.date()) in names
    assert names[-1] == "events_default" and parts[-1].is_default
    assert partition_name(SKEWED.date()) not in names
    engine = create_store_engine(pg_fresh_url)
    try:
        with engine.connect() as conn:
            placed = _rows_by_partition(conn)
            assert placed["events_default"] == 1  # the clock-skewed row
            assert sum(placed.values()) == 4
            keys = conn.execute(
                text(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = 'events'::regclass AND contype IN ('p', 'u')"
                )
            ).all()
    finally:
        engine.dispose()
    assert dict(keys) == {
        "pk_events": "PRIMARY KEY (id, occurred_at)",
        "uq_events_chain_id_seq_occurred_at": "UNIQUE (chain_id, seq, occurred_at)",
    }


def test_months_ahead_are_created_and_idempotent(pg_fresh_url: str) -> None:
    migrate(pg_fresh_url)
    engine = create_store_engine(pg_fresh_url)
    try:
        with engine.begin() as conn:
            later = NOW + timedelta(days=200)
            created = ensure_partitions(conn, later, months_ahead=2)
            again = ensure_partitions(conn, later, months_ahead=2)
            names = [part.name for part in list_partitions(conn)]
    finally:
        engine.dispose()
    assert len(created) == 3
    assert again == []
    assert partition_name(later.date()) in names
    assert partition_name(NOW.date()) in names  # made by `db upgrade`


def test_a_new_partition_takes_the_default_partitions_rows_of_its_month(
    pg_fresh_url: str,
) -> None:
    migrate(pg_fresh_url)
    with Store.open(pg_fresh_url, chain_id="skewed") as store:
        store.append([_at(NOW, 0), _at(SKEWED, 1), _at(SKEWED + timedelta(days=40), 2)])
        store.append([_at(NOW, 3)])
    engine = create_store_engine(pg_fresh_url)
    try:
        with engine.begin() as conn:
            assert _rows_by_partition(conn)["events_default"] == 2
            created = ensure_partitions(conn, SKEWED, months_ahead=0)
        with engine.connect() as conn:
            placed = _rows_by_partition(conn)
    finally:
        engine.dispose()
    assert created == [partition_name(SKEWED.date())]
    assert placed[partition_name(SKEWED.date())] == 1
    assert placed["events_default"] == 1
    with Store.open(pg_fresh_url, chain_id="reader") as store:
        assert store.count() == 4
        report = store.verify()
        assert report.ok, report.first_problem
    _refused_everywhere(pg_fresh_url)


def _refused_everywhere(url: str) -> None:
    """UPDATE, DELETE and TRUNCATE fail on the parent and on every partition (superuser).

    A row trigger fires only on rows, so UPDATE/DELETE are tried where there are rows;
    every partition must carry both triggers and have the rights revoked from PUBLIC.
    """
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            tables = ["events", *(part.name for part in list_partitions(conn))]
            filled = set(_rows_by_partition(conn)) | {"events"}
            triggers = conn.execute(
                text(
                    "SELECT c.relname, array_agg(t.tgname::text ORDER BY t.tgname) "
                    "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "WHERE c.relname LIKE 'events%' GROUP BY 1"
                )
            ).all()
            public_rights = conn.execute(
                text(
                    "SELECT c.relname FROM pg_class c, aclexplode(c.relacl) a "
                    "WHERE c.relname LIKE 'events%' AND a.grantee = 0 "
                    "AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')"
                )
            ).all()
        assert public_rights == []
        by_table = dict(triggers)
        for table in tables:
            assert any(name.endswith("append_only") for name in by_table[table]), table
            assert f"{table}_no_truncate" in by_table[table], table
            statements = [f"TRUNCATE {table}"]
            if table in filled:
                statements += [
                    f"UPDATE {table} SET outcome = 'failure'",  # noqa: S608 - our names
                    f"DELETE FROM {table}",  # noqa: S608 - our names
                ]
            for statement in statements:
                with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                    conn.execute(text(statement))
    finally:
        engine.dispose()


def test_every_partition_refuses_update_delete_truncate(pg_fresh_url: str) -> None:
    with Store.open(pg_fresh_url, chain_id="c") as store:
        store.append([_at(NOW, 0), _at(SKEWED, 1)])
    _refused_everywhere(pg_fresh_url)


def test_sqlite_keeps_one_table_with_the_query_indexes(sqlite_url: str) -> None:
    migrate(sqlite_url)
    with Store.open(sqlite_url, chain_id="c") as store:
        assert store.partitions() == []
        assert store.ensure_partitions() == []
    names = scalar(
        sqlite_url,
        "SELECT group_concat(name) FROM sqlite_master WHERE tbl_name = 'events' "
        "AND type = 'index' AND name LIKE 'ix_events_%occurred_at%'",
    )
    # revision 0005's time-ordered filter indexes supersede 0002's three query indexes
    assert set(str(names).split(",")) >= {
        "ix_events_actor_user_occurred_at_chain_id_seq",
        "ix_events_operation_repo_name_occurred_at_chain_id_seq",
        "ix_events_actor_host_occurred_at_chain_id_seq",
    }


def test_db_status_shows_partitions(
    pg_fresh_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GITAUDIT_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("GITAUDIT_DATABASE_URL", pg_fresh_url)
    runner = CliRunner()
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    with Store.open(pg_fresh_url, chain_id="c") as store:
        store.append([_at(NOW, 0)])
    table = runner.invoke(app, ["db", "status"])
    assert table.exit_code == 0, table.output
    assert f"{partition_name(NOW.date())}" in table.output
    assert "events_default" in table.output
    shown = json.loads(runner.invoke(app, ["db", "status", "--format", "json"]).output)
    by_name = {part["name"]: part for part in shown["partitions"]}
    assert by_name[partition_name(NOW.date())]["start"].startswith(NOW.strftime("%Y-%m-01"))
    assert by_name["events_default"]["start"] is None


def test_verify_names_a_seq_stored_twice(pg_fresh_url: str) -> None:
    """The partitioned table's unique key holds occurred_at: verify checks (chain, seq) itself."""
    with Store.open(pg_fresh_url, chain_id="host-a") as store:
        store.append([_at(NOW, i) for i in range(3)])
    tamper(
        pg_fresh_url,
        "INSERT INTO events SELECT id, chain_id, seq, occurred_at + interval '1 day', "
        "recorded_at, operation, category, outcome, severity, source, correlation_id, "
        "parent_id, actor_user, actor_uid, actor_git_name, actor_git_email, actor_host, "
        "repo_name, repo_path, repo_branch, duration_ms, body, prev_hash, hash "
        "FROM events WHERE seq = 2",
    )
    with Store.open(pg_fresh_url, chain_id="reader") as store:
        problem = store.verify().first_problem
    assert problem is not None
    assert (problem.chain_id, problem.seq) == ("host-a", 2)
    # whichever copy comes first: the forged one's columns disagree with its body, or the
    # second copy is named as a seq stored twice
    assert problem.kind == "mismatch" or "stored more than once" in problem.message


def test_revision_0002_on_a_sqlite_store_with_rows(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _upgrade_to(sqlite_url, "0001")
    # revision 0001's writer: no search index yet (0005 backfills it)
    monkeypatch.setattr("gitaudit.store.writer.sqlite_index_rows", lambda *_args: None)
    _append(sqlite_url, "host-a", [_at(NOW, 0), _at(SKEWED, 1)])
    migrate(sqlite_url)
    with Store.open(sqlite_url, chain_id="reader", migrate=False) as store:
        assert store.count() == 2
        assert store.verify().ok
    assert scalar(
        sqlite_url, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'ix_events_%occurred_at'"
    ) == 0  # 0001's and 0002's, all superseded by 0005's (..., occurred_at, chain_id, seq)
    assert scalar(
        sqlite_url, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'ix_events_%_chain_id_seq'"
    ) >= 3
