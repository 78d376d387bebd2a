"""Report fixtures: stores on both engines (tests/store's), filled with known events."""

from __future__ import annotations

from tests.store.conftest import _private_tmpdir, sqlite_url, store, store_url

__all__ = ["_private_tmpdir", "sqlite_url", "store", "store_url"]
