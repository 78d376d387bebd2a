"""What does trace2 streaming to the daemon's receiver cost git?

A live receiver (:class:`gitaudit.daemon.trace2_receiver.Trace2Receiver` with
an intake that only counts) runs in a separate process on a Unix socket. In a
temporary 1,000-file repository, `git status` and `git commit` run
interleaved (so drift hits all alike), N times each, with trace2 streaming to
the receiver exactly as `gitaudit trace2 enable` configures it (event target,
brief lines, envVars, configParams) and without trace2. Prints medians and
the ratio. Target: <= 1.05x.

Two more modes in the same run tell git's own share from the receiver's:
``devnull`` (the same trace2 settings, events written to /dev/null: what
git pays to produce the stream) and ``sink`` (a socket reader that discards
every byte: the floor for any receiver on a Unix socket).

    .venv/bin/python bench/bench_trace2.py [--runs 30] [--files 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 1.05
IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
}


class CountingIntake:
    """Accepts and counts (the store's cost is not what this measures)."""

    def __init__(self, counter: Any) -> None:
        self.counter = counter

    async def accept(self, events: Sequence[dict[str, Any]], *, peer: Any,
                     source: str) -> list[Any]:
        from gitaudit.daemon.api import ACCEPTED, Ack

        del peer, source
        with self.counter.get_lock():
            self.counter.value += len(events)
        return [Ack(event.get("id"), ACCEPTED) for event in events]


def serve(socket_path: str, ready: Any, counter: Any) -> None:
    """The receiver process: serve trace2 connections until terminated."""
    from gitaudit.config import Settings
    from gitaudit.daemon.metrics import Metrics
    from gitaudit.daemon.trace2_receiver import Trace2Receiver

    async def main() -> None:
        receiver = Trace2Receiver(CountingIntake(counter), Settings(), Metrics())
        server = await asyncio.start_unix_server(receiver.handle, socket_path)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def discard(socket_path: str, ready: Any) -> None:
    """The floor receiver: accept connections and read until EOF, keeping nothing."""

    async def drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    async def main() -> None:
        server = await asyncio.start_unix_server(drain, socket_path)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def make_repo(folder: Path, files: int, env: dict[str, str]) -> Path:
    repo = folder / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], env=env, check=True)
    for number in range(files):
        sub = repo / f"d{number % 20}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{number}.txt").write_text(f"line {number}\n")
    subprocess.run(["git", "add", "."], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "base"], cwd=repo, env=env, check=True)
    return repo


def timed(args: list[str], repo: Path, env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(["git", *args], cwd=repo, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--files", type=int, default=1000)
    options = parser.parse_args()
    from gitaudit.capture import context

    with tempfile.TemporaryDirectory(prefix="ga-bench-t2-", dir="/tmp") as tmp:
        folder = Path(tmp)
        plain = {key: value for key, value in os.environ.items()
                 if not key.startswith(("GIT_", "GITAUDIT_"))}
        plain.update(IDENTITY, GIT_CONFIG_NOSYSTEM="1",
                     GIT_CONFIG_GLOBAL=str(folder / "gitconfig"), HOME=str(folder))
        (folder / "gitconfig").write_text("")
        socket_path = str(folder / "trace2.sock")
        sink_path = str(folder / "sink.sock")
        settings = {
            **plain,
            "GIT_TRACE2_EVENT_BRIEF": "1",
            "GIT_TRACE2_ENV_VARS": ",".join(context.TRACE2_ENV_VARS),
            "GIT_TRACE2_CONFIG_PARAMS": "user.name,user.email,remote.*.url",
        }
        traced = {**settings, "GIT_TRACE2_EVENT": f"af_unix:stream:{socket_path}"}
        modes = (
            ("plain", plain),
            ("trace2", traced),
            ("devnull", {**settings, "GIT_TRACE2_EVENT": "/dev/null"}),
            ("sink", {**settings, "GIT_TRACE2_EVENT": f"af_unix:stream:{sink_path}"}),
        )
        repo = make_repo(folder, options.files, plain)
        ready, counter = multiprocessing.Event(), multiprocessing.Value("i", 0)
        receiver = multiprocessing.Process(target=serve, args=(socket_path, ready, counter))
        receiver.start()
        ready.wait(30)
        sink_ready = multiprocessing.Event()
        sink = multiprocessing.Process(target=discard, args=(sink_path, sink_ready))
        sink.start()
        sink_ready.wait(30)
        commands = {"status": ["status"],
                    "commit": ["commit", "-q", "--allow-empty", "-m", "x"]}
        samples: dict[tuple[str, str], list[float]] = {}
        try:
            for run in range(options.runs + 2):
                for name, args in commands.items():
                    for mode, env in modes:
                        took = timed(args, repo, env)
                        if run >= 2:  # warm-up runs are not counted
                            samples.setdefault((name, mode), []).append(took)
            time.sleep(1.0)
        finally:
            for process in (receiver, sink):
                process.terminate()
                process.join(10)
        print(f"{options.files}-file repository, {options.runs} interleaved runs each, "
              f"load average {os.getloadavg()[0]:.2f}")
        worst = 0.0
        for name in commands:
            base = statistics.median(samples[(name, "plain")]) * 1000
            with_trace = statistics.median(samples[(name, "trace2")]) * 1000
            ratio = with_trace / base
            worst = max(worst, ratio)
            devnull = statistics.median(samples[(name, "devnull")]) * 1000
            floor = statistics.median(samples[(name, "sink")]) * 1000
            print(f"  git {name:<7} plain {base:7.2f} ms   trace2 {with_trace:7.2f} ms   "
                  f"ratio {ratio:.3f}x")
            print(f"  {'':11} git's own share: to /dev/null {devnull:7.2f} ms "
                  f"({devnull / base:.3f}x), to a discarding socket {floor:7.2f} ms "
                  f"({floor / base:.3f}x); the receiver vs that floor {with_trace / floor:.3f}x")
        expected = options.runs * len(commands) + 2 * len(commands)
        print(f"records the receiver delivered: {counter.value} (expected {expected})")
        print(f"worst ratio {worst:.3f}x (target <= {TARGET_RATIO}x): "
              f"{'ok' if worst <= TARGET_RATIO else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
