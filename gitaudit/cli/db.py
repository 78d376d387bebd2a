"""`gitaudit db`: schema management, partitions, least-privilege roles."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gitaudit.cli.common import SummaryFormat, SummaryFormatOption, load_settings
from gitaudit.config import Settings

if TYPE_CHECKING:
    from gitaudit.store.rekey import ChainRekey, RekeyReport

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Store URL to use instead of GITAUDIT_DATABASE_URL (e.g. as the table owner). "
        "Never put a password in it: every user sees command lines; use "
        "GITAUDIT_DATABASE_PASSWORD_FILE, PGPASSFILE or ?service=NAME.",
    ),
]

_warned = False


def _settings(url: str | None) -> Settings:
    """The settings, with the store URL of ``--database-url`` if given (warned about once
    when it carries a password)."""
    settings = load_settings()
    if url is None:
        return settings
    _warn_password(url)
    return Settings({**settings.as_dict(), "database_url": url})


def _warn_password(url: str) -> None:
    global _warned  # noqa: PLW0603 - one warning per process
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        return  # reported (password hidden) when the store is opened
    if password is not None and not _warned:
        _warned = True
        print(
            "gitaudit: warning: --database-url carries a password, which every user of this "
            "machine can read in the process list; put it in a file named by "
            "GITAUDIT_DATABASE_PASSWORD_FILE (mode 0600), in PGPASSFILE, or use a libpq "
            "service (postgresql+psycopg:///?service=NAME)",
            file=sys.stderr,
        )


def upgrade_command(database_url: DatabaseUrlOption = None) -> None:
    """Apply every pending Alembic revision to the configured store; create partitions ahead."""
    from gitaudit.store.engine import database_url as resolved_url
    from gitaudit.store.engine import upgrade_store

    settings = _settings(database_url)
    done = upgrade_store(resolved_url(settings))
    typer.echo(f"{_upgrade_summary(done.before, done.after)}: "
               f"{_display_url(settings.effective_database_url)}")  # fmt: skip
    if done.partitions:
        typer.echo(f"partitions created: {', '.join(done.partitions)}")
    if done.before is not None and done.before < PSEUDONYMS_REVISION <= (done.after or ""):
        typer.echo("note: events stored before revision 0007 keep the clear identities they "
                   "were written with; `gitaudit db rekey --dry-run` counts them and "
                   "`gitaudit db rekey` pseudonymizes them (README: Right to erasure)")


# The revision whose writer stores identities as subject tokens (gitaudit forget).
PSEUDONYMS_REVISION = "0007"


def _upgrade_summary(before: str | None, after: str | None) -> str:
    if before is None:
        return f"store created at schema revision {after}"
    if before == after:
        return f"store schema is up to date (revision {after})"
    return f"store schema upgraded from revision {before} to {after}"


def status_command(
    fmt: SummaryFormatOption = SummaryFormat.table,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show which store is configured, how many events it holds, and its partitions."""
    from gitaudit.store import Store

    settings = _settings(database_url)
    with Store.from_settings(settings, reader=True, create=False) as store:
        count = store.count()
        partitions: list[dict[str, Any]] = [
            {
                "name": part.name,
                "start": part.start.isoformat() if part.start else None,
                "end": part.end.isoformat() if part.end else None,
                "rows_estimate": part.rows,
            }
            for part in store.partitions()
        ]
    info = {
        "url": _display_url(settings.effective_database_url),
        "events": count,
        "partitions": partitions,
    }
    if fmt is SummaryFormat.json:
        typer.echo(json.dumps(info, sort_keys=True))
        return
    typer.echo(f"store: {info['url']}\nevents: {count}")
    if partitions:
        typer.echo("partitions (events by month of occurred_at; rows estimated):")
    for part in partitions:
        span = f"{part['start'][:7]}" if part["start"] else "default (outside every month)"
        typer.echo(f"  {part['name']:<16} {span:<30} ~{part['rows_estimate']} rows")


