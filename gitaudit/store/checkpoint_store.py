"""Making a signed checkpoint of the store, and keeping copies of it outside the store.

:func:`write_checkpoint` reads every chain's head in one snapshot, builds the
checkpoint body (:mod:`gitaudit.store.checkpoints`), signs it when a key is
given, and appends it to ``signed_checkpoints`` in the same write transaction
(numbered, each naming the body hash of the one before). :func:`save_note`
writes the copy for ``GITAUDIT_CHECKPOINT_DIR``: one file per checkpoint,
named so that names sort by time, written to a temporary name, fsynced,
renamed, and the directory fsynced. :func:`checkpoint_event` is the
``audit.checkpoint`` record that carries the note to the sinks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, func, make_url, select, text

from gitaudit.errors import ConfigError
from gitaudit.store.checkpoints import (
    ORIGIN_PREFIX,
    ChainHead,
    Checkpoint,
    SignerKey,
    body_hash,
    build_body,
    format_time,
    parse_signer_key,
    sign,
)
from gitaudit.store.tables import chains, checkpoints, events, signed_checkpoints

NOTE_SUFFIX: Final = ".note"
# pg_advisory_xact_lock key serializing checkpoint writers ("gaudckpt" in ASCII).
_LOCK_KEY: Final = 0x6761756463_6B7074
CHECKPOINT_OPERATION: Final = "audit.checkpoint"


@dataclass(frozen=True)
class WrittenCheckpoint:
    """A checkpoint as stored: its number, statement, full note and body hash."""

    number: int
    checkpoint: Checkpoint
    note: str
    body_sha256: str
    key_name: str | None


def load_signer_key(path: str | Path) -> SignerKey:
    """The private key in ``path``; ConfigError naming the file when it is unusable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read checkpoint key {path}: {getattr(exc, 'strerror', None) or exc}",
            "make it readable by this user (the daemon user only), or make one with "
            "`gitaudit keys generate`",
        ) from exc
    try:
        return parse_signer_key(text)
    except ConfigError as exc:
        raise ConfigError(f"checkpoint key {path}: {exc.message}", exc.hint) from exc


def store_identity(url: str) -> str:
    """The origin of this store's checkpoints: ``gitaudit/<host><path>`` or ``gitaudit/<db>``.

    No user name or password: a PostgreSQL store is ``host:port/database``, a SQLite
    store ``<this host's name>/<absolute file path>``.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        where = f"{os.uname().nodename}/{str(parsed.database or 'memory').lstrip('/')}"
    else:
        where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"
    safe = "".join(ch if ch.isprintable() and not ch.isspace() else "_" for ch in where)
    return ORIGIN_PREFIX + safe


def current_heads(conn: Connection) -> list[ChainHead]:
    """Every registered chain's head: its last stored record (seq and hash).

    A chain whose records were all expired by retention is stated by the checkpoint
    row retention left at its cut.
    """
    last = (
        select(events.c.chain_id, func.max(events.c.seq).label("seq"))
        .group_by(events.c.chain_id)
        .subquery()
    )
    rows = conn.execute(
        select(events.c.chain_id, events.c.seq, events.c.hash).join(
            last, (events.c.chain_id == last.c.chain_id) & (events.c.seq == last.c.seq)
        )
    )
    heads = {row.chain_id: ChainHead(row.chain_id, int(row.seq), row.hash) for row in rows}
    for chain_id in conn.scalars(select(chains.c.chain_id)):
        if chain_id in heads:
            continue
        mark = conn.execute(
            select(checkpoints.c.seq, checkpoints.c.hash)
            .where(checkpoints.c.chain_id == chain_id)
            .order_by(checkpoints.c.seq.desc())
            .limit(1)
        ).first()
        if mark is not None:
            heads[chain_id] = ChainHead(chain_id, int(mark.seq), mark.hash)
    return [heads[chain_id] for chain_id in sorted(heads)]


def write_checkpoint(
    conn: Connection, origin: str, key: SignerKey | None, now: datetime | None = None
) -> WrittenCheckpoint:
    """State every chain's head now, sign it with ``key`` (None: unsigned), store it.

    Runs in the caller's write transaction, so the heads and the row agree; on
    PostgreSQL an advisory lock orders concurrent checkpointers (SQLite's write
    transaction already does), so each numbers and links after the one before.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    previous = conn.execute(
        select(signed_checkpoints.c.number, signed_checkpoints.c.body_sha256)
        .order_by(signed_checkpoints.c.number.desc())
        .limit(1)
    ).first()
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    checkpoint = Checkpoint(
        origin, moment, None if previous is None else previous.body_sha256,
        tuple(current_heads(conn)),
    )  # fmt: skip
    body = build_body(checkpoint)
    note = body if key is None else sign(body, key)
    number = 1 if previous is None else int(previous.number) + 1
    digest = body_hash(body)
    conn.execute(
        signed_checkpoints.insert(),
        {
            "number": number,
            "created_at": moment,
            "body_sha256": digest,
            "prev_sha256": checkpoint.prev,
            "key_name": None if key is None else key.name,
            "note": note,
        },
    )
    return WrittenCheckpoint(number, checkpoint, note, digest, None if key is None else key.name)


def note_filename(written: WrittenCheckpoint) -> str:
    """``checkpoint-<UTC time>-<number>.note``: names sort by time, then by number."""
    stamp = format_time(written.checkpoint.time).replace("-", "").replace(":", "")
    return f"checkpoint-{stamp}-{written.number:010d}{NOTE_SUFFIX}"


def save_note(directory: str | Path, written: WrittenCheckpoint) -> Path:
    """Write the note into ``directory`` (created 0755 if missing), fsynced; its path."""
    folder = Path(directory)
    target = folder / note_filename(written)
    try:
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        temporary = folder / f".{target.name}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, written.note.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise ConfigError(
            f"cannot write checkpoint file into {folder}: {exc.strerror or exc}",
            "make GITAUDIT_CHECKPOINT_DIR a directory this user can write (the checkpoint "
            "itself is in the store; write the copy again with `gitaudit checkpoint`)",
        ) from exc
    return target


def note_of_event(details: dict[str, Any]) -> str | None:
    """The note an ``audit.checkpoint`` event carries (see :func:`checkpoint_event`)."""
    lines = details.get("note_lines")
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        return None
    return "".join(line + "\n" for line in lines)


def checkpoint_event(written: WrittenCheckpoint, source: str) -> dict[str, Any]:
    """The ``audit.checkpoint`` record carrying the note, so sinks forward a copy of it."""
    from gitaudit.catalog import audit_record

    checkpoint = written.checkpoint
    details = {
        "number": written.number,
        "origin": checkpoint.origin,
        "time": format_time(checkpoint.time),
        "body_sha256": written.body_sha256,
        "key_name": written.key_name,
        "chains": len(checkpoint.heads),
        # One string per line: a single string past FIELD_MAX_BYTES (16 KiB, ~150 chains)
        # would be cut by the sanitizer's size limits; lines stay whole.
        "note_lines": written.note.split("\n")[:-1],
    }
    return audit_record(CHECKPOINT_OPERATION, details, source=source, severity="low",
                        actor={"host": os.uname().nodename})  # fmt: skip
