"""`gitaudit claude usage`: Claude requests, tokens and cost, summed per model, actor, repo or day.

Filters are `gitaudit log`'s own (same options, same query layer); rows stream
from the store into the totals (:mod:`gitaudit.claude.usage`).
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer

from gitaudit.cli.common import SummaryFormat, SummaryFormatOption, load_settings, open_store
from gitaudit.cli.log import (
    ActorOption,
    NoIngestOption,
    RepoOption,
    SinceOption,
    UntilOption,
    event_filter,
)

claude_app = typer.Typer(
    help="Claude API calls recorded by the audited client.", no_args_is_help=True
)


class GroupBy(StrEnum):
    """What `claude usage` sums per."""

    model = "model"
    actor = "actor"
    repo = "repo"
    day = "day"



COLUMNS = (  # (UsageRow field, table header)
    ("requests", "requests"),
    ("failures", "failed"),
    ("input_tokens", "input"),
    ("output_tokens", "output"),
    ("cache_creation_input_tokens", "cache write"),
    ("cache_read_input_tokens", "cache read"),
    ("cost_usd", "cost USD"),
    ("unpriced", "unpriced"),
)


@claude_app.command("usage")
def usage_command(
    since: SinceOption = None,
    until: UntilOption = None,
    actor: ActorOption = None,
    repo: RepoOption = None,
    by: Annotated[GroupBy, typer.Option("--by", help="Sum per model, actor, repo or day.")] = (
        GroupBy.model
    ),
    fmt: SummaryFormatOption = SummaryFormat.table,
    no_ingest: NoIngestOption = False,
) -> None:
    """Sum requests, tokens and estimated cost of recorded Claude calls."""
    from gitaudit.claude.usage import summarize

    flt = event_filter(since=since, until=until, op=["claude.request"], actor=actor, repo=repo)
    store, _ = open_store(load_settings(), ingest_first=not no_ingest)
    with store:
        rows, total = summarize(store.iter_query(flt), by.value)
    if fmt is SummaryFormat.json:
        payload = {
            "by": by.value,
            "rows": [row.as_dict() for row in rows],
            "total": total.as_dict(),
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(header_style="bold")
    table.add_column(by.value)
    for _, header in COLUMNS:
        table.add_column(header, justify="right")
    for row in [*rows, total]:
        values = row.as_dict()
        cells = [f"{values[name]:.4f}" if name == "cost_usd" else str(values[name])
                 for name, _ in COLUMNS]  # fmt: skip
        table.add_row(row.key, *cells, end_section=row is rows[-1] if rows else False)
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160).print(table)
