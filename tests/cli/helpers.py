"""Helpers for CLI tests that run `gitaudit` as a real subprocess."""

from __future__ import annotations

import os
from pathlib import Path


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment without GITAUDIT_*/XDG_*, every gitaudit path under
    ``tmp_path`` (home, data, state, config, runtime, temp), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITAUDIT_", "XDG_"))}
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        GITAUDIT_RUNTIME_DIR=str(tmp_path / "run"),
        TMPDIR=str(tmp_path / "tmp"),
        **extra,
    )
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return env
