"""`gitaudit daemon`: run the host daemon in the foreground (systemd runs it as a service)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class LogLevel(StrEnum):
    """Levels the daemon logs at (the lowest shown)."""

    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def daemon_command(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Extra TOML config file, read after the default ones (GITAUDIT_* still win).",
            dir_okay=False,
        ),
    ] = None,
    log_level: Annotated[
        LogLevel, typer.Option(help="Lowest level logged to stderr.")
    ] = LogLevel.info,
) -> None:
    """Run the daemon: event socket, trace2 socket, journal, batch writer, metrics.

    Stops cleanly on SIGTERM/SIGINT (flushing to the store); SIGHUP reloads the settings.
    """
    from gitaudit.daemon.server import run

    raise typer.Exit(run(str(config) if config is not None else None, log_level.value))
