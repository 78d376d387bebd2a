"""Helpers the benchmarks share: an isolated git environment, timing, import costs."""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

ROOT = Path(__file__).resolve().parent.parent


def isolated_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Own HOME and git config with a pinned identity, spool in ``tmp``, no daemon, level all.

    PYTHONDONTWRITEBYTECODE is dropped, as for an installed (byte-compiled) package.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GIT_", "GITAUDIT_", "XDG_")) and key != "PYTHONDONTWRITEBYTECODE"
    }
    (tmp / "home").mkdir()
    (tmp / "gitconfig").write_text(
        "[user]\n\tname = Bench\n\temail = bench@example.com\n[init]\n\tdefaultBranch = main\n"
    )
    env.update(
        HOME=str(tmp / "home"),
        XDG_DATA_HOME=str(tmp / "data"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=str(tmp / "gitconfig"),
        GITAUDIT_SPOOL_DIR=str(tmp / "spool"),
        GITAUDIT_RUNTIME_DIR=str(tmp / "no-daemon"),
        GITAUDIT_LEVEL="all",  # measure the recording path, not the policy drop
        GITAUDIT_CONFIG=str(tmp / "none.toml"),
        **extra,
    )
    return env


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall seconds of one run of ``argv`` (stdout discarded; a failure raises)."""
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def print_importtime(argv: list[str], cwd: Path, env: dict[str, str], title: str, top: int) -> None:
    """Run ``argv`` (a python command with ``-X importtime``) and print its heaviest imports."""
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=True)
    rows = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            self_part, cumulative, name = line[len("import time:") :].split("|", 2)
            rows.append((int(cumulative), int(self_part), name.rstrip()))
    print(f"\nheaviest imports on {title} (-X importtime, one run):")
    for cumulative, self_us, name in sorted(rows, reverse=True)[:top]:
        print(f"  {cumulative / 1000:7.2f} ms cumulative {self_us / 1000:6.2f} ms self  {name}")


def spooled(env: dict[str, str]) -> int:
    """Events in the spool so far (lines of its active segment)."""
    try:
        with open(os.path.join(env["GITAUDIT_SPOOL_DIR"], "active.jsonl"), "rb") as handle:
            return handle.read().count(b"\n")
    except FileNotFoundError:
        return 0


def settle(env: dict[str, str], expected: int) -> None:
    """Wait (untimed) until ``expected`` events are spooled: a hook that detached its
    delivery (GITAUDIT_HOOK_DETACH) must not lend its background work to the next command."""
    deadline = time.monotonic() + 10
    while spooled(env) < expected:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {spooled(env)} of {expected} events spooled after 10 s")
        time.sleep(0.001)


def runs_and_git(doc: str) -> tuple[argparse.Namespace, str]:
    """``--runs N`` and ``--importtime`` from the command line, and the git to run; the
    package is byte-compiled first, as an installed one is."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--importtime", action="store_true", help="also show import costs")
    args = parser.parse_args()
    compileall.compile_dir(str(ROOT / "gitaudit"), quiet=1)
    return args, shutil.which("git") or "git"


def pg_bench_store(stack: ExitStack, url: str | None) -> tuple[str, Engine]:
    """``url`` or, when None, the new database ``bench`` of a throw-away PostgreSQL cluster
    (stopped when ``stack`` closes), migrated to head; and an engine on it (disposed then)."""
    from gitaudit.store import migrate
    from gitaudit.store.engine import create_store_engine

    if url is None:
        from tests.pg import throwaway_cluster

        server = stack.enter_context(throwaway_cluster())
        server.admin("CREATE DATABASE bench")
        url = server.url("bench")
    migrate(url)
    engine = create_store_engine(url)
    stack.callback(engine.dispose)
    return url, engine
