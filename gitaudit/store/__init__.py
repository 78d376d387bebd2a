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
from gitaudit.store.integrity import ChainReport, Problem, VerifyReport, load_chain_key
from gitaudit.store.pending import pending_segments
from gitaudit.store.reader import EventFilter
from gitaudit.store.writer import AppendResult

if TYPE_CHECKING:
    from gitaudit.store.ingest import IngestReport, ingest

# Imported on first use: ingesting validates records (pydantic, ~40 ms), which a reader
# with nothing in the spool (or run with --no-ingest) never needs.
_LAZY = frozenset({"IngestReport", "ingest"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module("gitaudit.store.ingest")
        # the import bound the submodule to ``ingest`` here: the function takes it back
        globals().update({lazy: getattr(module, lazy) for lazy in _LAZY})
        return globals()[name]
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
