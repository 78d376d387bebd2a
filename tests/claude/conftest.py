"""Fixtures for the Claude tests: a git sandbox and a fake Anthropic endpoint per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.claude.fakeapi import FakeAnthropic
from tests.gitfixtures import GitSandbox


@pytest.fixture
def sandbox(tmp_path: Path) -> GitSandbox:
    """A fresh, isolated git environment (HOME, config, identities, spool)."""
    return GitSandbox(tmp_path)


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    """The fake Messages endpoint on loopback (answers: keep theirs)."""
    with FakeAnthropic() as server:
        yield server
