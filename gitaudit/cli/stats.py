"""`gitaudit stats`: count, failure rate and duration p50/p95 per operation, actor, repo,
host, day or hour, over the events `gitaudit log` would show with the same filters.

The database does the aggregation (:mod:`gitaudit.store.stats`); nothing is held per event.
"""

from __future__ import annotations

import csv
import json
import sys
from enum import StrEnum
from typing import Annotated

import typer

from gitaudit.cli.common import load_settings, open_store
from gitaudit.cli.log import (
    ActorOption,
    AgentOption,
    BranchOption,
    CorrelationOption,
    GrepOption,
    GrepSyntaxOption,
    HostOption,
    NoIngestOption,
    OpOption,
    OutcomeOption,
    RepoOption,
    SessionOption,
    SeverityOption,
    SinceOption,
    SourceOption,
    UntilOption,
    event_filter,
)
from gitaudit.cli.output import fit


class StatsBy(StrEnum):
    """What `gitaudit stats` groups by."""

    operation = "operation"
    actor = "actor"
    repo = "repo"
    host = "host"
    day = "day"
    hour = "hour"


class StatsFormat(StrEnum):
    """Formats `gitaudit stats` writes."""

    table = "table"
    json = "json"
    csv = "csv"


COLUMNS = ("key", "count", "failures", "failure_rate", "p50_ms", "p95_ms")


def stats_command(
    by: Annotated[StatsBy, typer.Option("--by", help="Group per this.")] = StatsBy.operation,
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
    fmt: Annotated[StatsFormat, typer.Option("--format", help="Output format.")] = (
        StatsFormat.table
    ),
    no_ingest: NoIngestOption = False,
) -> None:
    """Count, failure rate and duration p50/p95 of events, per group."""
    from gitaudit.store.stats import group_stats

    flt = event_filter(
        since=since, until=until, op=op, actor=actor, repo=repo, outcome=outcome,
        correlation_id=correlation_id, severity=severity, source=source, host=host,
        branch=branch, agent=agent, session=session, grep=grep, grep_syntax=grep_syntax,
    )  # fmt: skip
    store, _ = open_store(load_settings(), ingest_first=not no_ingest)
    with store, store.reading(flt) as conn:
        rows = [row.as_dict() for row in group_stats(conn, flt, by.value)]
    if fmt is StatsFormat.json:
        total = sum(row["count"] for row in rows)
        failures = sum(row["failures"] for row in rows)
        payload = {"by": by.value, "rows": rows, "total": {"count": total, "failures": failures}}
        typer.echo(json.dumps(payload, indent=2))
    elif fmt is StatsFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(COLUMNS)
        writer.writerows([row[name] for name in COLUMNS] for row in rows)
    else:
        _table(rows, by.value)


def _table(rows: list[dict[str, object]], by: str) -> None:
    width = max([len(by), *(len(str(row["key"])) for row in rows)])
    width = min(width, 30)  # the row stays within 80 columns
    print(f"{by:<{width}} {'count':>9} {'failed':>7} {'fail %':>7} {'p50 ms':>9} {'p95 ms':>9}")
    for row in rows:
        key = "(none)" if row["key"] is None else str(row["key"])
        rate = float(str(row["failure_rate"])) * 100
        p50 = "-" if row["p50_ms"] is None else f"{row['p50_ms']:.1f}"
        p95 = "-" if row["p95_ms"] is None else f"{row['p95_ms']:.1f}"
        print(f"{fit(key, width):<{width}} {row['count']:>9} {row['failures']:>7} "
              f"{rate:>6.1f}% {p50:>9} {p95:>9}")
    total = sum(int(str(row["count"])) for row in rows)
    print(f"{len(rows)} group(s), {total} event(s)")
