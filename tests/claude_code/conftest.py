"""Fixtures for the Claude Code tests: a git sandbox and real daemons."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.daemon_harness import Daemons
from tests.gitfixtures import GitSandbox


@pytest.fixture
def sandbox(tmp_path: Path) -> GitSandbox:
    """A fresh, isolated git environment (HOME, config, identities, spool)."""
    return GitSandbox(tmp_path)


@pytest.fixture
def daemons() -> Iterator[Daemons]:
    """Start daemons with ``daemons(...)``; all are stopped afterwards."""
    made = Daemons()
    yield made
    made.cleanup()
