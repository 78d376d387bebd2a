"""`gitaudit log`: search the audit trail.

The filter options are declared once here and shared with `gitaudit tail`.
"""

from __future__ import annotations

import difflib
import fnmatch
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from gitaudit.catalog import OPERATIONS, OUTCOMES
from gitaudit.cli.common import OutputFormat, load_settings, open_store, parse_when
from gitaudit.cli.output import render
from gitaudit.errors import UsageError

if TYPE_CHECKING:
    from gitaudit.store import EventFilter

SinceOption = Annotated[
    str | None,
    typer.Option(metavar="TIME", help="Only events at or after this time: 2h, 7d, 2026-11-01, ..."),
]
UntilOption = Annotated[
    str | None, typer.Option(metavar="TIME", help="Only events before this time.")
]
OpOption = Annotated[
    list[str] | None,
    typer.Option("--op", metavar="OP",
                 help="Operation or glob, repeatable: git.push, 'git.*', 'conflict.*'."),
]
ActorOption = Annotated[
    str | None, typer.Option(metavar="ACTOR", help="OS user, git name or git email (glob allowed).")
]
RepoOption = Annotated[
    str | None, typer.Option(metavar="REPO", help="Repository name or path (glob allowed).")
]
OutcomeOption = Annotated[
    str | None, typer.Option(metavar="success|failure", help="Only successes or only failures.")
]
CorrelationOption = Annotated[
    str | None, typer.Option("--correlation-id", metavar="ID",
                             help="Everything one job or command did.")
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]
NoIngestOption = Annotated[
    bool, typer.Option("--no-ingest", help="Do not drain the spool into the store first.")
]


# The largest row count a store takes (SQLite and PostgreSQL BIGINT).
MAX_LIMIT = 2**63 - 1
_GLOB_CHARS = frozenset("*?[")


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_when(value)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc.message}", exc.hint) from None


def check_operations(patterns: list[str] | None) -> tuple[str, ...]:
    """``--op`` values, each an operation of the catalog or a glob matching one.

    Raises UsageError naming the valid operations (and the closest for a near miss).
    """
    for pattern in patterns or ():
        if _GLOB_CHARS.isdisjoint(pattern):
            if pattern in OPERATIONS:
                continue
        elif fnmatch.filter(OPERATIONS, pattern):
            continue
        close = difflib.get_close_matches(pattern, OPERATIONS, n=1)
        guess = f"did you mean {close[0]}? " if close else ""
        raise UsageError(
            f"--op: unknown operation {pattern!r}",
            f"{guess}operations: {', '.join(OPERATIONS)} (globs like 'git.*' allowed)",
        )
    return tuple(patterns or ())


def check_limit(limit: int | None) -> int | None:
    """``limit`` if a store can take it; raises UsageError above :data:`MAX_LIMIT`."""
    if limit is not None and limit > MAX_LIMIT:
        raise UsageError(
            f"--limit: {limit} is too large (at most {MAX_LIMIT})",
            "use a smaller number; `gitaudit log` without --limit shows every event",
        )
    return limit


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
    """The store filter of the shared reader options; raises UsageError for a value
    out of range or unknown, and for ``--since`` later than ``--until``."""
    from gitaudit.store import EventFilter

    if outcome is not None and outcome not in OUTCOMES:
        raise UsageError(f"--outcome: unknown outcome {outcome!r}", f"use {' or '.join(OUTCOMES)}")
    start, end = _when(since, "--since"), _when(until, "--until")
    if start is not None and end is not None and start >= end:
        raise UsageError(
            f"--since {since} ({start:%Y-%m-%dT%H:%M:%SZ}) is not before "
            f"--until {until} ({end:%Y-%m-%dT%H:%M:%SZ}): no event can match",
            "swap the two values; a duration counts back from now (--since 3h --until 2h)",
        )
    return EventFilter(
        since=start,
        until=end,
        operations=check_operations(op),
        actor=actor,
        repo=repo,
        outcome=outcome,
        correlation_id=correlation_id,
        limit=check_limit(limit),
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
        int | None, typer.Option(min=1, metavar="N", help="Newest N events (shown oldest first).")
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
