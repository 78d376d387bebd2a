"""Subprocess entry points for the store tests (real, separate writer processes).

    python -m tests.store.worker append URL CHAIN BATCHES BATCH_SIZE
    python -m tests.store.worker open URL READY_FILE GO_FILE
    python -m tests.store.worker ingest URL SPOOL_DIR BATCH_SIZE MODE KILL_AT

``ingest`` SIGKILLs itself during its KILL_AT-th append: ``after-commit`` right
after that batch committed, ``mid-transaction`` after its rows were inserted
but before the commit.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from gitaudit.config import Settings
from gitaudit.store import Store, ingest
from gitaudit.store.writer import ChainWriter
from tests.store.helpers import make_records

# gitaudit.store.ingest (the attribute) is the function; fetch the module by name
ingest_module: Any = importlib.import_module("gitaudit.store.ingest")


def _append(url: str, chain: str, batches: int, size: int) -> None:
    with Store.open(url, chain_id=chain) as store:
        for number in range(batches):
            store.append(make_records(size, start=number * size))


def _open(url: str, ready: Path, go: Path) -> None:
    ready.touch()
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    with Store.open(url, chain_id=f"opener-{os.getpid()}") as store:
        store.append(make_records(3))


def _killing(original: Any, kill_at: int) -> Any:
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        result = original(*args, **kwargs)
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    return wrapper


def _ingest(url: str, spool_dir: str, batch: int, mode: str, kill_at: int) -> None:
    ingest_module.BATCH_SIZE = batch
    if mode == "after-commit":
        Store.append = _killing(Store.append, kill_at)  # type: ignore[method-assign]
    else:
        ChainWriter.append = _killing(ChainWriter.append, kill_at)  # type: ignore[method-assign]
    settings = Settings({"database_url": url, "spool_dir": Path(spool_dir), "chain_id": "ingest"})
    ingest(settings)


def main(argv: list[str]) -> None:
    """Dispatch on the first argument."""
    command, *args = argv
    if command == "append":
        _append(args[0], args[1], int(args[2]), int(args[3]))
    elif command == "open":
        _open(args[0], Path(args[1]), Path(args[2]))
    elif command == "ingest":
        _ingest(args[0], args[1], int(args[2]), args[3], int(args[4]))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
