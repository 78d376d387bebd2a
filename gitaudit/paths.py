"""Default file locations (DESIGN.md "Processes and files").

Plain strings and ``os.path`` only: the git wrapper imports this on every
command, and ``pathlib`` alone costs several milliseconds to import.
"""

from __future__ import annotations

import os


def _xdg(var: str, fallback: str) -> str:
    value = os.environ.get(var, "")
    if value and os.path.isabs(value):
        return value
    return os.path.join(os.path.expanduser("~"), fallback)


def data_home() -> str:
    """``$XDG_DATA_HOME`` or ``~/.local/share``."""
    return _xdg("XDG_DATA_HOME", ".local/share")


def state_home() -> str:
    """``$XDG_STATE_HOME`` or ``~/.local/state``."""
    return _xdg("XDG_STATE_HOME", ".local/state")


def config_home() -> str:
    """``$XDG_CONFIG_HOME`` or ``~/.config``."""
    return _xdg("XDG_CONFIG_HOME", ".config")


def default_spool_dir() -> str:
    """Where events wait when no daemon takes them."""
    return os.path.join(state_home(), "gitaudit", "spool")


def default_database_path() -> str:
    """The embedded SQLite store."""
    return os.path.join(data_home(), "gitaudit", "audit.db")


def default_database_url() -> str:
    """SQLAlchemy URL of the embedded SQLite store."""
    return f"sqlite:///{default_database_path()}"


def config_files() -> list[str]:
    """Config files in increasing precedence (later files override earlier ones)."""
    files = ["/etc/gitaudit/config.toml", os.path.join(config_home(), "gitaudit", "config.toml")]
    explicit = os.environ.get("GITAUDIT_CONFIG")
    if explicit:
        files.append(explicit)
    return files


def daemon_runtime_dir(configured: str | None = None) -> str:
    """Where the daemon creates its sockets (``GITAUDIT_RUNTIME_DIR`` wins)."""
    if configured:
        return configured
    if os.geteuid() == 0:
        return "/run/gitaudit"
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/gitaudit-{os.getuid()}-run"  # noqa: S108
    return os.path.join(runtime, "gitaudit")


def client_runtime_dirs(configured: str | None = None) -> list[str]:
    """Where clients look for the daemon's sockets, in order."""
    if configured:
        return [configured]
    dirs = ["/run/gitaudit"]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        dirs.append(os.path.join(runtime, "gitaudit"))
    return dirs


def events_socket(configured: str | None = None) -> str | None:
    """The first existing ``events.sock`` a client should use, or None (no daemon)."""
    for folder in client_runtime_dirs(configured):
        path = os.path.join(folder, EVENTS_SOCKET)
        if os.path.exists(path):
            return path
    return None


def replace_file(path: str, data: bytes, mode: int) -> None:
    """Replace ``path`` atomically with ``data`` and file mode ``mode``.

    Written to a temporary file in the same directory, then renamed over ``path``: a
    reader sees the old content or the new, never a part; on failure nothing is left.
    """
    directory, name = os.path.split(path)
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)  # exactly ``mode``, whatever the umask
        os.replace(temporary, path)
    except BaseException:
        try:  # noqa: SIM105 - contextlib costs milliseconds to import: not on the hot path
            os.unlink(temporary)
        except OSError:
            pass
        raise


def default_journal_dir() -> str:
    """The daemon's journal (spool-format segments)."""
    return os.path.join(state_home(), "gitaudit", "journal")


EVENTS_SOCKET = "events.sock"
TRACE2_SOCKET = "trace2.sock"
SUBSCRIBE_SOCKET = "subscribe.sock"
