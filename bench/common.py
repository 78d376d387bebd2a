"""Helpers the benchmarks share: an isolated git environment, timing, import costs."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

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
