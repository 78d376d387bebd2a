"""Fixtures for the hook tests: an isolated git sandbox and helpers to drive gitaudit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.gitfixtures import GitSandbox, gitaudit_command


@pytest.fixture
def sandbox(tmp_path: Path) -> GitSandbox:
    """A fresh, isolated git environment (HOME, config, identities, spool)."""
    return GitSandbox(tmp_path)


def gitaudit(sandbox: GitSandbox, *args: str, check: bool = True,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``gitaudit ARGS`` in the sandbox; text output."""
    result = subprocess.run(
        [*gitaudit_command(), *args], cwd=sandbox.root, env=sandbox.environ(env),
        capture_output=True, text=True, check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def hook_events(sandbox: GitSandbox, hook: str | None = None) -> list[dict[str, object]]:
    """Events recorded by hooks (of one hook if given), oldest first."""
    found = [event for event in sandbox.events() if event["source"] == "hook"]
    return [e for e in found if hook is None or e["details"]["hook"] == hook]  # type: ignore[index]
