"""The daemon's own retention schedule (``retention_interval`` seconds; 0, the default: off).

Off by default because ``gitaudit-retention.timer`` already runs ``gitaudit
retention run`` daily; a daemon without systemd (a container) turns this on
instead. A run happens in a worker thread with a store connection of its own,
so intake and the batch writer go on meanwhile (retention deletes in short
transactions, see :mod:`gitaudit.store.retention`); its ``audit.retention``
records go to the daemon's chain with source ``daemon``. The first run is one
interval after start. A failed run is logged and retried at the next interval;
at shutdown the run in progress stops after its current batch (the next run
finishes what it left).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from gitaudit.config import Settings
from gitaudit.errors import GitauditError


def run_once(settings: Settings, stop: threading.Event) -> dict[str, Any]:
    """One retention run with the daemon's settings; its summary."""
    from gitaudit.store import Store
    from gitaudit.store.retention import RetentionOptions, recorder

    options = RetentionOptions.from_settings(settings, stop=stop)
    with Store.from_settings(settings, "daemon") as store:
        report = store.expire(options, recorder(store, settings, "daemon"))
    summary = report.as_dict()
    return {key: summary[key] for key in ("expired", "deleted", "duration_s")}


async def retention_loop(settings: Callable[[], Settings], log: Any) -> None:
    """Run retention every ``retention_interval`` seconds (re-read each time) until cancelled."""
    stop = threading.Event()
    try:
        while True:
            interval = settings().retention_interval
            if interval <= 0:
                return
            await asyncio.sleep(interval)
            try:
                summary = await asyncio.to_thread(run_once, settings(), stop)
            except GitauditError as exc:
                log.error(  # noqa: TRY400 - an operator error: message and hint suffice
                    "retention_failed", error=exc.message, hint=exc.hint
                )
            except Exception:
                log.exception("retention_failed")
            else:
                log.info("retention", **summary)
    finally:
        stop.set()
