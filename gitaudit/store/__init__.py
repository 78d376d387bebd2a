"""The audit store: append-only, hash-chained events in SQLite or PostgreSQL.

Public surface (everything else in this package is private)::

    store = Store.from_settings(settings)      # or Store.open(url, chain_id=...)
    store.append(records)                       # -> AppendResult(inserted, duplicates)
    store.query(EventFilter(operations=("git.push",), limit=20))
    store.verify()                              # -> VerifyReport, first_problem names the record
    ingest(settings, store)                     # drain the spool -> IngestReport
    Store.from_settings(settings, reader=True, create=False)  # creates nothing; reads copies
    migrate(url)                                # `gitaudit db upgrade` (+ partitions ahead)
    store.partitions(); store.ensure_partitions()  # PostgreSQL monthly partitions of events
    store.init_roles()                          # `gitaudit db init-roles` (PostgreSQL)

Every failure is raised as :class:`gitaudit.errors.StoreError` or
:class:`gitaudit.errors.ConfigError`.
"""

from __future__ import annotations

from gitaudit.store.engine import Store, migrate
from gitaudit.store.ingest import IngestReport, ingest, pending_segments
from gitaudit.store.integrity import ChainReport, Problem, VerifyReport, load_chain_key
from gitaudit.store.reader import EventFilter
from gitaudit.store.writer import AppendResult

__all__ = [
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
