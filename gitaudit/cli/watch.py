"""`gitaudit watch PATH...`: record ref changes that tools other than git make (foreground).

Runs :class:`gitaudit.capture.watcher.Watcher` until SIGINT/SIGTERM (exit 0).
Events go through the normal pipeline (policy, sanitizer, then the daemon's
socket, else the spool). Its dedupe sees git's own activity by reading what
the wrapper and hooks append to this user's spool directories; when a daemon
runs, the wrapper and hooks deliver to it instead, and the daemon drops what
its own activity log explains.
"""

from __future__ import annotations

import asyncio
import math
import signal
import sys
from typing import Annotated, Any

import typer

from gitaudit.capture import watcher
from gitaudit.cli.common import load_settings
from gitaudit.config import Settings
from gitaudit.errors import GitauditError, UsageError
from gitaudit.pipeline import Pipeline
from gitaudit.transport import spool_dirs


def watch_command(
    paths: Annotated[list[str], typer.Argument(metavar="PATH",
                                               help="Repositories to watch (worktree or bare).")],
    window: Annotated[
        float | None,
        typer.Option(metavar="SECONDS",
                     help="Seconds to wait for git's own event before recording a change "
                          "(default: the watch_window setting)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="One line per event.")] = False,
) -> None:
    """Record ref changes in PATHs that no hook, wrapper or trace2 event accounts for."""
    settings = load_settings()
    if window is not None and not 0 < window < math.inf:
        raise UsageError(f"--window must be a positive number of seconds, got {window}",
                          "give the seconds to wait, e.g. --window 1.0")
    repos = watcher.locate_all(paths)
    stats = asyncio.run(run(settings, repos, window or settings.watch_window, verbose))
    print(f"gitaudit watch: {stats['recorded']} change(s) recorded, {stats['explained']} made "
          f"by git itself (not recorded)", file=sys.stderr)


def _say(event: str, **fields: Any) -> None:
    detail = " ".join(  # no old (a created ref) or no new (a deleted one): (none), not None
        f"{key}={'(none)' if value is None else value}" for key, value in fields.items()
    )
    print(f"gitaudit watch: {event} {detail}".rstrip(), file=sys.stderr)


async def run(settings: Settings, repos: list[watcher.WatchedRepo], window: float,
              verbose: bool) -> dict[str, int]:
    """Watch until SIGINT/SIGTERM; returns counts (recorded, explained)."""
    pipeline = Pipeline(settings)
    activity = watcher.ActivityLog()
    tail = watcher.SpoolTail([str(folder) for folder in spool_dirs(settings)], activity)
    tail.prime()

    async def deliver(events: list[dict[str, Any]]) -> None:
        try:
            delivery = await asyncio.to_thread(pipeline.emit, events)
        except GitauditError as exc:  # nowhere to put them: say so, keep watching
            _say("delivery_failed", events=len(events), error=exc.message)
            return
        if delivery is not None and delivery.warning:
            _say("warning", message=delivery.warning)
        if verbose:
            where = delivery.transport if delivery is not None else "policy dropped"
            for event in events:
                found = event["details"]
                _say("recorded", repo=event["repo"]["path"], ref=found["ref"],
                     old=found["old"], new=found["new"], to=where)

    watch = watcher.Watcher(repos, deliver, activity=activity, window=window,
                            refresh=tail.poll, git=_git(settings), log=_say)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    task = asyncio.create_task(watch.run(stop))
    ready = asyncio.create_task(watch.ready.wait())
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    await task
    return {"recorded": watch.recorded, "explained": watch.explained}


def _git(settings: Settings) -> str | None:
    """The real git (only repositories with reftable need it)."""
    import os

    from gitaudit.capture.wrapper import find_real_git

    try:
        return find_real_git(settings.git, os.environ, None)
    except GitauditError:
        return None
