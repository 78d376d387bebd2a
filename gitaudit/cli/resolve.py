"""`gitaudit resolve`: Claude-assisted conflict resolution, validated and audited.

Thin: options in, :class:`gitaudit.claude.resolve.Resolver` does the work,
the report out as lines or JSON.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from gitaudit.cli.common import SummaryFormat, SummaryFormatOption, load_settings


def _confirm(path: str, diff: str) -> bool:
    typer.echo(diff or f"(no change against ours for {path})")
    return typer.confirm(f"Write and stage the proposal for {path}?", default=False)


def resolve_command(
    paths: Annotated[
        list[str] | None, typer.Argument(metavar="FILE",
                                         help="Conflicted files to resolve (default: all).")
    ] = None,
    model: Annotated[
        str | None, typer.Option(metavar="MODEL",
                                 help="Claude model (default: the claude_model setting).")
    ] = None,
    check: Annotated[
        str | None,
        typer.Option(metavar="COMMAND",
                     help="Shell command run in the working tree with the proposal in place; "
                          "a non-zero exit rejects it (the file is put back)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Ask and check, but write nothing.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Accept every proposal that passes the checks.")
    ] = False,
    fmt: SummaryFormatOption = SummaryFormat.table,
) -> None:
    """Let Claude propose a resolution of each conflicted file; check, confirm and stage it."""
    from gitaudit.claude.resolve import Options, ResolveError, Resolver

    as_json = fmt is SummaryFormat.json
    options = Options(
        paths=list(paths or []), model=model, check=check, dry_run=dry_run, yes=yes,
        interactive=sys.stdin.isatty() and sys.stdout.isatty() and not as_json,
    )

    def say(line: str) -> None:
        typer.echo(line, err=as_json)

    resolver = Resolver(load_settings(), options, cwd=os.getcwd(), environ=dict(os.environ),
                        confirm=_confirm, say=say)
    try:
        report = resolver.run()
    except ResolveError as exc:
        if as_json and exc.report is not None:
            typer.echo(json.dumps(exc.report.as_dict(), indent=2))
        raise
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        if dry_run:
            for outcome in report.outcomes:
                if outcome.diff:
                    typer.echo(outcome.diff, nl=False)
        done = sum(1 for o in report.outcomes if o.status == "resolved")
        if done:
            typer.echo(f"{done} file(s) resolved and staged: review with `git diff --cached`, "
                       f"then `git {report.stopped_in} --continue`")
    raise typer.Exit(report.exit_code)
