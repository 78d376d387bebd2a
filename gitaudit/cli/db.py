"""`gitaudit db`: schema management."""

from __future__ import annotations

import json

import typer

from gitaudit.cli.common import SummaryFormat, SummaryFormatOption, load_settings


def upgrade_command() -> None:
    """Apply every pending Alembic revision to the configured store."""
    from gitaudit.store import migrate

    settings = load_settings()
    migrate(settings.effective_database_url)
    typer.echo(f"store schema is up to date: {_display_url(settings.effective_database_url)}")


def status_command(
    fmt: SummaryFormatOption = SummaryFormat.table,
) -> None:
    """Show which store is configured and how many events it holds."""
    from gitaudit.store import Store

    settings = load_settings()
    with Store.from_settings(settings, reader=True, create=False) as store:
        count = store.count()
    info = {"url": _display_url(settings.effective_database_url), "events": count}
    if fmt is SummaryFormat.json:
        typer.echo(json.dumps(info, sort_keys=True))
    else:
        typer.echo(f"store: {info['url']}\nevents: {count}")


def _display_url(url: str) -> str:
    from gitaudit.sanitize import redact

    return str(redact(url))
