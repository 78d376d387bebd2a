"""Helpers shared by the reader commands: settings, time parsing, progress, the store."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from gitaudit import config
from gitaudit.config import Settings
from gitaudit.errors import UsageError

if TYPE_CHECKING:
    from gitaudit.store import IngestReport, Store

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


class OutputFormat(StrEnum):
    """Formats every reader command offers."""

    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


class SummaryFormat(StrEnum):
    """Formats of the commands that print a summary rather than events."""

    table = "table"
    json = "json"


SummaryFormatOption = Annotated[
    SummaryFormat, typer.Option("--format", help="table (text for people) or json.")
]


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """Parse ``2h``/``7d``/``30m`` (ago) or an ISO 8601 date/time (naive means UTC).

    Raises UsageError with the accepted forms, or when the time is out of range
    (a duration reaching before year 1).
    """
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text)
    if match:
        try:
            return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])
        except OverflowError:
            raise UsageError(
                f"time {text!r} is out of range: it reaches before the year 1",
                "use a shorter duration, or leave the option out for no bound",
            ) from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"cannot read time {text!r}",
            "use a duration ago like 30m, 2h, 7d, 1w "
            "or an ISO 8601 time like 2026-11-01 or 2026-11-01T12:00:00Z",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise UsageError(f"time {text!r} is out of range", "use a time after the year 1") from None


def load_settings() -> Settings:
    """Resolve settings; raises ConfigError with the key and the fix."""
    return config.load()


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback drawing a bar on a TTY, silent otherwise."""
    if not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def open_store(
    settings: Settings, *, ingest_first: bool = True, writer: bool = False
) -> tuple[Store, IngestReport | None]:
    """Open the store for a reader and, in embedded mode, drain the spool into it first.

    A reader creates nothing: no store and no spool means a StoreError. Ingesting is
    a write, so a spool waiting to be ingested creates the store when it is missing.
    A store this user cannot write (an archived copy) is read as it is: a spool
    waiting then is left for later, with a warning. ``writer`` (``gitaudit ingest``):
    the store is opened, and created, as a writer opens it.
    """
    from gitaudit.store import Store

    pending = 0
    if ingest_first:  # the spool module is imported only to look at the spool
        from gitaudit.store.pending import pending_segments

        pending = pending_segments(settings)
    store = Store.from_settings(settings, reader=not writer, create=writer or pending > 0)
    report = None
    if store.read_only and pending:
        print(
            f"gitaudit: warning: {pending} spool segment(s) not ingested: the store "
            f"{store.url} is read-only for this user; they stay in the spool",
            file=sys.stderr,
        )
    # a reader with nothing waiting skips the ingest path (and its imports); `ingest` runs it
    if ingest_first and (pending or writer) and not store.read_only:
        from gitaudit.store import ingest

        try:
            with progress_bar("ingesting spool") as progress:
                report = ingest(settings, store, progress)
        except BaseException:
            store.close()
            raise
        warn_ingest_problems(report)
    return store, report


def warn_ingest_problems(report: IngestReport) -> None:
    """Tell the operator about spooled records that were quarantined."""
    if report.rejected:
        kept = ", ".join(str(path) for path in report.rejected_files)
        print(
            f"gitaudit: warning: {report.rejected} spooled record(s) could not be taken; each is "
            "stored as an audit.rejected event in its place (`gitaudit log --op "
            f"audit.rejected`){f'; raw lines kept in {kept}' if kept else ''}",
            file=sys.stderr,
        )
        for problem in report.problems[:10]:
            print(f"  {problem}", file=sys.stderr)
