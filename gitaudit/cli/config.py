"""`gitaudit config show`: the settings in force and where each value comes from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from gitaudit import config
from gitaudit.cli.common import OutputFormat, load_settings


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def show_command(
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table or json.")
    ] = OutputFormat.table,
) -> None:
    """Print every setting with its value and the variable that overrides it."""
    settings = load_settings()
    rows = [
        {"key": field.name, "env": field.env, "value": _plain(getattr(settings, field.name))}
        for field in config.FIELDS
    ]
    if fmt in (OutputFormat.json, OutputFormat.jsonl):
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(f"{row['key']:<20} {row['env']:<30} {row['value']!r}")
