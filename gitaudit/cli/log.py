"""`gitaudit log`: search the audit trail.

The filter options are declared once here (:class:`Filters`, :func:`event_filter`)
and shared with `tail`, `stats`, `trace` and `claude usage`. Output streams from
the store's cursor to stdout in every format; the table on a terminal shows the
newest :data:`TTY_LIMIT` events unless ``--limit`` or ``--all`` says otherwise.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gitaudit.catalog import OPERATIONS, OUTCOMES, SEVERITIES, SOURCES
from gitaudit.cli.common import OutputFormat, load_settings, open_store, parse_when
from gitaudit.cli.output import TableWriter, render
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
    str | None, typer.Option("--correlation", "--correlation-id", metavar="ID",
                             help="Everything one job, command or Claude Code session did.")
]
SeverityOption = Annotated[
    str | None, typer.Option(metavar="low|medium|high", help="Only events of this severity.")
]
SourceOption = Annotated[
    str | None,
    typer.Option(metavar="SOURCE", help="Capture path: wrapper, hook, trace2, claude_code, ..."),
]
HostOption = Annotated[
    str | None, typer.Option(metavar="HOST", help="Host the event happened on (glob allowed).")
]
BranchOption = Annotated[
    str | None, typer.Option(metavar="BRANCH", help="Repository branch (glob allowed).")
]
AgentOption = Annotated[
    str | None,
    typer.Option(metavar="AGENT", help="Done by this AI agent (actor.agent.tool): claude-code."),
]
SessionOption = Annotated[
    str | None,
    typer.Option(metavar="ID",
                 help="A Claude Code session: its prompts, tool calls and the git it ran."),
]
GrepOption = Annotated[
    str | None,
    typer.Option(metavar="TEXT",
                 help="Full-text search: events holding every word of TEXT (argv, messages, "
                      "errors, paths, refs, details)."),
]
GrepSyntaxOption = Annotated[
    bool,
    typer.Option("--grep-syntax",
                 help="Pass --grep TEXT through as the store's own query syntax (SQLite FTS5 "
                      "or PostgreSQL to_tsquery)."),
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]
NoIngestOption = Annotated[
    bool, typer.Option("--no-ingest", help="Do not drain the spool into the store first.")
]


# The largest row count a store takes (SQLite and PostgreSQL BIGINT).
MAX_LIMIT = 2**63 - 1
_GLOB_CHARS = frozenset("*?[")
# The table on a terminal without --limit/--all: the newest this many events.
TTY_LIMIT = 50
# Sources a reader accepts: the catalog's, and Claude Code's hook and OTLP events.
READER_SOURCES = tuple(dict.fromkeys((*SOURCES, "claude_code")))
# AI agents named in actor.agent.tool.
AGENTS = ("claude-code",)
_NOUNS = {"--op": ("operation", "operations"), "--severity": ("severity", "severities")}


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_when(value)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc.message}", exc.hint) from None


def check_values(
    option: str, values: list[str] | None, valid: tuple[str, ...], *, globs: str | None = None
) -> tuple[str, ...]:
    """``values`` of ``option``, each one of ``valid`` (or, with ``globs`` naming an example,
    a glob matching one). Raises UsageError naming the valid values (and the closest)."""
    for value in values or ():
        if value in valid or (
            globs and not _GLOB_CHARS.isdisjoint(value) and fnmatch.filter(valid, value)
        ):
            continue
        close = difflib.get_close_matches(value, valid, n=1)
        guess = f"did you mean {close[0]}? " if close else ""
        noun, nouns = _NOUNS.get(option, (option.lstrip("-"), option.lstrip("-") + "s"))
        allowed = f" (globs like {globs} allowed)" if globs else ""
        raise UsageError(
            f"{option}: unknown {noun} {value!r}", f"{guess}{nouns}: {', '.join(valid)}{allowed}"
        )
    return tuple(values or ())


def check_operations(patterns: list[str] | None) -> tuple[str, ...]:
    """``--op`` values, each an operation of the catalog or a glob matching one.

    Raises UsageError naming the valid operations (and the closest for a near miss).
    """
    return check_values("--op", patterns, OPERATIONS, globs="'git.*'")


def _one(option: str, value: str | None, valid: tuple[str, ...], globs: str | None = None
         ) -> str | None:
    return None if value is None else check_values(option, [value], valid, globs=globs)[0]


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
    severity: str | None = None,
    source: str | None = None,
    host: str | None = None,
    branch: str | None = None,
    agent: str | None = None,
    session: str | None = None,
    grep: str | None = None,
    grep_syntax: bool = False,
    after: str | None = None,
    before: str | None = None,
) -> EventFilter:
    """The store filter of the shared reader options; raises UsageError for a value
    out of range or unknown, and for ``--since`` later than ``--until``."""
    from gitaudit.store import EventFilter

    if outcome is not None and outcome not in OUTCOMES:
        raise UsageError(f"--outcome: unknown outcome {outcome!r}", f"use {' or '.join(OUTCOMES)}")
    if grep_syntax and grep is None:
        raise UsageError("--grep-syntax needs --grep TEXT", "add --grep 'your query'")
    if grep is not None and not grep_syntax:
        from gitaudit.store.search import phrases

        phrases(grep)  # a text without any word is an error now, not an empty result
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
        severity=_one("--severity", severity, SEVERITIES),
        source=_one("--source", source, READER_SOURCES),
        host=host,
        branch=branch,
        agent=_one("--agent", agent, AGENTS, globs="'*'"),
        session=session,
        grep=grep,
        grep_raw=grep_syntax,
        after_id=after,
        before_id=before,
    )


def log_command(
    since: SinceOption = None,
    until: UntilOption = None,
    op: OpOption = None,
    actor: ActorOption = None,
    repo: RepoOption = None,
    outcome: OutcomeOption = None,
    correlation_id: CorrelationOption = None,
    severity: SeverityOption = None,
    source: SourceOption = None,
    host: HostOption = None,
    branch: BranchOption = None,
    agent: AgentOption = None,
    session: SessionOption = None,
    grep: GrepOption = None,
    grep_syntax: GrepSyntaxOption = False,
    limit: Annotated[
        int | None,
        typer.Option(min=1, metavar="N",
                     help=f"Newest N events (shown oldest first); with --after, the next N. "
                          f"Default on a terminal: {TTY_LIMIT} in the table."),
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Every matching event (no default limit on a terminal).")
    ] = False,
    after: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Only events after event ID in time order (next page)."),
    ] = None,
    before: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Only events before event ID (the page before)."),
    ] = None,
    count: Annotated[
        bool, typer.Option("--count", help="Print only the number of matching events.")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
    no_ingest: NoIngestOption = False,
) -> None:
    """Show audit events, oldest first, filtered; streamed, whatever their number."""
    if show_all and limit is not None:
        raise UsageError("--all and --limit contradict each other", "give one of them")
    paged = limit is None and not show_all and not count and fmt is OutputFormat.table and (
        sys.stdout.isatty())
    flt = event_filter(
        since=since, until=until, op=op, actor=actor, repo=repo, outcome=outcome,
        correlation_id=correlation_id, limit=TTY_LIMIT if paged else limit, severity=severity,
        source=source, host=host, branch=branch, agent=agent, session=session, grep=grep,
        grep_syntax=grep_syntax, after=after, before=before,
    )  # fmt: skip
    store, _ = open_store(load_settings(), ingest_first=not no_ingest)
    try:
        with store:
            if count:
                typer.echo(store.count_matching(flt))
            elif fmt is OutputFormat.table:
                _table(store.iter_query(flt), flt, paged=paged)
            elif fmt is OutputFormat.jsonl:  # the stored canonical JSON, neither parsed nor
                # re-encoded (a reader that must change what it shows goes through iter_query)
                sys.stdout.writelines(body + "\n" for body in store.iter_bodies(flt))
            else:
                render(store.iter_query(flt), fmt)
    except BrokenPipeError:  # `gitaudit log | head`: the reader is gone
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _table(events: Iterator[dict[str, Any]], flt: EventFilter, *, paged: bool) -> None:
    table = TableWriter(sys.stdout, claude=flt.operations == ("claude.request",))
    first_id = None
    for event in events:
        first_id = first_id or event.get("id")
        table.write(event)
    note = ""
    if paged and table.count == flt.limit:
        note = (f", the newest {flt.limit} (--all: every one)\n"
                f"earlier ones: gitaudit log --before {first_id}")  # fmt: skip
    table.close(note)
