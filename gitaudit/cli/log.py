"""`gitaudit log`: search the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from gitaudit.cli.common import OutputFormat, load_settings, open_store, parse_when
from gitaudit.cli.output import render


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_when(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def log_command(
    since: Annotated[
        str | None, typer.Option(help="Only events at or after this time: 2h, 7d, 2026-11-01, ...")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only events before this time.")] = None,
    op: Annotated[
        list[str] | None,
        typer.Option(
            "--op", help="Operation or glob, repeatable: git.push, 'git.*', 'conflict.*'."
        ),
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="OS user, git name or git email (glob allowed).")
    ] = None,
    repo: Annotated[
        str | None, typer.Option(help="Repository name or path (glob allowed).")
    ] = None,
    outcome: Annotated[str | None, typer.Option(help="success or failure.")] = None,
    correlation_id: Annotated[
        str | None, typer.Option("--correlation-id", help="Everything one job or command did.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Newest N events (shown oldest first).")
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
    no_ingest: Annotated[
        bool, typer.Option("--no-ingest", help="Do not drain the spool into the store first.")
    ] = False,
) -> None:
    """Show audit events, oldest first, filtered."""
    from gitaudit.store import EventFilter

    if outcome is not None and outcome not in {"success", "failure"}:
        raise typer.BadParameter("must be success or failure", param_hint="--outcome")
    flt = EventFilter(
        since=_when(since),
        until=_when(until),
        operations=tuple(op or ()),
        actor=actor,
        repo=repo,
        outcome=outcome,
        correlation_id=correlation_id,
        limit=limit,
    )
    store, _ = open_store(load_settings(), ingest_first=not no_ingest)
    with store:
        events = store.query(flt)
    render(events, fmt)
