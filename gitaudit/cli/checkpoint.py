"""`gitaudit keys generate` and `gitaudit checkpoint`: sign every chain's head, keep copies."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gitaudit.cli.common import SummaryFormat, SummaryFormatOption, load_settings, open_store
from gitaudit.errors import UsageError

if TYPE_CHECKING:
    from gitaudit.config import Settings
    from gitaudit.store import Store
    from gitaudit.store.checkpoint_store import WrittenCheckpoint
    from gitaudit.store.checkpoints import SignerKey

keys_app = typer.Typer(
    help="Make the Ed25519 key pair that signs checkpoints.", no_args_is_help=True
)


def _write_new(path: Path, text: str, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise UsageError(
            f"{path} exists already; refusing to overwrite a key",
            "choose another --out directory or --name, or move the old key away first",
        ) from None
    except OSError as exc:
        raise UsageError(
            f"cannot create {path}: {exc.strerror or exc}", "give a writable --out directory"
        ) from exc
    try:
        os.fchmod(fd, mode)  # whatever the umask
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


@keys_app.command("generate")
def generate_command(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for NAME.key (0600) and NAME.pub.")
    ] = Path(),
    name: Annotated[
        str | None, typer.Option("--name", help="Key name. Default: gitaudit-<hostname>.")
    ] = None,
) -> None:
    """Make an Ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub (public)."""
    from gitaudit.errors import ConfigError
    from gitaudit.store.checkpoints import generate_key

    key_name = name or f"gitaudit-{os.uname().nodename.split('.')[0]}"
    try:
        key = generate_key(key_name)
    except ConfigError as exc:
        raise UsageError(exc.message, "give --name without spaces or '+'") from exc
    if not out.is_dir():
        raise UsageError(f"{out} is not a directory", "create it first or give another --out")
    private, public = out / f"{key_name}.key", out / f"{key_name}.pub"
    if public.exists():
        raise UsageError(
            f"{public} exists already; refusing to overwrite a key",
            "choose another --out directory or --name, or move the old key away first",
        )
    _write_new(private, key.encode() + "\n", 0o600)
    _write_new(public, key.verifier().encode() + "\n", 0o644)
    typer.echo(f"private key: {private} (mode 0600: readable only by the daemon user)")
    typer.echo(f"public key:  {public} ({key.verifier().encode()})")
    typer.echo(
        "set GITAUDIT_CHECKPOINT_KEY to the private key; give the public key to the auditors "
        "and keep it off this host (e.g. in version control)"
    )


def sanitized(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The event as every event is stored: through the sanitizer, then validated."""
    from gitaudit.events import Event
    from gitaudit.pipeline import Pipeline

    return Event.model_validate(Pipeline(settings).sanitize(event)).to_record()


def checkpoint_and_keep(
    store: Store, settings: Settings, key: SignerKey | None
) -> tuple[WrittenCheckpoint, Path | None]:
    """Write a checkpoint (signed with ``key`` unless None), copy it into the checkpoint
    directory when one is set, and record ``audit.checkpoint``; the checkpoint and copy."""
    from gitaudit.store.checkpoint_store import checkpoint_event, save_note

    written = store.checkpoint(key)
    path = None if settings.checkpoint_dir is None else save_note(settings.checkpoint_dir, written)
    store.append([sanitized(checkpoint_event(written, "cli"), settings)])
    return written, path


def checkpoint_command(
    sign: Annotated[
        Path | None,
        typer.Option("--sign", help="Private key file. Default: GITAUDIT_CHECKPOINT_KEY."),
    ] = None,
    fmt: SummaryFormatOption = SummaryFormat.table,
) -> None:
    """Sign every chain's head now; keep it in the store, the checkpoint dir, the trail."""
    from gitaudit.store.checkpoint_store import load_signer_key

    settings = load_settings()
    key_file = sign or settings.checkpoint_key
    key = None if key_file is None else load_signer_key(key_file)
    if key_file is not None and os.stat(key_file).st_mode & 0o077:
        mode = oct(os.stat(key_file).st_mode & 0o777)
        typer.echo(
            f"gitaudit: warning: private key {key_file} is readable by others (mode {mode}); "
            f"`chmod 600 {key_file}` and keep it readable by the daemon user only",
            err=True,
        )
    store, _ = open_store(settings, writer=True)
    with store:
        written, path = checkpoint_and_keep(store, settings, key)
    heads = [
        {"chain_id": head.chain_id, "seq": head.seq, "hash": head.hash}
        for head in written.checkpoint.heads
    ]
    if fmt is SummaryFormat.json:
        summary = {
            "number": written.number,
            "origin": written.checkpoint.origin,
            "signed_by": written.key_name,
            "body_sha256": written.body_sha256,
            "file": None if path is None else str(path),
            "chains": heads,
            "note": written.note,
        }
        typer.echo(json.dumps(summary, indent=2, sort_keys=True))
        return
    signed = f"signed by {written.key_name}" if written.key_name else "UNSIGNED (no key)"
    typer.echo(f"checkpoint {written.number} of {written.checkpoint.origin}: {signed}")
    for head in heads:
        typer.echo(f"  {head['chain_id']}: seq {head['seq']} {head['hash']}")
    if path is not None:
        typer.echo(f"written to {path}")
    else:
        typer.echo("not copied to a directory (set GITAUDIT_CHECKPOINT_DIR)")
