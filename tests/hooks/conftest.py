"""Fixtures for the hook tests: an isolated git sandbox and helpers to drive gitaudit."""

from __future__ import annotations

import os
import subprocess
import time
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


def sandbox_processes(sandbox: GitSandbox) -> list[int]:
    """Live processes started in this sandbox (its git config in their environment).

    Once git has returned, these are the detached children of its hooks still
    delivering (GITAUDIT_HOOK_DETACH) and git's own background maintenance.
    """
    needle = f"\0GIT_CONFIG_GLOBAL={sandbox.global_config}\0".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path("/proc", entry, "environ").read_bytes()
        except OSError:
            continue  # gone, or not ours
        if needle in b"\0" + environ:
            found.append(int(entry))
    return found


def settle(sandbox: GitSandbox, timeout: float = 20.0) -> None:
    """Wait until every process of this sandbox is gone (detached hook children delivered)."""
    deadline = time.monotonic() + timeout
    while (left := sandbox_processes(sandbox)):
        assert time.monotonic() < deadline, f"still running after {timeout} s: {left}"
        time.sleep(0.01)


def hook_events(sandbox: GitSandbox, hook: str | None = None) -> list[dict[str, object]]:
    """Events recorded by hooks (of one hook if given), in the order they happened.

    Waits for detached hook children first: with ``hook_detach`` (default
    auto) an event may land in the spool just after git returned, and two
    children may land in either order, so events are sorted by ``occurred_at``
    (taken in the hook before it detached).
    """
    settle(sandbox)
    found = [event for event in sandbox.events() if event["source"] == "hook"]
    found.sort(key=lambda event: str(event["occurred_at"]))
    return [e for e in found if hook is None or e["details"]["hook"] == hook]  # type: ignore[index]