def init_roles_command(
    print_sql: Annotated[
        bool,
        typer.Option("--print-sql", help="Print the idempotent SQL for a DBA; change nothing."),
    ] = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Create the PostgreSQL roles gitaudit_writer, gitaudit_reader, gitaudit_retention."""
    from gitaudit.store.roles import roles_sql

    if print_sql:
        typer.echo("-- gitaudit least-privilege roles (run as the owner of the store's tables)")
        typer.echo("\n".join(roles_sql()))
        return
    from gitaudit.store import Store

    settings = _settings(database_url)
    with Store.from_settings(settings, create=False) as store:
        store.init_roles()
    typer.echo(
        "roles gitaudit_writer, gitaudit_reader, gitaudit_retention are in place "
        f"on {_display_url(settings.effective_database_url)}; grant them to login users "
        "(see README, 'Roles')"
    )


def _display_url(url: str) -> str:
    from gitaudit.sanitize import redact

    return str(redact(url))


REKEY_DECLINED_EXIT = 1
REKEY_REFUSED_EXIT = 3


def _rekey_event(chain: ChainRekey, rekey_id: str, settings: Settings) -> dict[str, Any]:
    """The ``audit.store_rekeyed`` record of one rewritten chain: hashes, counts, a digest."""
    import os

    from gitaudit.catalog import audit_record
    from gitaudit.cli.checkpoint import sanitized
    from gitaudit.store.rekey import OPERATION, details

    event = audit_record(OPERATION, details(chain, rekey_id), source="cli",
                         correlation_id=rekey_id, exit_code=0,
                         actor={"uid": os.getuid(), "host": os.uname().nodename})  # fmt: skip
    return sanitized(event, settings)


def _rekey_lines(report: RekeyReport) -> list[str]:
    lines = []
    for chain in report.chains:
        if chain.refused is not None:
            problem = chain.refused
            where = f" at seq {problem.seq}" if problem.seq is not None else ""
            lines.append(f"{chain.chain_id}: REFUSED, left untouched: verification failed "
                         f"({problem.kind}{where}: {problem.message})")  # fmt: skip
        elif chain.error is not None:
            lines.append(f"{chain.chain_id}: NOT rewritten: {chain.error}")
        elif chain.rewritten:
            lines.append(f"{chain.chain_id}: {chain.clear} record(s) held clear identities; "
                         f"rewrote seq {chain.first_seq}..{chain.last_seq} "
                         f"({chain.rewritten} record(s)); audit.store_rekeyed recorded")
        elif chain.clear:
            verb = "hold" if report.dry_run else "held"
            lines.append(f"{chain.chain_id}: {chain.clear} of {chain.records} record(s) {verb} "
                         f"clear identities (first at seq {chain.first_seq})")  # fmt: skip
        else:
            lines.append(f"{chain.chain_id}: {chain.records} record(s), no clear identity")
    return lines


def rekey_command(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask (needed without a TTY).")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what holds clear identities; change nothing.")
    ] = False,
    fmt: SummaryFormatOption = SummaryFormat.table,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Rewrite events stored before revision 0007 with subject tokens, chains re-hashed."""
    from gitaudit.cli.checkpoint import checkpoint_and_keep
    from gitaudit.cli.common import progress_bar
    from gitaudit.errors import UsageError
    from gitaudit.store import Store

    if not yes and not dry_run and not sys.stdin.isatty():
        raise UsageError(
            "db rekey asks before it rewrites the chains, and there is no terminal to ask on",
            "see what it would do with `gitaudit db rekey --dry-run`, then pass --yes",
        )
    settings = _settings(database_url)
    signer = None  # read before anything is rewritten: an unusable key stops the run first
    if settings.checkpoint_key is not None and not dry_run:
        from gitaudit.store.checkpoint_store import load_signer_key

        signer = load_signer_key(settings.checkpoint_key)

    def confirm(planned: RekeyReport) -> bool:
        if yes:  # the outcome is printed after
            return True
        for line in _rekey_lines(planned):  # JSON keeps stdout for itself
            typer.echo(line, err=fmt is SummaryFormat.json)
        return typer.confirm(
            "Rewrite these chains (take a backup first: the old bodies cannot be restored)?",
            default=False, err=fmt is SummaryFormat.json)  # fmt: skip

    with Store.from_settings(settings, create=False) as store:
        with progress_bar("rekey") as bar:
            report = store.rekey(lambda chain, rekey_id: _rekey_event(chain, rekey_id, settings),
                                 dry_run=dry_run, confirm=confirm, progress=bar)  # fmt: skip
        if report is None:
            typer.echo("nothing rewritten")
            raise typer.Exit(REKEY_DECLINED_EXIT)
        rewritten = sum(chain.rewritten for chain in report.chains)
        checkpoint = None
        if rewritten and signer is not None:
            checkpoint = checkpoint_and_keep(store, settings, signer)[0].number
    if fmt is SummaryFormat.json:
        typer.echo(json.dumps({**report.as_dict(), "checkpoint": checkpoint,
                               "scrubbed": report.scrubbed}, sort_keys=True))  # fmt: skip
    elif not report.clear:
        typer.echo("nothing to do: no stored event holds a clear identity")
    else:
        for line in _rekey_lines(report):
            typer.echo(line)
        if report.dry_run:
            typer.echo("nothing changed (dry run)")
        if checkpoint is not None:
            typer.echo(f"wrote signed checkpoint {checkpoint} of the new heads")
    if not report.dry_run and any(chain.rewritten for chain in report.chains) and (
        not report.scrubbed
    ):
        typer.echo(
            "gitaudit: warning: the old bodies may linger in the database files: on "
            "PostgreSQL until `VACUUM FULL` of events' partitions, on SQLite until the next "
            "checkpoint (a reader held the WAL); backups and retention archives made before "
            "still hold them (README 'Right to erasure')",
            err=True,
        )
    if report.failed:
        typer.echo(
            f"gitaudit: db rekey: {len(report.failed)} chain(s) not rewritten: "
            f"{', '.join(chain.chain_id for chain in report.failed)}",
            err=True,
        )
        typer.echo("  hint: run `gitaudit verify` and see README 'Right to erasure' (a chain "
                   "that fails verification is never rewritten)", err=True)  # fmt: skip
        raise typer.Exit(REKEY_REFUSED_EXIT)
