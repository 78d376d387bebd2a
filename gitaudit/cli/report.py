"""`gitaudit report KIND`: a report for auditors (usage, soc2, security, gdpr) as HTML,
Markdown or JSON, on stdout or in a file.

The filters are `gitaudit log`'s (:func:`gitaudit.cli.log.event_filter`); the kind is
looked up in :data:`gitaudit.report.kinds.KINDS` and builds a
:class:`~gitaudit.report.model.Report` from one snapshot of the store; a renderer
writes it. ``-o FILE`` is written to a temporary file beside FILE and renamed onto it
once complete, so a failed run never leaves half a report (nor replaces a previous
one). The format follows FILE's extension unless ``--format`` says otherwise.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from gitaudit.cli.common import load_settings, open_store, progress_bar
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
from gitaudit.errors import UsageError
from gitaudit.report.kinds import MODULES, builder, check_kind

if TYPE_CHECKING:
    from gitaudit.report.model import Report


class ReportFormat(StrEnum):
    """Formats `gitaudit report` writes."""

    html = "html"
    md = "md"
    json = "json"


# -o FILE's extension -> the format written when --format is not given
EXTENSIONS = {".html": ReportFormat.html, ".htm": ReportFormat.html, ".md": ReportFormat.md,
              ".markdown": ReportFormat.md, ".json": ReportFormat.json}  # fmt: skip
SUBJECT_KINDS = ("gdpr",)


def format_for(fmt: ReportFormat | None, output: Path | None) -> ReportFormat:
    """``fmt``, else the one ``output``'s extension names, else Markdown."""
    if fmt is not None:
        return fmt
    suffix = output.suffix.lower() if output is not None else ""
    return EXTENSIONS.get(suffix, ReportFormat.md)


def render(report: Report, fmt: ReportFormat, out: TextIO) -> None:
    """Write ``report`` in ``fmt`` to ``out``."""
    if fmt is ReportFormat.html:
        from gitaudit.report.render_html import write_html

        write_html(report, out)
    elif fmt is ReportFormat.json:
        from gitaudit.report.render_json import write_json

        write_json(report, out)
    else:
        from gitaudit.report.render_md import write_md

        write_md(report, out)


class Output:
    """Where the report goes: stdout, or FILE through a temporary file renamed onto it by
    :meth:`commit` (mode 0600: a report is audit evidence); :meth:`discard` removes it."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.temporary: str | None = None
        self.stream: TextIO = sys.stdout
        if path is None:
            return
        if path.is_dir():
            raise UsageError(f"-o {path}: is a directory", "name a file, e.g. -o report.html")
        try:
            fd, self.temporary = tempfile.mkstemp(
                dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # fmt: skip
        except OSError as exc:
            raise _cannot_write(path, exc) from None
        self.stream = os.fdopen(fd, "w", encoding="utf-8")

    def commit(self) -> None:
        """The report is complete: put it in place (stdout: flush it)."""
        if self.path is None or self.temporary is None:
            self.stream.flush()
            return
        try:
            self.stream.flush()
            os.fsync(self.stream.fileno())
            self.stream.close()
            os.replace(self.temporary, self.path)
        except OSError as exc:
            self.discard()
            raise _cannot_write(self.path, exc) from None
        self.temporary = None

    def discard(self) -> None:
        """Remove the unfinished temporary file, if any."""
        if self.temporary is None:
            return
        self.stream.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temporary)
        self.temporary = None


def _cannot_write(path: Path, exc: OSError) -> UsageError:
    return UsageError(
        f"cannot write the report to {path}: {exc.strerror or exc}",
        "give -o a file in an existing directory you can write to "
        "(or leave -o out to print the report)",
    )


@contextlib.contextmanager
def _progress(kind: str, count: Callable[[], int]) -> Iterator[Callable[[int], None]]:
    """``progress(events_read)`` for a kind: a bar on a terminal (the total counted then),
    nothing otherwise."""
    if not sys.stderr.isatty():
        yield lambda done: None
        return
    total = count()
    with progress_bar(f"{kind} report") as update:
        # soc2 also counts the records it verifies: the bar stops at its end
        yield lambda done: update(min(done, total), total)


def report_command(
    kind: Annotated[
        str,
        typer.Argument(metavar="KIND", help=f"Which report: {', '.join(MODULES)}.",
                       show_default=False),
    ],
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
    subject: Annotated[
        str | None,
        typer.Option(metavar="EMAIL|USER", help="gdpr: the data subject whose events to export."),
    ] = None,
    fmt: Annotated[
        ReportFormat | None,
        typer.Option("--format", help="html, md or json. Default: from -o FILE's extension "
                                      "(.html, .md, .json), else md.", show_default=False),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="FILE", dir_okay=False,
                     help="Write the report to FILE (complete or not at all) instead of stdout."),
    ] = None,
    clone_threshold: Annotated[
        int,
        typer.Option(min=1, metavar="N", help="security: flag an actor who cloned N or more "
                                              "distinct repositories in one UTC day."),
    ] = 10,
    verify: Annotated[
        bool,
        typer.Option("--verify/--no-verify", help="soc2: recompute the hash chains of the "
                                                  "period (most of the report's time)."),
    ] = True,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, metavar="N",
                     help="soc2, security: N worker processes beside the report's own (soc2 "
                     "verifies, security reads the off-hours activity in them). Default: one "
                     "per CPU (at most 4) for a period of 50,000 events or more; 1: none.",
                     show_default=False),
    ] = None,
    no_ingest: NoIngestOption = False,
) -> None:
    """Write a report for auditors over the events `gitaudit log` would show."""
    check_kind(kind)
    if subject is not None and kind not in SUBJECT_KINDS:
        raise UsageError(f"--subject is for the {' and '.join(SUBJECT_KINDS)} report only",
                         f"leave --subject out of the {kind} report")  # fmt: skip
    if subject is None and kind in SUBJECT_KINDS:
        raise UsageError(f"the {kind} report needs --subject EMAIL|USER",
                         f"e.g. gitaudit report {kind} --subject alice@example.com")  # fmt: skip
    flt = event_filter(
        since=since, until=until, op=op, actor=actor, repo=repo, outcome=outcome,
        correlation_id=correlation_id, severity=severity, source=source, host=host,
        branch=branch, agent=agent, session=session, grep=grep, grep_syntax=grep_syntax,
    )  # fmt: skip
    build = builder(kind)
    settings = load_settings()
    from gitaudit.report.options import ReportOptions

    options = ReportOptions.from_settings(settings, since=flt.since, until=flt.until,
                                          subject=subject, clone_threshold=clone_threshold,
                                          verify=verify, jobs=jobs)  # fmt: skip
    chosen = format_for(fmt, output)
    target = Output(output)
    gone = False
    try:
        store, _ = open_store(settings, ingest_first=not no_ingest)
        with store, store.reading(flt) as conn, _progress(
            kind, lambda: store.count_matching(flt)
        ) as progress:
            report = build(conn, flt, options, progress)
            try:
                render(report, chosen, target.stream)
                target.commit()
            except BrokenPipeError:  # `gitaudit report usage | head`: the reader is gone
                gone = True
    finally:
        target.discard()
    if gone:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    if output is not None and sys.stderr.isatty():
        print(f"gitaudit: wrote the {kind} report ({chosen.value}) to {output}", file=sys.stderr)
