"""The Typer application: one module per command group, errors handled once here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitaudit.cli import checkpoint as checkpoint_cli
from gitaudit.cli import claude as claude_cli
from gitaudit.cli import claude_code as claude_code_cli
from gitaudit.cli import config as config_cli
from gitaudit.cli import daemon as daemon_cli
from gitaudit.cli import db as db_cli
from gitaudit.cli import demo as demo_cli
from gitaudit.cli import forget as forget_cli
from gitaudit.cli import hooks as hooks_cli
from gitaudit.cli import ingest as ingest_cli
from gitaudit.cli import redact as redact_cli
from gitaudit.cli import resolve as resolve_cli
from gitaudit.cli import retention as retention_cli
from gitaudit.cli import shim as shim_cli
from gitaudit.cli import trace2 as trace2_cli
from gitaudit.cli import verify as verify_cli
from gitaudit.cli import watch as watch_cli
from gitaudit.cli.runner import READERS, reader_command, report_error, run_app

__all__ = ["app", "package_version", "report_error", "run"]

app = typer.Typer(
    name="gitaudit",
    help="Audit trail for Git operations: capture, store, search and verify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"gitaudit {package_version()}")
        raise typer.Exit()


def package_version() -> str:
    """The installed distribution's version (the source tree's when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gitaudit")
    except PackageNotFoundError:
        from gitaudit import __version__

        return __version__


@app.callback()
def main_options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Audit trail for Git operations: capture, store, search and verify."""


@app.command(
    "git",
    short_help="Run git with its arguments and record what it did.",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def git_command(ctx: typer.Context) -> None:
    """Run git with ARGS and record what it did (e.g. `gitaudit git push`)."""
    from gitaudit.capture.wrapper import main as wrapper_main

    raise typer.Exit(wrapper_main(list(ctx.args)))


app.command("redact")(redact_cli.redact_command)
app.command("ingest")(ingest_cli.ingest_command)
for _reader in READERS:  # also run alone, without this app (gitaudit.cli.runner)
    app.command(_reader)(reader_command(_reader))
app.command("verify")(verify_cli.verify_command)
app.command("forget")(forget_cli.forget_command)
app.command("checkpoint")(checkpoint_cli.checkpoint_command)
app.add_typer(checkpoint_cli.keys_app, name="keys")
app.command("demo")(demo_cli.demo_command)
app.command("daemon")(daemon_cli.daemon_command)
app.command("watch")(watch_cli.watch_command)
app.command("resolve")(resolve_cli.resolve_command)

shim_app = typer.Typer(help="Install a `git` shim so plain `git` is audited.", no_args_is_help=True)
app.add_typer(shim_app, name="shim")


@shim_app.command("install")
def shim_install_command(
    directory: Annotated[Path, typer.Argument(help="Directory to put first on PATH.")],
    force: Annotated[bool, typer.Option(help="Replace a `git` there that is not ours.")] = False,
) -> None:
    """Write DIR/git, which runs `gitaudit git` with the real git found without recursion."""
    shim_cli.shim_install(directory, force)
    typer.echo(f"installed {directory / 'git'}; put {directory} first on PATH")


@shim_app.command("uninstall")
def shim_uninstall_command(
    directory: Annotated[Path, typer.Argument(help="Directory holding the shim.")],
) -> None:
    """Remove DIR/git if it is a gitaudit shim (anything else is left alone)."""
    if shim_cli.shim_uninstall(directory):
        typer.echo(f"removed the gitaudit shim from {directory}")
    else:
        typer.echo(f"no gitaudit shim in {directory}; nothing removed")


app.add_typer(hooks_cli.hooks_app, name="hooks")

db_app = typer.Typer(help="Manage the audit store schema.", no_args_is_help=True)
db_app.command("upgrade")(db_cli.upgrade_command)
db_app.command("status")(db_cli.status_command)
db_app.command("init-roles")(db_cli.init_roles_command)
db_app.command("rekey")(db_cli.rekey_command)
app.add_typer(db_app, name="db")

trace2_app = typer.Typer(help="Capture every git on this machine via trace2.", no_args_is_help=True)
trace2_app.command("enable")(trace2_cli.enable_command)
trace2_app.command("disable")(trace2_cli.disable_command)
app.add_typer(trace2_app, name="trace2")

config_app = typer.Typer(help="Inspect gitaudit settings.", no_args_is_help=True)
config_app.command("show")(config_cli.show_command)
app.add_typer(config_app, name="config")

app.add_typer(claude_cli.claude_app, name="claude")
app.add_typer(claude_code_cli.claude_code_app, name="claude-code")
app.add_typer(retention_cli.retention_app, name="retention")


def run(args: list[str]) -> int:
    """Run the CLI with ``args``; returns the exit code."""
    return run_app(app, args)
