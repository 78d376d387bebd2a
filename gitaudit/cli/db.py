"""`gitaudit db`: schema management, partitions, least-privilege roles."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from gitaudit.cli.common import SummaryFormat, SummaryFormatOption, load_settings
from gitaudit.config import Settings

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Store URL to use instead of GITAUDIT_DATABASE_URL (e.g. as the table owner). "
        "Never put a password in it: every user sees command lines; use "
        "GITAUDIT_DATABASE_PASSWORD_FILE, PGPASSFILE or ?service=NAME.",
    ),
]

_warned = False


def _settings(url: str | None) -> Settings:
    """The settings, with the store URL of ``--database-url`` if given (warned about once
    when it carries a password)."""
    settings = load_settings()
    if url is None:
        return settings
    _warn_password(url)
    return Settings({**settings.as_dict(), "database_url": url})


def _warn_password(url: str) -> None:
    global _warned  # noqa: PLW0603 - one warning per process
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        return  # reported (password hidden) when the store is opened
    if password is not None and not _warned:
        _warned = True
        print(
            "gitaudit: warning: --database-url carries a password, which every user of this "
            "machine can read in the process list; put it in a file named by "
            "GITAUDIT_DATABASE_PASSWORD_FILE (mode 0600), in PGPASSFILE, or use a libpq "
            "service (postgresql+psycopg:///?service=NAME)",
            file=sys.stderr,
        )


def upgrade_command(database_url: DatabaseUrlOption = None) -> None:
    """Apply every pending Alembic revision to the configured store; create partitions ahead."""
    from gitaudit.store import migrate
    from gitaudit.store.engine import database_url as resolved_url

    settings = _settings(database_url)
    created = migrate(resolved_url(settings))
    typer.echo(f"store schema is up to date: {_display_url(settings.effective_database_url)}")
    if created:
        typer.echo(f"partitions created: {', '.join(created)}")


def status_command(
    fmt: SummaryFormatOption = SummaryFormat.table,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show which store is configured, how many events it holds, and its partitions."""
    from gitaudit.store import Store

    settings = _settings(database_url)
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


def init_roles_command(
    print_sql: Annotated[
        bool,
        typer.Option("--print-sql", help="Print the idempotent SQL for a DBA; change nothing."),
    ] = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Create the PostgreSQL roles gitaudit_writer, gitaudit_reader, gitaudit_retention."""
    from gitaudit.store.roles import roles_sql

    if print_sql:
        typer.echo("-- gitaudit least-privilege roles (run as the owner of the store's tables)")
        typer.echo("\n".join(roles_sql()))
        return
    from gitaudit.store import Store

    settings = _settings(database_url)
    with Store.from_settings(settings, create=False) as store:
        store.init_roles()
    typer.echo(
        "roles gitaudit_writer, gitaudit_reader, gitaudit_retention are in place "
        f"on {_display_url(settings.effective_database_url)}; grant them to login users "
        "(see README, 'Roles')"
    )


def _display_url(url: str) -> str:
    from gitaudit.sanitize import redact

    return str(redact(url))
