"""`gitaudit demo`: a guided run of the main job on a throwaway repository.

It builds a local bare remote and two clones in a temporary directory, runs
clone, commit, push, a pull --rebase that stops on a real conflict and is
resolved, and a force-push, all through the audited wrapper, then prints the
audit trail of that run and verifies the store.

The store is append-only, so fictitious events must not land in the user's
real one: the demo writes to a store of its own in that temporary directory
(kept, and named at the end) unless ``--store URL`` names another. Its events
travel through a spool of its own, never through a running daemon or the
user's spool (whose events would otherwise be ingested into the demo's store).
``GITAUDIT_DATABASE_URL`` is deliberately not honoured: it is how the real
store is configured.
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


def _isolate(base: Path, store_url: str) -> str:
    """Point this process and the audited git runs at the demo's own store and spool.

    Returns the store URL. The emergency spool (under ``$TMPDIR``) moves too, so
    ingesting never takes the user's spooled events into the demo's store.
    """
    for folder in ("spool", "run", "tmp"):
        (base / folder).mkdir(mode=0o700, exist_ok=True)
    os.environ.update(
        {
            "GITAUDIT_DATABASE_URL": store_url,
            "GITAUDIT_SPOOL_DIR": str(base / "spool"),
            "GITAUDIT_RUNTIME_DIR": str(base / "run"),  # no daemon socket there
            "TMPDIR": str(base / "tmp"),
        }
    )
    return store_url


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
    base.mkdir()
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
    store_url: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URL",
            help="Record into this store instead of a temporary one (it is append-only).",
        ),
    ] = None,
) -> None:
    """Run clone/commit/push/conflict/force-push through the wrapper and show the audit trail."""
    import shutil

    from gitaudit.store import EventFilter
    from gitaudit.store.engine import redacted

    correlation_id = f"demo-{uuid7()}"
    base = Path(tempfile.mkdtemp(prefix="gitaudit-demo-"))
    own_store = store_url is None
    url = _isolate(base, store_url or f"sqlite:///{base / 'audit.db'}")
    settings = load_settings()
    repos = base / "repos"
    try:
        _scenario(repos, correlation_id)
        store, _ = open_store(settings, writer=True)
        with store:
            events = store.query(EventFilter(correlation_id=correlation_id))
            report = store.verify()
    finally:
        if keep:
            typer.echo(f"repositories kept in {repos}", err=True)
        else:
            shutil.rmtree(repos, ignore_errors=True)
        if not own_store and not keep:
            shutil.rmtree(base, ignore_errors=True)
    render(events, fmt)
    shown = redacted(url)
    read = f"GITAUDIT_DATABASE_URL={shown} gitaudit log" if own_store else "gitaudit log"
    where = f"a temporary store of its own, kept: {shown}" if own_store else shown
    typer.echo(f"demo events written to {where}", err=fmt is not OutputFormat.table)
    if fmt is OutputFormat.table:
        typer.echo(f"correlation id: {correlation_id}  ({read} --correlation-id {correlation_id})")
        typer.echo(f"verify: {'ok' if report.ok else 'FAILED'}")
    if not report.ok:
        raise typer.Exit(1)
