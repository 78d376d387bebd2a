"""The daemon's signed checkpoints: every ``checkpoint_interval`` seconds, all chain heads.

Each round opens the store (in a worker thread: the store is synchronous),
writes a checkpoint signed with ``checkpoint_key`` (unsigned when it is unset),
copies the note into ``checkpoint_dir`` when set, and then records an
``audit.checkpoint`` event through the intake like any daemon event, so it is
journaled, stored in the daemon's chain and forwarded by every sink: the copies
outside the database that ``gitaudit verify --checkpoints`` reads.

The interval and the key are read from the current settings each round, so a
SIGHUP that changes them takes effect from the next checkpoint. A round that
fails (store down, key unreadable, directory full) is logged with its message
and hint and retried at the next interval; the daemon goes on.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from gitaudit.config import Settings
from gitaudit.daemon.api import Peer
from gitaudit.daemon.intake import EventIntake
from gitaudit.errors import GitauditError

_OFF_RECHECK_S = 30.0  # how soon checkpoints turned on by a SIGHUP start


def check_checkpoint_key(settings: Settings) -> None:
    """Fail at startup (ConfigError) when a configured checkpoint key cannot be used."""
    if settings.checkpoint_key is not None and settings.checkpoint_interval > 0:
        from gitaudit.store.checkpoint_store import load_signer_key

        load_signer_key(settings.checkpoint_key)


def write_checkpoint_now(settings: Settings) -> Any:
    """One checkpoint into the store and the checkpoint directory (blocking)."""
    from gitaudit.store import Store
    from gitaudit.store.checkpoint_store import load_signer_key, save_note

    key = None if settings.checkpoint_key is None else load_signer_key(settings.checkpoint_key)
    with Store.from_settings(settings, "daemon") as store:
        written = store.checkpoint(key)
    if settings.checkpoint_dir is not None:
        save_note(settings.checkpoint_dir, written)
    return written


class Checkpointer:
    """Runs :func:`write_checkpoint_now` on the daemon's schedule."""

    def __init__(
        self, settings: Callable[[], Settings], intake: Callable[[], EventIntake], log: Any
    ) -> None:
        self._settings = settings
        self._intake = intake
        self._log = log

    async def run(self) -> None:
        """Sleep an interval, checkpoint, repeat (interval 0: off, looked at again later)."""
        while True:
            interval = self._settings().checkpoint_interval
            if interval <= 0:
                await asyncio.sleep(_OFF_RECHECK_S)
                continue
            await asyncio.sleep(interval)
            if self._settings().checkpoint_interval > 0:
                await self.once()

    async def once(self) -> None:
        """One checkpoint and its ``audit.checkpoint`` event; failures are logged."""
        from gitaudit.store.checkpoint_store import checkpoint_event

        settings = self._settings()
        try:
            written = await asyncio.to_thread(write_checkpoint_now, settings)
        except GitauditError as exc:
            self._log.error("checkpoint_failed", error=exc.message, hint=exc.hint)
            return
        except Exception as exc:  # noqa: BLE001 - the schedule outlives one bad round
            self._log.error("checkpoint_failed", error=repr(exc))
            return
        me = Peer(pid=os.getpid(), uid=os.getuid(), gid=os.getgid())
        event = checkpoint_event(written, "daemon")
        acks = await self._intake().accept([event], peer=me, source="daemon")
        self._log.info(
            "checkpoint", number=written.number, chains=len(written.checkpoint.heads),
            signed_by=written.key_name, id=acks[0].id, status=acks[0].status,
        )  # fmt: skip
