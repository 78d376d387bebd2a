"""`gitaudit forget --subject EMAIL|USER`: erase a person's identity, the chain intact.

Thin: :meth:`gitaudit.store.Store.forget` does the work (see
:mod:`gitaudit.store.subjects`). Exit codes: 0 forgotten; 1 answered no at the
prompt (nothing changed); 2 a usage or store error (also: no TTY to ask and no
``--yes``); 3 no such subject; 4 forgotten already.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gitaudit.cli.common import load_settings, open_store
from gitaudit.errors import UsageError

if TYPE_CHECKING:
    from gitaudit.config import Settings
    from gitaudit.store.subjects import ForgetPreview

DECLINED_EXIT = 1


def _describe(shown: ForgetPreview) -> str:
    lines = [f"will forget {len(shown.plan.subjects)} identit"
             f"{'y' if len(shown.plan.subjects) == 1 else 'ies'}:"]  # fmt: skip
    lines += [f"  {subject.kind:<5}  {subject.identity}  ({subject.token})"
              for subject in shown.plan.subjects]  # fmt: skip
    if shown.plan.kept:
        lines.append("kept (also seen with other subjects; forget them by name if you mean to):")
        lines += [f"  {subject.kind:<5}  {subject.identity}  ({subject.token})"
                  for subject in shown.plan.kept]  # fmt: skip
    lines.append(
        f"{shown.events} stored event(s) hold them; they stay in the chain and will show "
        "'forgotten subject <token>'"
    )
    if shown.clear_events:
        lines.append(
            f"warning: {shown.clear_events} event(s) stored before revision 0007 name this "
            "identity in clear; forgetting cannot erase those: run `gitaudit db rekey` first "
            "(as the owner of the store's tables), then forget (README 'Right to erasure')"
        )
    return "\n".join(lines)


def _event(shown: ForgetPreview, settings: Settings) -> dict[str, Any]:
    """The ``audit.subject_forgotten`` record: tokens and counts, never an identity."""
    from gitaudit.catalog import audit_record
    from gitaudit.cli.checkpoint import sanitized

    details = {
        "subjects": [{"pseudonym": subject.token, "kind": subject.kind}
                     for subject in shown.plan.subjects],
        "kept_linked": [subject.token for subject in shown.plan.kept],
        "events": shown.events,
        "clear_events_before_0007": shown.clear_events,
    }  # fmt: skip
    event = audit_record("audit.subject_forgotten", details, source="cli", exit_code=0,
                         actor={"uid": os.getuid(), "host": os.uname().nodename})  # fmt: skip
    return sanitized(event, settings)


def forget_command(
    subject: Annotated[str, typer.Option(
        "--subject", help="The email, git name or OS user to forget (exact; emails any case).",
        show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask (needed without a TTY).")] = False,
    linked: Annotated[bool, typer.Option(
        "--linked/--no-linked",
        help="Also forget identities seen only with this one (its git name, OS user).")] = True,
) -> None:
    """Make a person's identity unrecoverable; their events stay and still verify."""
    if not yes and not sys.stdin.isatty():
        raise UsageError(
            "forget asks before it destroys keys, and there is no terminal to ask on",
            f"check the subject with `gitaudit forget --subject {subject}` on a terminal, "
            "or pass --yes",
        )
    settings = load_settings()
    store, _ = open_store(settings, writer=True)

    def confirm(shown: ForgetPreview) -> bool:
        typer.echo(_describe(shown))
        return yes or typer.confirm("Forget? This cannot be undone", default=False)

    with store:
        done = store.forget(subject, follow_links=linked, confirm=confirm,
                            record=lambda shown: _event(shown, settings))  # fmt: skip
    if done is None:
        typer.echo("nothing forgotten")
        raise typer.Exit(DECLINED_EXIT)
    shown, scrubbed = done
    typer.echo(
        f"forgotten: {', '.join(subject.token for subject in shown.plan.subjects)}; "
        f"{shown.events} event(s) now show 'forgotten subject'; recorded as "
        "audit.subject_forgotten"
    )
    if not scrubbed:
        typer.echo(
            "gitaudit: warning: the deleted keys may linger in the database files until the "
            "next SQLite checkpoint / PostgreSQL VACUUM FULL subject_keys (a reader held "
            "them, or this login does not own the tables)",
            err=True,
        )
