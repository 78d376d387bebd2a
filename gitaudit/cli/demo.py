"""`gitaudit demo`: a guided run of the main job on a throwaway repository.

It builds a local bare remote and two clones in a temporary directory, runs
clone, commit, push, a pull --rebase that stops on a real conflict and is
resolved, and a force-push, all through the audited wrapper, then prints the
audit trail of that run and verifies the store. The events land in the
configured store (by default the embedded SQLite store), under one correlation
id, so they can be found again with `gitaudit log --correlation-id ...`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from gitaudit.catalog import uuid7
from gitaudit.cli.common import OutputFormat, load_settings, open_store
from gitaudit.cli.output import render
from gitaudit.errors import GitauditError

_IDENTITIES = {
    "alice": ("Alice Example", "alice@example.com"),
    "bob": ("Bob Example", "bob@example.com"),
}


class DemoError(GitauditError):
    """A demo step did not do what it should have."""


def _env(correlation_id: str, who: str) -> dict[str, str]:
    name, email = _IDENTITIES[who]
    env = dict(os.environ)
    env.update(
        {
            "GITAUDIT_CORRELATION_ID": correlation_id,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
            "GIT_EDITOR": "true",
            "GIT_TERMINAL_PROMPT": "0",
        }
    )
    return env


def _audited(
    args: list[str], cwd: Path, env: Mapping[str, str], *, expect_failure: bool = False
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gitaudit", "git", *args]
    typer.echo(f"$ gitaudit git {' '.join(args)}", err=True)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    failed = result.returncode != 0
    if failed != expect_failure:
        raise DemoError(
            f"demo step `git {' '.join(args)}` exited {result.returncode}: {result.stderr.strip()}",
            "run `gitaudit demo` again; if it persists, report it with this output",
        )
    return result


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _scenario(base: Path, correlation_id: str) -> None:
    alice, bob = _env(correlation_id, "alice"), _env(correlation_id, "bob")
    remote = base / "remote.git"
    subprocess.run(
        ["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True, env=alice
    )
    _audited(
        [
            "clone",
            "https://x-access-token:ghp_demoDemoDemoDemoDemoDemoDemoDemo1234@127.0.0.1:9/org/repo.git",
            "unreachable",
        ],
        base,
        alice,
        expect_failure=True,
    )
    _audited(["clone", str(remote), "alice"], base, alice)
    work_a = base / "alice"
    _write(work_a / "app.txt", "greeting = hello\ncolour = blue\n")
    _audited(["add", "app.txt"], work_a, alice)
    _audited(["commit", "-m", "Add app config"], work_a, alice)
    _audited(["push", "-u", "origin", "main"], work_a, alice)
    _audited(["clone", str(remote), "bob"], base, bob)
    work_b = base / "bob"
    _write(work_b / "app.txt", "greeting = hello\ncolour = green\n")
    _audited(["commit", "-am", "Prefer green"], work_b, bob)
    _audited(["push"], work_b, bob)
    _write(work_a / "app.txt", "greeting = hello\ncolour = red\n")
    _audited(["commit", "-am", "Prefer red"], work_a, alice)
    _audited(["pull", "--rebase"], work_a, alice, expect_failure=True)
    _write(work_a / "app.txt", "greeting = hello\ncolour = purple\n")
    _audited(["add", "app.txt"], work_a, alice)
    _audited(["rebase", "--continue"], work_a, alice)
    _audited(["push"], work_a, alice)
    _audited(["commit", "--amend", "-m", "Prefer purple (compromise)"], work_a, alice)
    _audited(["push", "--force", "origin", "main"], work_a, alice)
    _audited(["checkout", "-b", "feature/demo"], work_a, alice)
    _audited(["push", "-u", "origin", "feature/demo"], work_a, alice)
    _audited(["push", "origin", "--delete", "feature/demo"], work_a, alice)


def demo_command(
    fmt: Annotated[OutputFormat, typer.Option("--format", help="How to print the trail.")] = (
        OutputFormat.table
    ),
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary repositories and print where.")
    ] = False,
) -> None:
    """Run clone/commit/push/conflict/force-push through the wrapper and show the audit trail."""
    from gitaudit.store import EventFilter

    settings = load_settings()
    correlation_id = f"demo-{uuid7()}"
    base = Path(tempfile.mkdtemp(prefix="gitaudit-demo-"))
    try:
        _scenario(base, correlation_id)
    finally:
        if keep:
            typer.echo(f"repositories kept in {base}", err=True)
        else:
            import shutil

            shutil.rmtree(base, ignore_errors=True)
    store, _ = open_store(settings)
    with store:
        events = store.query(EventFilter(correlation_id=correlation_id))
        report = store.verify()
    render(events, fmt)
    if fmt is OutputFormat.table:
        typer.echo(f"\nstore: {settings.effective_database_url}")
        typer.echo(
            f"correlation id: {correlation_id}  (gitaudit log --correlation-id {correlation_id})"
        )
        typer.echo(f"verify: {'ok' if report.ok else 'FAILED'}")
    if not report.ok:
        raise typer.Exit(1)
