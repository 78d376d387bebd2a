"""`gitaudit verify`: recompute every hash chain and name the first bad record."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gitaudit.cli.common import (
    SummaryFormat,
    SummaryFormatOption,
    load_settings,
    open_store,
    progress_bar,
)
from gitaudit.errors import UsageError

if TYPE_CHECKING:
    from gitaudit.store.checkpoint_verify import CheckpointReport, LoadedNote
    from gitaudit.store.checkpoints import VerifierKey

DEFAULT_SKEW_S = 300.0


def _chain_dict(chain: Any) -> dict[str, Any]:
    problem = chain.problem
    return {
        "chain_id": chain.chain_id,
        "records": chain.records,
        "first_seq": chain.first_seq,
        "last_seq": chain.last_seq,
        "rejected": getattr(chain, "rejected", 0),
        "ok": problem is None,
        "problem": None if problem is None else problem.as_dict(),
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


def _load_key(path: Path | None) -> VerifierKey | None:
    if path is None:
        return None
    from gitaudit.errors import ConfigError
    from gitaudit.store.checkpoints import parse_verifier_key

    try:
        return parse_verifier_key(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"cannot read public key {path}: {getattr(exc, 'strerror', None) or exc}",
            "give the NAME.pub file `gitaudit keys generate` wrote",
        ) from exc
    except ConfigError as exc:
        raise UsageError(f"public key {path}: {exc.message}", exc.hint) from exc


def _checkpoint_dict(report: CheckpointReport, key: VerifierKey | None) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "checkpoints": report.checkpoints,
        "signatures_checked": key is not None,
        "key": None if key is None else key.encode(),
        "newest": report.newest,
        "unattested": report.unattested,
        "rekeyed": report.rekeyed,
        "findings": [
            {"kind": f.kind, "checkpoint": f.label, "chain_id": f.chain_id, "seq": f.seq,
             "message": f.message}
            for f in report.findings
        ],
    }  # fmt: skip


def _print_checkpoints(summary: dict[str, Any]) -> None:
    checked = (
        "signatures checked"
        if summary["signatures_checked"]
        else ("signatures NOT checked (give --key)")
    )
    status = "ok" if summary["ok"] else "FAILED"
    typer.echo(f"checkpoints: {summary['checkpoints']} read, {checked}: {status}")
    if summary["rekeyed"]:
        typer.echo(f"  {summary['rekeyed']} stated head(s) rewritten since by `gitaudit db "
                   "rekey` (accounted for by audit.store_rekeyed records)")  # fmt: skip
    for chain_id, count in sorted(summary["unattested"].items()):
        typer.echo(f"  {chain_id}: {count} record(s) after the newest checkpoint (unattested)")


def _load_notes(source: str) -> list[LoadedNote]:
    from gitaudit.store.checkpoint_verify import load_notes

    notes = load_notes(source)
    if not notes:
        raise UsageError(
            f"no checkpoints found in {source}",
            "give the directory GITAUDIT_CHECKPOINT_DIR names, or write one with "
            "`gitaudit checkpoint`",
        )
    return notes


def _print_table(
    chains: list[dict[str, Any]], rejected: int, checked: dict[str, Any] | None
) -> None:
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
    if rejected:
        typer.echo(
            f"{rejected} record(s) could not be taken and are stored as "
            "audit.rejected events in their place; see them with "
            "`gitaudit log --op audit.rejected`"
        )
    if checked is not None:
        _print_checkpoints(checked)


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
    checkpoints: Annotated[
        str | None,
        typer.Option(
            "--checkpoints",
            help="Also hold the store against these checkpoints: a directory of .note files, "
            "one file, or a sink export (JSON lines; file or http(s) URL).",
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Public key (NAME.pub) every checkpoint must be signed by."),
    ] = None,
    max_skew: Annotated[
        float,
        typer.Option(
            "--max-skew", min=0, help="Seconds of clock skew allowed between hosts (checkpoints)."
        ),
    ] = DEFAULT_SKEW_S,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", min=1, help="Verify chains (and long chains in parts) in N processes."
        ),
    ] = 1,
) -> None:
    """Verify the hash chains; exit 1 naming the first bad (modified, missing, ...) record."""
    if key is not None and checkpoints is None:
        raise UsageError("--key needs --checkpoints", "add --checkpoints DIR|FILE|URL")
    verifier = _load_key(key)
    notes = None if checkpoints is None else _load_notes(checkpoints)
    store, _ = open_store(load_settings(), ingest_first=not no_ingest)
    checked = None
    with store, progress_bar("verifying") as progress:
        report = store.verify(progress, jobs)
        archived = store.verify_archive(archive_dir) if archive_dir is not None else None
        if notes is not None:
            skew = timedelta(seconds=max_skew)
            checked = _checkpoint_dict(
                store.verify_checkpoints(notes, verifier, datetime.now(UTC), skew), verifier
            )
    chains = [_chain_dict(chain) for chain in report.chains]
    archive = _archive_dicts(archived) if archived is not None else None
    problems = [chain.problem for chain in report.chains if chain.problem]
    problems += [chain.problem for chain in archived or () if chain.problem]
    if fmt is SummaryFormat.json:
        summary: dict[str, Any] = {
            "ok": not problems and (checked is None or checked["ok"]),
            "rejected": report.rejected,
            "chains": chains,
        }
        if archive is not None:
            summary["archive"] = archive
        if checked is not None:
            summary["checkpoints"] = checked
        typer.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        _print_table(chains, report.rejected, checked)
        if archive is not None and archive_dir is not None:
            _echo_archive(archive, archive_dir)
    for finding in [] if checked is None else checked["findings"]:
        typer.echo(
            f"gitaudit: verify failed: {finding['kind']}: {finding['checkpoint']}: "
            f"{finding['message']}",
            err=True,
        )
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
    if checked is not None and not checked["ok"]:
        typer.echo(
            "  hint: the store no longer holds what the checkpoints state; keep a copy of it "
            "for forensics and restore from backups or forwarded copies",
            err=True,
        )
        raise typer.Exit(1)
