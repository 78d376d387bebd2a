"""Revision 0004 (signed_checkpoints) on a store that already holds records, both engines."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, text

from gitaudit.store import Store, migrate
from gitaudit.store.checkpoints import generate_key
from gitaudit.store.engine import _alembic_config, create_store_engine, write_transaction
from tests.store.helpers import make_records, writer_before_0007


def test_upgrade_from_0001_keeps_records_and_adds_an_append_only_table(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # revision 0001's writer: no search index yet (revision 0005 backfills it)
    monkeypatch.setattr("gitaudit.store.writer.sqlite_index_rows", lambda *_args: None)
    engine = create_store_engine(store_url)
    try:
        with write_transaction(engine) as conn:
            command.upgrade(_alembic_config(conn), "0001")
        with write_transaction(engine) as conn:  # records written at revision 0001
            writer_before_0007("old").append(conn, make_records(5))
        assert "signed_checkpoints" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    monkeypatch.undo()
    migrate(store_url)
    migrate(store_url)  # idempotent
    with Store.open(store_url, chain_id="old") as store:
        assert store.count() == 5
        store.append(make_records(3, start=5))
        written = store.checkpoint(generate_key("k"))
        assert (written.number, written.checkpoint.heads[0].seq) == (1, 8)
        assert store.verify().ok
    engine = create_store_engine(store_url)
    try:
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text("DELETE FROM signed_checkpoints"))
    finally:
        engine.dispose()
