"""Retention on PostgreSQL drops whole expired monthly partitions, and the store still verifies.

Records are given an ``occurred_at`` in past months (the partition key), with those
months' partitions made first; they age by ``recorded_at``, so a run is given a
``now`` in the future.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from gitaudit.cli.app import app
from gitaudit.cli.retention import table_lines
from gitaudit.config import Settings
from gitaudit.store import Store, retention
from gitaudit.store.engine import create_store_engine, write_transaction
from gitaudit.store.partitions import month_of, partition_name
from gitaudit.store.retention import Policy, RetentionOptions, recorder
from tests.pg import PgServer
from tests.store.helpers import make_record, scalar

NOW = datetime.now(UTC)


def _month(back: int) -> date:
    """The first day of the month ``back`` months before this one."""
    first = month_of(NOW)
    index = first.year * 12 + first.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def _at(back: int, index: int, **overrides: Any) -> dict[str, Any]:
    moment = datetime(_month(back).year, _month(back).month, 15, tzinfo=UTC)
    return make_record(
        index, occurred_at=(moment + timedelta(minutes=index)).isoformat(), **overrides
    )


def _make_months(url: str, *backs: int) -> None:
    engine = create_store_engine(url)
    try:
        with write_transaction(engine) as conn:
            for back in backs:
                conn.execute(text("SELECT gitaudit_create_partition(:m)"), {"m": _month(back)})
    finally:
        engine.dispose()


def _exists(url: str, name: str) -> bool:
    return bool(scalar(url, f"SELECT count(*) FROM pg_class WHERE relname = '{name}'"))  # noqa: S608 - test names


def _seqs(url: str, chain: str) -> list[int]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT seq FROM events WHERE chain_id = :c ORDER BY seq"), {"c": chain}
            )
            return [int(seq) for (seq,) in rows]
    finally:
        engine.dispose()


def test_expired_months_are_dropped_and_the_rest_deleted_by_rows(
    pg_fresh_url: str, tmp_path: Path
) -> None:
    url = pg_fresh_url
    with Store.open(url, chain_id="host-a") as store:
        _make_months(url, 1, 2, 3, 4)
        push = {"operation": "git.push"}
        store.append(
            [_at(4, i, **push) for i in range(3)]  # seq 1..3: four months ago
            + [_at(2, 3, **push)]  # seq 4: a skewed clock, two months ago
            + [_at(3, i, **push) for i in range(4, 8)]  # seq 5..8: three months ago
            + [_at(2, i, **push) for i in range(8, 10)]  # seq 9..10: two months ago
            + [_at(2, 10, operation="conflict.detected")]  # seq 11: in force (kept forever)
            + [_at(1, i, **push) for i in range(11, 13)]  # seq 12..13: last month
        )
        with Store.open(url, chain_id="host-z") as other:  # a second chain, all expired
            other.append([_at(4, i, operation="git.push") for i in range(20, 22)])
        options = RetentionOptions(
            Policy(30, [("conflict.*", None)]), str(tmp_path / "archive"), 2,
            now=NOW + timedelta(days=100),
        )  # fmt: skip
        report = store.expire(options, recorder(store, Settings(), "cli"))

        dropped = [partition_name(_month(4)), partition_name(_month(3))]
        assert report.partitions_dropped == dropped
        assert report.as_dict()["partitions_dropped"] == dropped
        assert not any(_exists(url, name) for name in dropped)
        # the month holding seq 11 (in force) stays; seq 9..10 went by rows, seq 4 with seq 8
        assert _exists(url, partition_name(_month(2)))
        assert _seqs(url, "host-a")[:3] == [11, 12, 13]
        assert _seqs(url, "host-z") == []
        deleted = {cut.chain_id: (cut.upto_seq, cut.deleted) for cut in report.chains}
        assert deleted == {"host-a": (10, 10), "host-z": (2, 2)}
        assert f"partitions dropped: {', '.join(dropped)}" in table_lines(report)
        verified = store.verify()
        assert verified.ok, verified.first_problem
        assert [a.problem for a in store.verify_archive(tmp_path / "archive")] == [None, None]
        finished = scalar(
            url,
            "SELECT body::jsonb -> 'details' -> 'partitions_dropped' FROM events "
            "WHERE operation = 'audit.retention' ORDER BY seq DESC LIMIT 1",
        )
        assert finished == dropped


def test_a_month_with_one_row_in_force_is_not_dropped(pg_fresh_url: str) -> None:
    url = pg_fresh_url
    with Store.open(url, chain_id="host-b") as store:
        _make_months(url, 3)
        store.append(
            [_at(3, i, operation="git.push") for i in range(3)]
            + [_at(3, 3, operation="conflict.detected")]
        )
        options = RetentionOptions(
            Policy(30, [("conflict.*", None)]), None, 100, now=NOW + timedelta(days=100)
        )
        report = store.expire(options, recorder(store, Settings(), "cli"))
        assert report.partitions_dropped == []
        assert _exists(url, partition_name(_month(3)))
        assert _seqs(url, "host-b")[:1] == [4]
        verified = store.verify()
        assert verified.ok, verified.first_problem


def _retention_login(pg_server: PgServer, url: str, tmp_path: Path, monkeypatch: Any) -> str:
    monkeypatch.setenv("GITAUDIT_CONFIG", str(tmp_path / "none.toml"))
    result = CliRunner().invoke(app, ["db", "init-roles", "--database-url", url])
    assert result.exit_code == 0, result.output
    user = pg_server.login_user("gitaudit_retention")
    return make_url(url).set(username=user).render_as_string(hide_password=False)


def test_the_function_refuses_what_is_not_a_whole_expired_month(
    pg_server: PgServer, pg_fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = pg_fresh_url
    with Store.open(url, chain_id="host-c") as store:
        _make_months(url, 3)
        store.append([_at(3, i) for i in range(3)])
    retention = _retention_login(pg_server, url, tmp_path, monkeypatch)
    part = partition_name(_month(3))

    def refused(name: str, match: str) -> None:
        with pytest.raises(DBAPIError, match=match):
            scalar(retention, f"SELECT gitaudit_drop_expired_partition('{name}')")

    refused("events_default", "not a monthly partition")
    refused("chains", "not a monthly partition")
    refused("events_p209901", "not a monthly partition")  # no such partition
    refused(part, "seq 3 of chain host-c, which no retention grant covers")
    scalar(retention, "SELECT gitaudit_grant_expiry('host-c', 2, 'up to 2')")
    refused(part, "seq 3 of chain host-c, which no retention grant covers")
    assert _exists(url, part)
    assert scalar(url, "SELECT count(*) FROM events") == 3

    scalar(retention, "SELECT gitaudit_grant_expiry('host-c', 3, 'up to 3')")
    assert scalar(retention, f"SELECT gitaudit_drop_expired_partition('{part}')") == 3
    assert not _exists(url, part)
    assert scalar(url, "SELECT count(*) FROM events") == 0


def test_a_long_reader_leaves_the_months_to_the_batches(
    pg_fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = pg_fresh_url
    monkeypatch.setattr(retention, "_DROP_LOCK_TIMEOUT", "200ms")
    with Store.open(url, chain_id="host-d") as store:
        _make_months(url, 3)
        store.append([_at(3, i, operation="git.push") for i in range(4)])
        reader = create_store_engine(url)
        try:
            with reader.begin() as conn:  # holds ACCESS SHARE on events until it ends
                conn.execute(text("SELECT count(*) FROM events"))
                options = RetentionOptions(
                    Policy(30), None, 100, now=NOW + timedelta(days=100)
                )
                report = store.expire(options, recorder(store, Settings(), "cli"))
        finally:
            reader.dispose()
        assert report.partitions_dropped == []
        assert _exists(url, partition_name(_month(3)))
        assert _seqs(url, "host-d")[:1] == [5]  # seq 1..4 deleted by rows
        assert report.chains[0].deleted == 4
        verified = store.verify()
        assert verified.ok, verified.first_problem
