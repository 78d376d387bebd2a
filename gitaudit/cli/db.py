"""`gitaudit db`: schema management."""

from __future__ import annotations

import json
from typing import Any

import typer

from gitaudit.cli.common import SummaryFormat, SummaryFormatOption, load_settings


def upgrade_command() -> None:
    """Apply every pending Alembic revision to the configured store."""
    from gitaudit.store import migrate

    settings = load_settings()
    created = migrate(settings.effective_database_url)
    typer.echo(f"store schema is up to date: {_display_url(settings.effective_database_url)}")
    if created:
        typer.echo(f"partitions created: {', '.join(created)}")


def status_command(
    fmt: SummaryFormatOption = SummaryFormat.table,
) -> None:
    """Show which store is configured, how many events it holds, and its partitions."""
    from gitaudit.store import Store

    settings = load_settings()
    with Store.from_settings(settings, reader=True, create=False) as store:
        count = store.count()
        partitions: list[dict[str, Any]] = [
            {
                "name": part.name,
                "start": part.start.isoformat() if part.start else None,
                "end": part.end.isoformat() if part.end else None,
                "rows_estimate": part.rows,
            }
            for part in store.partitions()
        ]
    info = {
        "url": _display_url(settings.effective_database_url),
        "events": count,
        "partitions": partitions,
    }
    if fmt is SummaryFormat.json:
        typer.echo(json.dumps(info, sort_keys=True))
        return
    typer.echo(f"store: {info['url']}\nevents: {count}")
    if partitions:
        typer.echo("partitions (events by month of occurred_at; rows estimated):")
    for part in partitions:
        span = f"{part['start'][:7]}" if part["start"] else "default (outside every month)"
        typer.echo(f"  {part['name']:<16} {span:<30} ~{part['rows_estimate']} rows")


def _display_url(url: str) -> str:
    from gitaudit.sanitize import redact

    return str(redact(url))
