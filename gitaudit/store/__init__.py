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

from typing import TYPE_CHECKING, Any

from gitaudit.store.engine import Store, migrate
from gitaudit.store.reader import EventFilter

if TYPE_CHECKING:
    from gitaudit.store.ingest import IngestReport, ingest
    from gitaudit.store.integrity import ChainReport, Problem, VerifyReport
    from gitaudit.store.keys import load_chain_key
    from gitaudit.store.pending import pending_segments
    from gitaudit.store.writer import AppendResult

# Imported on first use (name -> module): a reader (`gitaudit log`) needs the store and
# the query layer only. Ingesting validates records (pydantic, ~40 ms), which a reader
# with nothing in the spool (or run with --no-ingest) never needs; the writer, the
# verifier and the spool are for the commands that write, verify or ingest.
_LAZY = {
    "IngestReport": "gitaudit.store.ingest",
    "ingest": "gitaudit.store.ingest",
    "ChainReport": "gitaudit.store.integrity",
    "Problem": "gitaudit.store.integrity",
    "VerifyReport": "gitaudit.store.integrity",
    "load_chain_key": "gitaudit.store.keys",
    "pending_segments": "gitaudit.store.pending",
    "AppendResult": "gitaudit.store.writer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        # importing gitaudit.store.ingest bound the submodule to ``ingest`` here: the
        # function takes its name back
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
