"""`gitaudit retention run`: archive and delete expired records, leave a checkpoint.

Thin: settings in, :meth:`gitaudit.store.Store.expire` does the work
(:mod:`gitaudit.store.retention`), this module prints what happened. Never prompts.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from gitaudit.cli.common import SummaryFormat, SummaryFormatOption, load_settings, progress_bar

if TYPE_CHECKING:
    from gitaudit.store.retention import RetentionReport

retention_app = typer.Typer(
    help="Expire old records: archive, delete, leave a checkpoint.",
    no_args_is_help=True,
)


@retention_app.command("run")
def run_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would expire; change nothing.")
    ] = False,
    fmt: SummaryFormatOption = SummaryFormat.table,
) -> None:
    """Apply the retention policy: archive expired records, delete them in batches."""
    from gitaudit.store import Store
    from gitaudit.store.retention import RetentionOptions, recorder

    settings = load_settings()
    options = RetentionOptions.from_settings(settings, dry_run=dry_run)
    with Store.from_settings(settings, create=False) as store, progress_bar("retention") as bar:
        report = store.expire(options, recorder(store, settings, "cli"), bar)
    if fmt is SummaryFormat.json:
        typer.echo(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        for line in table_lines(report):
            typer.echo(line)


def _policy_text(policy: dict[str, object]) -> str:
    def days(value: object) -> str:
        return "forever" if value is None else f"{value} days"

    patterns = policy.get("patterns") or {}
    parts = [f"default {days(policy.get('default_days'))}"]
    parts += [f"{pattern} {days(value)}" for pattern, value in dict(patterns).items()]  # type: ignore[call-overload]
    return ", ".join(parts)


def table_lines(report: RetentionReport) -> list[str]:
    """The run as text for people."""
    verb = "would expire" if report.dry_run else "expired"
    lines = [f"policy: {_policy_text(report.policy)}"]
    if report.archive_dir is None:
        lines.append("archive: off (GITAUDIT_ARCHIVE=off)")
    else:
        lines.append(f"archive: {report.archive_dir}")
    for cut in report.chains:
        if not cut.count:
            lines.append(f"{cut.chain_id}: nothing expired")
            continue
        ops = ", ".join(f"{op} {n}" for op, n in sorted(cut.operations.items()))
        segments = f"; {len(cut.segments)} archive segment(s)" if cut.segments else ""
        lines.append(
            f"{cut.chain_id}: {verb} {cut.count} record(s), seq {cut.first_seq}..{cut.upto_seq} "
            f"({ops}){segments}"
        )
    if not report.chains:
        lines.append("no records yet")
    if report.partitions_dropped:
        lines.append(f"partitions dropped: {', '.join(report.partitions_dropped)}")
    deleted = sum(cut.deleted for cut in report.chains)
    tail = "nothing deleted (dry run)" if report.dry_run else f"{deleted} deleted"
    lines.append(f"total: {verb} {report.expired} record(s), {tail}, {report.duration_s:.1f}s")
    return lines
