"""Least privilege: each role connects and does exactly what it may (real PostgreSQL logins)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from gitaudit.cli.app import app
from gitaudit.errors import StoreError
from gitaudit.store import EventFilter, Store, migrate
from gitaudit.store.engine import create_store_engine
from gitaudit.store.partitions import ensure_partitions, list_partitions
from gitaudit.store.roles import roles_sql
from tests.pg import PgServer
from tests.store.helpers import make_records, scalar

DENIED = "permission denied"


def _as(url: str, user: str) -> str:
    return make_url(url).set(username=user).render_as_string(hide_password=False)


@pytest.fixture
def owned(
    pg_server: PgServer, pg_fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    """A store migrated by a non-superuser owner with CREATEROLE, roles made by init-roles:
    (superuser URL, owner URL)."""
    monkeypatch.setenv("GITAUDIT_CONFIG", str(tmp_path / "none.toml"))
    owner = pg_server.login_user(options="CREATEROLE")
    database = make_url(pg_fresh_url).database
    pg_server.admin(f"GRANT CREATE ON SCHEMA public TO {owner}", database=str(database))
    owner_url = _as(pg_fresh_url, owner)
    migrate(owner_url)
    result = CliRunner().invoke(app, ["db", "init-roles", "--database-url", owner_url])
    assert result.exit_code == 0, result.output
    return pg_fresh_url, owner_url


def _engine(url: str) -> Engine:
    return create_store_engine(url)


def _denied(url: str, *statements: str, match: str = DENIED) -> None:
    engine = _engine(url)
    try:
        for statement in statements:
            with pytest.raises(DBAPIError, match=match), engine.begin() as conn:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def test_writer_appends_and_makes_partitions_and_nothing_else(
    pg_server: PgServer, owned: tuple[str, str]
) -> None:
    superuser_url, _ = owned
    writer_url = _as(superuser_url, pg_server.login_user("gitaudit_writer"))
    with Store.open(writer_url, chain_id="host-w") as store:  # schema at head: no migration
        store.append(make_records(5))
        store.append(make_records(3, start=5))
    engine = _engine(writer_url)
    try:
        with engine.begin() as conn:
            created = ensure_partitions(conn, datetime.now(UTC) + timedelta(days=400), 0)
    finally:
        engine.dispose()
    assert len(created) == 1
    partition = created[0]
    _denied(
        writer_url,
        "SELECT body FROM events",
        "SELECT * FROM checkpoints",
        "SELECT * FROM retention_grants",
        f"SELECT * FROM {partition}",  # noqa: S608 - our names
        "UPDATE events SET outcome = 'failure'",
        "DELETE FROM events",
        "TRUNCATE events",
        f"DELETE FROM {partition}",  # noqa: S608 - our names
        "INSERT INTO retention_grants VALUES ('host-w', 9, now(), 'x')",
        "SELECT gitaudit_expire('host-w', 9, 'x')",
        "SELECT gitaudit_create_partition(current_date + 4000)",
        "CREATE TABLE sneaky (x int)",
    )
    with Store.open(superuser_url, chain_id="reader") as store:
        report = store.verify()
    assert report.ok and report.chains[0].records == 8


def test_reader_reads_and_verifies_only(pg_server: PgServer, owned: tuple[str, str]) -> None:
    superuser_url, _ = owned
    with Store.open(superuser_url, chain_id="host-r") as store:
        store.append(make_records(4))
    reader_url = _as(superuser_url, pg_server.login_user("gitaudit_reader"))
    with Store.open(reader_url, chain_id="reader", migrate=False) as store:
        assert len(store.query(EventFilter())) == 4
        assert store.verify().ok
        with pytest.raises(Exception, match=DENIED):
            store.append(make_records(1, start=10))
    _denied(
        reader_url,
        "INSERT INTO chains VALUES ('x', now(), 'sha256', NULL)",
        "UPDATE events SET outcome = 'failure'",
        "DELETE FROM events",
        "TRUNCATE events",
        "SELECT gitaudit_expire('host-r', 2, 'x')",
        "SELECT gitaudit_ensure_partitions(now(), 1)",
    )


def test_retention_deletes_only_through_the_function(
    pg_server: PgServer, owned: tuple[str, str]
) -> None:
    superuser_url, _ = owned
    with Store.open(superuser_url, chain_id="host-x") as store:
        store.append(make_records(6))
    retention_url = _as(superuser_url, pg_server.login_user("gitaudit_retention"))
    _denied(
        retention_url,
        "SELECT count(*) FROM events",
        "DELETE FROM events WHERE seq <= 2",
        "INSERT INTO retention_grants VALUES ('host-x', 2, now(), 'x')",
        "UPDATE events SET outcome = 'failure'",
        "TRUNCATE events",
    )
    assert scalar(retention_url, "SELECT gitaudit_expire('host-x', 2, 'policy: 90 days')") == 2
    assert scalar(superuser_url, "SELECT count(*) FROM events") == 4
    assert scalar(superuser_url, "SELECT reason FROM retention_grants") == "policy: 90 days"
    # a re-run with the same bound deletes nothing and does not fail
    assert scalar(retention_url, "SELECT gitaudit_expire('host-x', 2, 'again')") == 0


def test_owner_and_superuser_cannot_change_or_delete(owned: tuple[str, str]) -> None:
    superuser_url, owner_url = owned
    with Store.open(owner_url, chain_id="host-o") as store:
        store.append(make_records(3))
    engine = _engine(owner_url)
    try:
        with engine.connect() as conn:
            tables = ["events", *(part.name for part in list_partitions(conn))]
            filled = {
                str(name)
                for (name,) in conn.execute(text("SELECT DISTINCT tableoid::regclass FROM events"))
            }
    finally:
        engine.dispose()
    for url in (owner_url, superuser_url):
        for table in tables:
            statements = [f"TRUNCATE {table}"]
            if table in filled or table == "events":
                statements += [
                    f"UPDATE {table} SET outcome = 'failure'",  # noqa: S608 - our names
                    f"DELETE FROM {table}",  # noqa: S608 - our names
                ]
            _denied(url, *statements, match="append-only")
    assert scalar(superuser_url, "SELECT count(*) FROM events") == 3
    # only with the triggers switched off (superuser, replica) does a change go through
    engine = _engine(superuser_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text("DELETE FROM events WHERE seq = 2"))
    finally:
        engine.dispose()
    with Store.open(superuser_url, chain_id="reader") as store:
        problem = store.verify().first_problem
    assert problem is not None and (problem.chain_id, problem.seq) == ("host-o", 2)


def test_print_sql_is_what_init_roles_runs_and_is_idempotent(
    pg_server: PgServer, pg_fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITAUDIT_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("GITAUDIT_DATABASE_URL", str(tmp_path / "nowhere" / "x.db"))
    printed = CliRunner().invoke(app, ["db", "init-roles", "--print-sql"])
    assert printed.exit_code == 0, printed.output  # no database needed
    for statement in roles_sql():
        assert statement in printed.output
    migrate(pg_fresh_url)
    import psycopg

    conninfo = make_url(pg_fresh_url).render_as_string(hide_password=False)
    conninfo = conninfo.replace("postgresql+psycopg://", "postgresql://")
    for _ in range(2):  # as a DBA would paste it, twice
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(printed.output.encode())
    assert scalar(
        pg_fresh_url,
        "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'gitaudit\\_%' AND NOT rolcanlogin",
    ) == 3


def test_init_roles_on_sqlite_says_it_is_a_postgresql_feature(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITAUDIT_CONFIG", str(tmp_path / "none.toml"))
    migrate(sqlite_url)
    result = CliRunner().invoke(app, ["db", "init-roles", "--database-url", sqlite_url])
    assert result.exit_code != 0
    assert "PostgreSQL" in str(result.exception) or "PostgreSQL" in result.output


def test_init_roles_without_the_rights_says_who_may(
    pg_server: PgServer, owned: tuple[str, str]
) -> None:
    superuser_url, _ = owned
    nobody = _as(superuser_url, pg_server.login_user("gitaudit_reader"))
    with Store.open(nobody, chain_id="x", migrate=False) as store, pytest.raises(
        StoreError, match=r"permission denied|must be owner"
    ) as caught:
        store.init_roles()
    assert "--print-sql" in caught.value.hint


def test_writer_creates_subjects_but_only_the_owner_forgets(
    pg_server: PgServer, owned: tuple[str, str]
) -> None:
    superuser_url, owner_url = owned
    writer_url = _as(superuser_url, pg_server.login_user("gitaudit_writer"))
    with Store.open(writer_url, chain_id="host-w") as store:
        store.append(make_records(3))  # subjects created by the writer role
        with pytest.raises(StoreError, match=DENIED) as refused:
            store.forget("bob", follow_links=True, confirm=lambda _s: True,
                         record=lambda _s: make_records(1, start=9)[0])  # fmt: skip
        assert "owner" in refused.value.hint
    _denied(writer_url, "DELETE FROM subject_keys", "UPDATE subjects SET forgotten_at = now()")
    with Store.open(owner_url, chain_id="owner") as store:
        done = store.forget("bob", follow_links=True, confirm=lambda _s: True,
                            record=lambda _s: make_records(1, start=9)[0])  # fmt: skip
        assert done is not None and done[1]  # VACUUM FULL ran: the owner may
        assert {s.identity for s in done[0].plan.subjects} == {"bob", "Bob Example",
                                                                "bob@example.com"}
        assert store.verify().ok


def test_only_the_owner_may_rekey(pg_server: PgServer, owned: tuple[str, str]) -> None:
    from gitaudit.store.engine import write_transaction
    from gitaudit.store.rekey import details
    from tests.store.helpers import make_record, writer_before_0007

    superuser_url, owner_url = owned
    engine = _engine(owner_url)
    try:
        with write_transaction(engine) as conn:
            writer_before_0007("old").append(conn, make_records(4))
    finally:
        engine.dispose()

    def record(chain: Any, rekey_id: str) -> dict[str, Any]:
        return make_record(9, operation="audit.store_rekeyed", actor={"host": "h"},
                           details=details(chain, rekey_id))  # fmt: skip

    body = "SELECT string_agg(body, '' ORDER BY seq) FROM events"
    before = scalar(superuser_url, body)
    # a writer that may read everything too (as the retention login is) still may not rewrite
    both = _as(superuser_url, pg_server.login_user("gitaudit_writer", "gitaudit_reader"))
    for login in (_as(superuser_url, pg_server.login_user("gitaudit_writer")), both):
        with (Store.open(login, chain_id="w", migrate=False) as store,
              pytest.raises(StoreError) as refused):  # fmt: skip
            store.rekey(record)
        assert "permission denied" in refused.value.message or (
            "must be owner" in refused.value.message)
        assert "as the owner" in refused.value.hint and "db rekey" in refused.value.hint
    assert scalar(superuser_url, body) == before
    with Store.open(owner_url, chain_id="owner") as store:
        report = store.rekey(record)
        assert report is not None and [c.rewritten for c in report.chains] == [4]
        assert store.verify().ok
    assert "bob@example.com" in before and "bob@example.com" not in scalar(superuser_url, body)
