"""`gitaudit log`: search the audit trail.

The filter options are declared once here and shared with `gitaudit tail`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from gitaudit.cli.common import OutputFormat, load_settings, open_store, parse_when
from gitaudit.cli.output import render

if TYPE_CHECKING:
    from gitaudit.store import EventFilter

SinceOption = Annotated[
    str | None, typer.Option(help="Only events at or after this time: 2h, 7d, 2026-11-01, ...")
]
UntilOption = Annotated[str | None, typer.Option(help="Only events before this time.")]
OpOption = Annotated[
    list[str] | None,
    typer.Option("--op", help="Operation or glob, repeatable: git.push, 'git.*', 'conflict.*'."),
]
ActorOption = Annotated[
    str | None, typer.Option(help="OS user, git name or git email (glob allowed).")
]
RepoOption = Annotated[str | None, typer.Option(help="Repository name or path (glob allowed).")]
OutcomeOption = Annotated[str | None, typer.Option(help="success or failure.")]
CorrelationOption = Annotated[
    str | None, typer.Option("--correlation-id", help="Everything one job or command did.")
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]
NoIngestOption = Annotated[
    bool, typer.Option("--no-ingest", help="Do not drain the spool into the store first.")
]


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_when(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def event_filter(
    *,
    since: str | None = None,
    until: str | None = None,
    op: list[str] | None = None,
    actor: str | None = None,
    repo: str | None = None,
    outcome: str | None = None,
    correlation_id: str | None = None,
    limit: int | None = None,
) -> EventFilter:
    """The store filter of the shared reader options; raises typer.BadParameter."""
    from gitaudit.store import EventFilter

    if outcome is not None and outcome not in {"success", "failure"}:
        raise typer.BadParameter("must be success or failure", param_hint="--outcome")
    return EventFilter(
        since=_when(since),
        until=_when(until),
        operations=tuple(op or ()),
        actor=actor,
        repo=repo,
        outcome=outcome,
        correlation_id=correlation_id,
        limit=limit,
    )


def log_command(
    since: SinceOption = None,
    until: UntilOption = None,
    op: OpOption = None,
    actor: ActorOption = None,
    repo: RepoOption = None,
    outcome: OutcomeOption = None,
    correlation_id: CorrelationOption = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Newest N events (shown oldest first).")
    ] = None,
    fmt: FormatOption = OutputFormat.table,
    no_ingest: NoIngestOption = False,
) -> None:
    """Show audit events, oldest first, filtered."""
    flt = event_filter(
        since=since,
        until=until,
        op=op,
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
