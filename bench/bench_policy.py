"""Policy effect: rows written for a realistic mixed workload at `all` vs `writes_only`.

Replays the same git session twice through the real wrapper (`gitaudit git`),
once with GITAUDIT_LEVEL=all and once with the default writes_only, in fresh
repositories, then ingests each spool into its own SQLite store and counts
rows. The session is 90% reads (status, diff, log, rev-parse, show: what an IDE
polls) and 10% writes (commit, checkout -b, branch -d, tag, fetch, push).

    .venv/bin/python bench/bench_policy.py [--commands 300]

The baseline is the `all` run of the same session, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

READS = [["status"], ["diff"], ["log", "-1", "--oneline"], ["rev-parse", "HEAD"], ["show", "-s"]]


def session(commands: int) -> list[list[str]]:
    """90% reads cycling through READS, every tenth command a write."""
    plan: list[list[str]] = []
    writes = 0
    for index in range(commands):
        if index % 10 == 9:
            writes += 1
            plan.extend(_write(writes))
        else:
            plan.append(READS[index % len(READS)])
    return plan


def _write(n: int) -> list[list[str]]:
    kind = n % 5
    if kind == 0:
        return [["commit", "-q", "--allow-empty", "-m", f"change {n}"]]
    if kind == 1:
        return [["checkout", "-q", "-b", f"topic-{n}"]]
    if kind == 2:
        return [["checkout", "-q", "main"]]
    if kind == 3:
        return [["fetch", "-q", "origin"]]
    return [["push", "-q", "origin", "HEAD:refs/heads/main"]]


def _env(base: Path, level: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITAUDIT_", "XDG_"))}
    (base / "home").mkdir()
    (base / "gitconfig").write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n")
    env.update(
        HOME=str(base / "home"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=str(base / "gitconfig"),
        GITAUDIT_LEVEL=level,
        GITAUDIT_SPOOL_DIR=str(base / "spool"),
        GITAUDIT_DATABASE_URL=f"sqlite:///{base / 'audit.db'}",
        GITAUDIT_CONFIG=str(base / "none.toml"),
        XDG_STATE_HOME=str(base / "state"),
        TMPDIR=str(base),
    )
    return env


def _setup(base: Path, env: dict[str, str]) -> Path:
    remote = base / "remote.git"
    work = base / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True, env=env)
    subprocess.run(
        ["git", "clone", "-q", str(remote), str(work)],
        check=True,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "root"], cwd=work, check=True, env=env
    )
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=work, check=True, env=env)
    return work


def run(level: str, plan: list[list[str]]) -> tuple[int, float]:
    """Rows stored and seconds spent for one replay of ``plan`` at ``level``."""
    with tempfile.TemporaryDirectory(prefix="gitaudit-bench-policy-") as tmp:
        base = Path(tmp)
        env = _env(base, level)
        work = _setup(base, env)
        gitaudit = [sys.executable, "-m", "gitaudit"]
        start = time.perf_counter()
        for args in plan:
            subprocess.run([*gitaudit, "git", *args], cwd=work, env=env, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        elapsed = time.perf_counter() - start
        subprocess.run([*gitaudit, "ingest"], env=env, check=True, stdout=subprocess.DEVNULL)
        with sqlite3.connect(base / "audit.db") as conn:
            rows = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        return int(rows), elapsed


def main() -> None:
    """Replay the session at both levels and print rows and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=300)
    args = parser.parse_args()
    plan = session(args.commands)
    reads = sum(1 for command in plan if command in READS)
    print(f"workload: {len(plan)} git commands, {reads} reads ({reads / len(plan):.0%})")
    all_rows, all_time = run("all", plan)
    writes_rows, writes_time = run("writes_only", plan)
    print(f"level=all          {all_rows:5d} rows   ({all_time:.1f}s of git through the wrapper)")
    print(f"level=writes_only  {writes_rows:5d} rows   ({writes_time:.1f}s)")
    print(f"ratio writes_only/all: {writes_rows / all_rows:.2f}x rows "
          f"({all_rows - writes_rows} rows not written)")  # fmt: skip


if __name__ == "__main__":
    main()
