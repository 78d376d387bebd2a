"""`gitaudit ingest`: move spooled events into the store."""

from __future__ import annotations

import json

import typer

from gitaudit.cli.common import SummaryFormat, SummaryFormatOption, load_settings, open_store


def ingest_command(
    fmt: SummaryFormatOption = SummaryFormat.table,
) -> None:
    """Drain the spool into the store (readers do this by themselves first)."""
    store, report = open_store(load_settings(), writer=True)
    store.close()
    assert report is not None  # noqa: S101 - open_store(writer=True) always ingests
    summary = {
        "ingested": report.ingested,
        "duplicates": report.duplicates,
        "rejected": report.rejected,
        "segments": report.segments,
        "rejected_files": [str(path) for path in report.rejected_files],
    }
    if fmt is SummaryFormat.json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        typer.echo(
            f"ingested {report.ingested} event(s) from {report.segments} segment(s); "
            f"{report.duplicates} already stored, {report.rejected} rejected"
        )
