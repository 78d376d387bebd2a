"""Fixtures of the Claude Code tests: the daemon tests' real daemons and git sandboxes."""

from __future__ import annotations

from tests.daemon.conftest import daemons, sandbox

__all__ = ["daemons", "sandbox"]
