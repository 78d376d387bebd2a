"""Fixtures for the capture tests: an isolated git sandbox per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitfixtures import GitSandbox


@pytest.fixture
def sandbox(tmp_path: Path) -> GitSandbox:
    """A fresh, isolated git environment (HOME, config, identities, spool)."""
    return GitSandbox(tmp_path)
