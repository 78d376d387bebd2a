"""Many hosts, one store: daemons with their own chains write one PostgreSQL concurrently.

Three real daemons (distinct ``chain_id``; one logged in as a ``gitaudit_writer``
member), each fed by a real socket client under load, start while PostgreSQL
refuses connections (they journal, then catch up), write through a ``pg_ctl
restart`` in the middle of their batches, and one of them runs on a clock a year
ahead. Afterwards ``gitaudit verify`` passes for every chain; then a superuser
with the triggers off (``session_replication_role = replica``) deletes one record
and edits another, and verify names the chain and seq of each.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import DBAPIError

from gitaudit.store import EventFilter, Store
from gitaudit.store.engine import create_store_engine, write_transaction
from gitaudit.store.integrity import ChainHasher
from gitaudit.store.writer import ChainWriter
from tests.daemon.daemon_harness import DaemonRun, Daemons, wait_for
from tests.daemon.test_faults import Sender, _pg_start, _pg_stop
from tests.pg import PgServer
from tests.store.helpers import REPO_ROOT, make_records, scalar, tamper

CHAINS = ("host-a", "host-b", "host-c")
AHEAD = (datetime.now(UTC) + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def daemons() -> Iterator[Daemons]:
    """Real daemon processes (``python -m gitaudit daemon``), stopped afterwards."""
    made = Daemons()
    yield made
    made.cleanup()


def _verify(url: str) -> tuple[int, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITAUDIT_")}
    env.update(GITAUDIT_DATABASE_URL=url, GITAUDIT_CONFIG="/nonexistent/config.toml",
               PYTHONPATH=str(REPO_ROOT))  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "gitaudit", "verify", "--format", "json", "--no-ingest"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def _accepted(senders: list[Sender], at_least: int) -> bool:
    for sender in senders:
        assert sender.failure is None, sender.failure
    return all(len(sender.accepted) >= at_least for sender in senders)


def test_three_daemons_one_postgresql(
    daemons: Daemons, pg_server: PgServer, pg_fresh_url: str
) -> None:
    with Store.open(pg_fresh_url, chain_id="setup") as setup:  # schema in place
        setup.init_roles()
    # host-a logs in with the least privilege a daemon needs
    writer = make_url(pg_fresh_url).set(username=pg_server.login_user("gitaudit_writer"))
    urls = [writer.render_as_string(hide_password=False), pg_fresh_url, pg_fresh_url]
    _pg_stop(pg_server)  # connection refused at every daemon's start
    try:
        runs: list[DaemonRun] = [
            daemons(database_url=url, config={"chain_id": chain}).start()
            for chain, url in zip(CHAINS, urls, strict=True)
        ]
        senders = [Sender(run) for run in runs[:2]] + [Sender(runs[2], occurred_at=AHEAD)]
        for sender in senders:
            sender.start()
        wait_for(lambda: _accepted(senders, 100), "events journaled while the store is down")
    finally:
        _pg_start(pg_server)
    wait_for(lambda: _accepted(senders, 400), "events once the store is up")
    _pg_stop(pg_server)  # restart in the middle of the daemons' batches
    _pg_start(pg_server)
    marks = [len(sender.accepted) for sender in senders]
    wait_for(
        lambda: _accepted(senders, max(marks) + 300), "events after the restart", timeout=120
    )
    for sender in senders:
        sender.stopping.set()
    for sender in senders:
        sender.join()
        assert sender.failure is None, sender.failure
    for run, sender in zip(runs, senders, strict=True):
        run.database_url = pg_fresh_url  # read back as superuser (the writer role cannot)
        stored = run.wait_stored(sender.accepted, timeout=180)
        counts = collections.Counter(event["id"] for event in stored)
        assert max(counts.values()) == 1  # no duplicate
        assert run.stop() == 0
    engine = create_store_engine(pg_fresh_url)
    try:
        with engine.connect() as conn:
            per_chain = dict(
                conn.execute(text("SELECT chain_id, count(*) FROM events GROUP BY chain_id")).all()
            )
            skewed = conn.scalar(
                text("SELECT count(*) FROM events_default WHERE chain_id = 'host-c'")
            )
    finally:
        engine.dispose()
    assert per_chain == {
        chain: len(sender.accepted) for chain, sender in zip(CHAINS, senders, strict=True)
    }  # no loss, no duplicate
    assert skewed == per_chain["host-c"]  # a year ahead: the default partition took them

    code, report = _verify(pg_fresh_url)
    assert code == 0, report
    assert {chain["chain_id"]: chain["ok"] for chain in report["chains"]} == dict.fromkeys(
        CHAINS, True
    )
    with Store.open(pg_fresh_url, chain_id="reader") as store:
        newest = store.query(EventFilter(limit=50))
    assert [event["occurred_at"] for event in newest] == sorted(
        event["occurred_at"] for event in newest
    )
    assert {event["chain_id"] for event in newest} == {"host-c"}  # the clock-skewed host's

    tamper(
        pg_fresh_url,
        "DELETE FROM events WHERE chain_id = 'host-a' AND seq = 5",
        "UPDATE events SET body = replace(body, '\"testhost\"', '\"mallory\"') "
        "WHERE chain_id = 'host-b' AND seq = 7",
    )
    code, report = _verify(pg_fresh_url)
    assert code == 1
    problems = {chain["chain_id"]: chain["problem"] for chain in report["chains"]}
    assert problems["host-a"]["seq"] == 5 and problems["host-a"]["kind"] == "missing"
    assert problems["host-b"]["seq"] == 7 and problems["host-b"]["kind"] == "modified"
    assert problems["host-c"] is None


def _append_waiting_at_most(engine: Engine, chain: str, records: list[dict[str, Any]],
                            timeout: str) -> None:  # fmt: skip
    with write_transaction(engine) as conn:
        conn.execute(text(f"SET LOCAL lock_timeout = '{timeout}'"))
        ChainWriter(chain, ChainHasher(None)).append(conn, records)


def test_writers_of_different_chains_never_wait_for_each_other(pg_fresh_url: str) -> None:
    """A chain's lock is its own: while one transaction extends chain A, chain B appends,
    and a second writer of chain A waits."""
    Store.open(pg_fresh_url, chain_id="setup").close()
    engine = create_store_engine(pg_fresh_url)
    try:
        with write_transaction(engine) as holding:
            ChainWriter("chain-a", ChainHasher(None)).append(holding, make_records(2))
            _append_waiting_at_most(engine, "chain-b", make_records(2, 2), "5s")
            with pytest.raises(DBAPIError, match="lock timeout"):
                _append_waiting_at_most(engine, "chain-a", make_records(1, 4), "200ms")
    finally:
        engine.dispose()
    assert scalar(pg_fresh_url, "SELECT count(*) FROM events") == 4


def test_the_daemon_creates_the_partitions_ahead_at_start(
    daemons: Daemons, pg_server: PgServer, pg_fresh_url: str
) -> None:
    with Store.open(pg_fresh_url, chain_id="setup") as setup:
        setup.init_roles()
        ahead = [part.name for part in setup.partitions() if part.start][-1]
    engine = create_store_engine(pg_fresh_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE {ahead}"))  # as if made before that month was due
    finally:
        engine.dispose()
    writer = make_url(pg_fresh_url).set(username=pg_server.login_user("gitaudit_writer"))
    run = daemons(database_url=writer.render_as_string(hide_password=False)).start()

    def made() -> bool:
        with Store.open(pg_fresh_url, chain_id="reader", migrate=False) as store:
            return ahead in {part.name for part in store.partitions()}

    wait_for(made, f"the daemon to create {ahead}")
    assert "partitions_created" in run.log()
    assert run.stop() == 0
