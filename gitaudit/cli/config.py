"""`gitaudit config show`: the settings in force and where each value comes from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from gitaudit import config
from gitaudit.cli.common import SummaryFormat, SummaryFormatOption, load_settings


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        if value and all(isinstance(item, tuple) for item in value):
            return dict(value)  # per-operation retention: {pattern: days}
        return list(value)
    return value


def _item(item: Any) -> str:
    if isinstance(item, tuple):  # a retention pattern and its days
        pattern, days = item
        return f"{pattern}={'forever' if days is None else days}"
    return str(item)


def shown(value: Any) -> str:
    """A setting as the table shows it: as written in the config file or its variable."""
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        value = tuple(value.items())
    if isinstance(value, list | tuple):
        return ",".join(_item(item) for item in value) or "(none)"
    return str(value)


def show_command(
    fmt: SummaryFormatOption = SummaryFormat.table,
) -> None:
    """Print every setting with its value and the variable that overrides it."""
    settings = load_settings()
    rows = [
        {"key": field.name, "env": field.env, "value": _plain(getattr(settings, field.name))}
        for field in config.FIELDS
    ]
    if fmt is SummaryFormat.json:
        typer.echo(json.dumps(rows, indent=2))
        return
    key_width = max(len(row["key"]) for row in rows)
    env_width = max(len(row["env"]) for row in rows)
    for row in rows:
        typer.echo(f"{row['key']:<{key_width}}  {row['env']:<{env_width}}  {shown(row['value'])}")
