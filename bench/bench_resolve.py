"""How long does `gitaudit resolve --yes` take for 50 conflicted files, model latency aside?

In a temporary directory, a repository whose merge stops on 50 conflicted
files (each a ~40-line file both sides edited); a fake Anthropic endpoint on
loopback answers every request at once (keeping "theirs"), so what is
measured is gitaudit's own work: reading the index stages, masking secrets,
the SDK's HTTP round trips, checking, writing, `git add`, recording every
`claude.request` and `conflict.resolved` event (spool, no daemon). Per round,
the merge is aborted and redone, then timed:

- `gitaudit resolve --yes` (end to end: a fresh process, as a user runs it);
- baseline "checkout": the same 50 files resolved by `git checkout --theirs`
  then `git add`, one file at a time (what a script without Claude does);
- baseline "http": a fresh Python process that imports the SDK and makes the
  same 50 Messages calls, sequentially, with a plain `anthropic.Anthropic`.

Prints medians, the ratios against both baselines and the target
(< 5 s: dominated by the model's own latency in real use).

    .venv/bin/python bench/bench_resolve.py [--files 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, isolated_env  # bench/common.py

sys.path.insert(0, str(ROOT))
from tests.claude.fakeapi import FakeAnthropic

TARGET_SECONDS = 5.0
GIT = "git"

HTTP_SCRIPT = """
import sys, anthropic
client = anthropic.Anthropic()
for number in range(int(sys.argv[1])):
    text = f"<theirs>\\nfile {number}\\n</theirs>"
    client.messages.create(model="claude-sonnet-5-5", max_tokens=20000,
                           messages=[{"role": "user", "content": text}])
"""


def git(repo: Path, env: dict[str, str], *args: str, check: bool = True) -> int:
    return subprocess.run([GIT, *args], cwd=repo, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=check).returncode


def content(number: int, side: str) -> str:
    lines = [f"line {i} of file {number}" for i in range(40)]
    lines[20] = f"{side} edit of file {number}"
    return "\n".join(lines) + "\n"


def build(repo: Path, env: dict[str, str], files: int) -> list[str]:
    repo.mkdir()
    git(repo, env, "init", "-q", "-b", "main")
    names = [f"src/file{number:03}.txt" for number in range(files)]
    (repo / "src").mkdir()
    for side in ("base", "topic", "main"):
        if side == "topic":
            git(repo, env, "checkout", "-q", "-b", "topic")
        if side == "main":
            git(repo, env, "checkout", "-q", "main")
        for number, name in enumerate(names):
            (repo / name).write_text(content(number, side))
        git(repo, env, "add", "-A")
        git(repo, env, "commit", "-q", "-m", side)
    return names


def stop(repo: Path, env: dict[str, str]) -> None:
    git(repo, env, "merge", "--abort", check=False)
    git(repo, env, "reset", "-q", "--hard", "main")
    assert git(repo, env, "merge", "topic", check=False) == 1, "the merge did not stop"


def timed(argv: list[str], repo: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=repo, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    compileall.compile_dir(str(ROOT / "gitaudit"), quiet=1)
    gitaudit = str(Path(sys.executable).parent / "gitaudit")
    results: dict[str, list[float]] = {"resolve": [], "checkout": [], "http": []}
    with tempfile.TemporaryDirectory() as folder, FakeAnthropic() as fake:
        tmp = Path(folder)
        env = isolated_env(tmp, PYTHONPATH=str(ROOT), **fake.env())
        repo = tmp / "repo"
        names = build(repo, env, options.files)
        for _ in range(options.rounds):
            stop(repo, env)
            before = len(fake.bodies)
            results["resolve"].append(timed([gitaudit, "resolve", "--yes"], repo, env))
            assert len(fake.bodies) - before == options.files, "not every file was sent"
            left = subprocess.run([GIT, "ls-files", "-u"], cwd=repo, env=env,
                                  capture_output=True, text=True, check=True).stdout
            assert not left, f"files left unresolved:\n{left}"
            stop(repo, env)
            start = time.perf_counter()
            for name in names:
                git(repo, env, "checkout", "--theirs", "--", name)
                git(repo, env, "add", "--", name)
            results["checkout"].append(time.perf_counter() - start)
            results["http"].append(timed(
                [sys.executable, "-c", HTTP_SCRIPT, str(options.files)], repo, env))
        spooled = sum(1 for path in (tmp / "spool").glob("*.jsonl")
                      for _ in path.read_text().splitlines())
    median = {name: statistics.median(values) for name, values in results.items()}
    print(f"{options.files} conflicted files, {options.rounds} rounds (median of each):")
    print(f"  gitaudit resolve --yes           {median['resolve']:7.3f} s  "
          f"({median['resolve'] / options.files * 1000:.1f} ms per file)")
    print(f"  checkout --theirs + add per file {median['checkout']:7.3f} s  "
          f"-> resolve is {median['resolve'] / median['checkout']:.2f}x")
    print(f"  bare SDK: {options.files} round trips      {median['http']:7.3f} s  "
          f"-> resolve is {median['resolve'] / median['http']:.2f}x")
    print(f"  events spooled over all rounds: {spooled}")
    verdict = "met" if median["resolve"] < TARGET_SECONDS else "NOT met"
    print(f"target < {TARGET_SECONDS:.0f} s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
