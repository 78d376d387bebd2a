"""Default file locations (DESIGN.md "Processes and files").

Stdlib only: the git wrapper imports this on every command.
"""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var, "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / fallback


def data_home() -> Path:
    """``$XDG_DATA_HOME`` or ``~/.local/share``."""
    return _xdg("XDG_DATA_HOME", ".local/share")


def state_home() -> Path:
    """``$XDG_STATE_HOME`` or ``~/.local/state``."""
    return _xdg("XDG_STATE_HOME", ".local/state")


def config_home() -> Path:
    """``$XDG_CONFIG_HOME`` or ``~/.config``."""
    return _xdg("XDG_CONFIG_HOME", ".config")


def default_spool_dir() -> Path:
    """Where events wait when no daemon takes them."""
    return state_home() / "gitaudit" / "spool"


def default_database_path() -> Path:
    """The embedded SQLite store."""
    return data_home() / "gitaudit" / "audit.db"


def default_database_url() -> str:
    """SQLAlchemy URL of the embedded SQLite store."""
    return f"sqlite:///{default_database_path()}"


def config_files() -> list[Path]:
    """Config files in increasing precedence (later files override earlier ones)."""
    files = [Path("/etc/gitaudit/config.toml"), config_home() / "gitaudit" / "config.toml"]
    explicit = os.environ.get("GITAUDIT_CONFIG")
    if explicit:
        files.append(Path(explicit))
    return files
