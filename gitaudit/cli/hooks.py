"""``gitaudit hooks install|uninstall|status``: thin commands over :mod:`gitaudit.hookinstall`."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from gitaudit import hookinstall
from gitaudit.cli.common import SummaryFormat, SummaryFormatOption, load_settings

hooks_app = typer.Typer(
    help="Install git hooks that record pushes, commits, checkouts, merges and rebases.",
    no_args_is_help=True,
)

RepoOption = Annotated[
    str | None,
    typer.Option("--repo", metavar="PATH",
                 help="Repository to act on (default: $GIT_DIR or the current one)."),
]
GlobalOption = Annotated[
    bool,
    typer.Option("--global", help="Act on the global core.hooksPath (every repository)."),
]



_DONE = {
    hookinstall.WRITE: "installed",
    hookinstall.UPGRADE: "upgraded",
    hookinstall.UNCHANGED: "already installed",
    hookinstall.KEEP_AND_WRITE: f"installed; existing hook kept as *{hookinstall.LEGACY_SUFFIX}",
    hookinstall.REMOVE: "removed",
    hookinstall.RESTORE: "removed; previous hook restored",
    hookinstall.NOT_OURS: "not gitaudit's: left alone",
    hookinstall.DROP_COPY: "repaired: a hook manager had written over gitaudit's; its old copy "
                           "removed",
    hookinstall.DROP_STALE: "repaired: gitaudit's copy that a hook manager had moved aside "
                            "removed",
}


def _git() -> str:
    from gitaudit.capture.wrapper import find_real_git

    settings = load_settings()
    return find_real_git(str(settings.git) if settings.git else None, os.environ, None)


def _check_scope(repo: str | None, global_: bool) -> None:
    if repo is not None and global_:
        raise typer.BadParameter("use either --repo or --global, not both")


def _print_outcome(outcome: hookinstall.Outcome) -> None:
    typer.echo(f"hooks directory: {outcome.hooks_dir}")
    for step in outcome.steps:
        if step.action != hookinstall.ABSENT:
            where = f" ({step.file})" if step.file else ""
            typer.echo(f"  {step.name:24s} {_DONE.get(step.action, step.action)}{where}")
    for note in outcome.notes:
        typer.echo(f"note: {note}")


def install_command(
    repo: RepoOption = None,
    global_: GlobalOption = False,
    with_: Annotated[
        list[str] | None,
        typer.Option("--with", metavar="HOOK",
                     help="Also install an optional hook: reference-transaction."),
    ] = None,
) -> None:
    """Install gitaudit's hooks; a hook already there is kept and still runs."""
    _check_scope(repo, global_)
    git = _git()
    extra = with_ or []
    if global_:
        outcome = hookinstall.install_global(git, os.environ, extra)
    else:
        outcome = hookinstall.install_repo(git, repo, os.environ, extra)
    _print_outcome(outcome)


def uninstall_command(repo: RepoOption = None, global_: GlobalOption = False) -> None:
    """Remove gitaudit's hooks and put back the hooks they replaced."""
    _check_scope(repo, global_)
    git = _git()
    if global_:
        outcome = hookinstall.uninstall_global(git, os.environ)
    else:
        outcome = hookinstall.uninstall_repo(git, repo, os.environ)
    _print_outcome(outcome)


def status_command(
    repo: RepoOption = None,
    global_: GlobalOption = False,
    fmt: SummaryFormatOption = SummaryFormat.table,
) -> None:
    """Show which gitaudit hooks are installed, their version and the hooks they chain to."""
    _check_scope(repo, global_)
    git = _git()
    if global_:
        info = hookinstall.global_status(git, os.environ)
    else:
        info = hookinstall.repo_status(git, repo, os.environ)
    if fmt is SummaryFormat.json:
        typer.echo(json.dumps(info, indent=2, sort_keys=True))
    else:
        typer.echo(format_status(info))


def format_status(info: dict[str, Any]) -> str:
    """The status as a short text table."""
    hooks_path = info["core_hooks_path"]
    lines = [f"hooks directory: {info['hooks_dir']}"]
    if "repository" in info:
        lines.insert(0, f"repository: {info['repository']}")
    if hooks_path["value"]:
        lines.append(f"core.hooksPath: {hooks_path['value']} ({hooks_path['scope']} config)")
    if "active" in info:
        lines.append(f"global core.hooksPath points here: {'yes' if info['active'] else 'no'}")
    template = info["template"]
    lines.append(f"template: version {template['version']} sha256 {template['sha256']}")
    lines.append(f"  {'hook':24s} {'state':11s} {'version':8s} chained")
    for row in info["hooks"]:
        version = "" if row["version"] is None else str(row["version"])
        state = row["state"]
        if state == "installed" and not row["records"]:
            state = "refusals" if row["mode"] == hookinstall.GATE else "chains"
        where = f" (as {row['file']}, run by {row['peer']})" if row["file"] != row["name"] else ""
        lines.append(
            f"  {row['name']:24s} {state:11s} {version:8s} {row['chained'] or '-'}{where}"
        )
    lines += [f"note: {note}" for note in info["notes"]]
    return "\n".join(lines)


hooks_app.command("install")(install_command)
hooks_app.command("uninstall")(uninstall_command)
hooks_app.command("status")(status_command)
