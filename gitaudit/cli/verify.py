"""`gitaudit verify`: recompute every hash chain and name the first bad record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from gitaudit.cli.common import (
    SummaryFormat,
    SummaryFormatOption,
    load_settings,
    open_store,
    progress_bar,
)


def _chain_dict(chain: Any) -> dict[str, Any]:
    problem = chain.problem
    return {
        "chain_id": chain.chain_id,
        "records": chain.records,
        "first_seq": chain.first_seq,
        "last_seq": chain.last_seq,
        "rejected": getattr(chain, "rejected", 0),
        "ok": problem is None,
        "problem": None
        if problem is None
        else {
            "kind": problem.kind,
            "seq": problem.seq,
            "event_id": problem.event_id,
            "message": problem.message,
        },
    }


def _archive_dicts(reports: list[Any]) -> list[dict[str, Any]]:
    """``verify --archive``: each chain's archive as :func:`_chain_dict` shows a chain."""
    shown = []
    for report in reports:
        entry = _chain_dict(report)
        del entry["rejected"]
        shown.append({**entry, "segments": report.segments})
    return shown


def _echo_archive(archive: list[dict[str, Any]], directory: Path) -> None:
    for chain in archive:
        status = "ok" if chain["ok"] else "FAILED"
        seqs = f", seq {chain['first_seq']}..{chain['last_seq']}" if chain["records"] else ""
        typer.echo(
            f"archive {chain['chain_id']}: {chain['segments']} segment(s), "
            f"{chain['records']} record(s){seqs}: {status}"
        )
    if not archive:
        typer.echo(f"archive {directory}: no segments")


def verify_command(
    fmt: SummaryFormatOption = SummaryFormat.table,
    no_ingest: Annotated[
        bool, typer.Option("--no-ingest", help="Do not drain the spool into the store first.")
    ] = False,
    archive_dir: Annotated[
        Path | None,
        typer.Option(
            "--archive",
            metavar="DIR",
            help="Also verify retention's archived segments in DIR against the store.",
        ),
    ] = None,
) -> None:
    """Verify the hash chains; exit 1 naming the first bad (modified, missing, ...) record."""
    store, _ = open_store(load_settings(), ingest_first=not no_ingest)
    with store, progress_bar("verifying") as progress:
        report = store.verify(progress)
        archived = store.verify_archive(archive_dir) if archive_dir is not None else None
    chains = [_chain_dict(chain) for chain in report.chains]
    archive = _archive_dicts(archived) if archived is not None else None
    problems = [chain.problem for chain in report.chains if chain.problem]
    problems += [chain.problem for chain in archived or () if chain.problem]
    if fmt is SummaryFormat.json:
        summary: dict[str, Any] = {
            "ok": not problems, "rejected": report.rejected, "chains": chains
        }  # fmt: skip
        if archive is not None:
            summary["archive"] = archive
        typer.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        for chain in chains:
            status = "ok" if chain["ok"] else "FAILED"
            quarantined = f", {chain['rejected']} audit.rejected" if chain["rejected"] else ""
            seqs = (
                f", seq {chain['first_seq']}..{chain['last_seq']}"
                if chain["first_seq"] is not None
                else ""
            )
            typer.echo(
                f"{chain['chain_id']}: {chain['records']} record(s){quarantined}{seqs}: {status}"
            )
        if not chains:
            typer.echo("no records yet")
        if report.rejected:
            typer.echo(
                f"{report.rejected} record(s) could not be taken and are stored as "
                "audit.rejected events in their place; see them with "
                "`gitaudit log --op audit.rejected`"
            )
        if archive is not None and archive_dir is not None:
            _echo_archive(archive, archive_dir)
    problem = problems[0] if problems else None
    if problem is not None:
        where = f" at seq {problem.seq}" if problem.seq is not None else ""
        event = f" (event {problem.event_id})" if problem.event_id else ""
        typer.echo(
            f"gitaudit: verify failed: {problem.kind} record in chain {problem.chain_id}"
            f"{where}{event}: {problem.message}",
            err=True,
        )
        typer.echo(
            "  hint: the store was changed outside gitaudit; keep a copy of it for forensics "
            "and compare with backups or forwarded copies",
            err=True,
        )
        raise typer.Exit(1)
