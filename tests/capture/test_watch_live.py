"""`gitaudit watch` end to end: a real watcher process, real inotify, pygit2 and real git.

No daemon runs here (``GITAUDIT_RUNTIME_DIR`` points at an empty directory),
so events land in the sandbox spool, and the watcher learns about git's own
commands from what the wrapper and hooks spool. "No watcher event" is checked
by making a pygit2 write afterwards and waiting for *its* event: the watcher
decides changes in the order it saw them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pygit2
import pytest

from gitaudit.capture import watcher
from tests.daemon.daemon_harness import wait_for
from tests.gitfixtures import GitSandbox, gitaudit_command

DEADLINE = 30.0
WINDOW = "0.5"


class WatchRun:
    """A `gitaudit watch` subprocess and its stderr."""

    def __init__(self, sandbox: GitSandbox, *paths: Path, extra: tuple[str, ...] = ()) -> None:
        self.sandbox = sandbox
        self.log = sandbox.root / "watch.log"
        self.handle = self.log.open("wb")
        self.process = subprocess.Popen(
            [*gitaudit_command(), "watch", *map(str, paths), "--window", WINDOW, *extra],
            env=watch_env(sandbox), stdout=self.handle, stderr=subprocess.STDOUT,
            cwd=sandbox.root,
        )
        wait_for(lambda: "watching" in self.output() or self.process.poll() is not None,
                 "the watcher to start")
        assert self.process.poll() is None, self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(DEADLINE)
        self.handle.close()
        return code

    def watcher_events(self) -> list[dict[str, Any]]:
        return [e for e in self.sandbox.events() if e["source"] == "watcher"]

    def wait_events(self, count: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = wait_for(
            lambda: len(self.watcher_events()) >= count and self.watcher_events(),
            f"{count} watcher event(s); log:\n{self.output()}")
        return found

    def sentinel(self, repo: Path, name: str) -> list[dict[str, Any]]:
        """Create a branch with pygit2, wait for its event; the watcher events before it.

        Made after the watcher's tolerance, so that git's last command does not explain it.
        """
        time.sleep(watcher.TOLERANCE + 0.3)
        lib = pygit2.Repository(str(repo))
        lib.create_branch(name, lib.head.peel(pygit2.Commit))
        def arrived() -> list[dict[str, Any]] | None:
            events = self.watcher_events()
            return events if any(e["details"]["ref"] == f"refs/heads/{name}" for e in events) \
                else None

        events = wait_for(arrived, f"the sentinel {name}; log:\n{self.output()}")
        return [e for e in events if e["details"]["ref"] != f"refs/heads/{name}"]


def watch_env(sandbox: GitSandbox) -> dict[str, str]:
    return sandbox.environ({"GITAUDIT_RUNTIME_DIR": str(sandbox.root / "no-daemon")})



@pytest.fixture
def runs() -> Iterator[list[WatchRun]]:
    started: list[WatchRun] = []
    yield started
    for run in started:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()
        run.handle.close()


def start(runs: list[WatchRun], sandbox: GitSandbox, *paths: Path) -> WatchRun:
    run = WatchRun(sandbox, *paths)
    runs.append(run)
    return run


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str | None, str | None]]:
    return [(e["details"]["ref"], e["details"]["old"], e["details"]["new"]) for e in events]


def test_pygit2_ref_writes_are_recorded(sandbox: GitSandbox, runs: list[WatchRun]) -> None:
    repo = sandbox.repo()
    base = sandbox.out("rev-parse", "HEAD", cwd=repo)
    sandbox.git("branch", "packed", cwd=repo)
    sandbox.git("pack-refs", "--all", cwd=repo)
    second = sandbox.commit(repo, {"f": "2\n"}, "second")
    run = start(runs, sandbox, repo)
    lib = pygit2.Repository(str(repo))
    lib.create_branch("feature", lib.head.peel(pygit2.Commit))
    run.wait_events(1)
    lib.references.create("refs/tags/v1", base)
    run.wait_events(2)
    lib.references["refs/heads/packed"].set_target(second)
    run.wait_events(3)
    lib.references.delete("refs/heads/feature")
    run.wait_events(4)
    lib.set_head(pygit2.Oid(hex=base))
    events = run.wait_events(5)
    assert summary(events) == [
        ("refs/heads/feature", None, second),
        ("refs/tags/v1", None, base),
        ("refs/heads/packed", base, second),
        ("refs/heads/feature", second, None),
        ("HEAD", second, base),
    ]
    assert [e["category"] for e in events] == ["create", "create", "update", "delete", "update"]
    assert events[4]["details"]["symref_from"] == "refs/heads/main"
    assert all(e["operation"] == "ref.update" and e["actor"]["verified"] is False
               for e in events)
    assert run.stop() == 0
    assert "5 change(s) recorded" in run.output()


def test_git_through_the_wrapper_is_not_recorded_twice(sandbox: GitSandbox,
                                                       runs: list[WatchRun]) -> None:
    repo = sandbox.repo()
    run = start(runs, sandbox, repo)
    (repo / "f").write_text("x\n")
    assert sandbox.audited("add", "f", cwd=repo).returncode == 0
    assert sandbox.audited("commit", "-q", "-m", "wrapped", cwd=repo).returncode == 0
    assert sandbox.audited("branch", "wrapped-branch", cwd=repo).returncode == 0
    assert sandbox.audited("checkout", "-q", "-b", "wrapped-co", cwd=repo).returncode == 0
    assert sandbox.audited("tag", "wrapped-tag", cwd=repo).returncode == 0
    assert run.sentinel(repo, "sentinel") == []
    assert run.stop() == 0
    assert "made by git itself" in run.output()


def test_git_seen_by_installed_hooks_is_not_recorded(sandbox: GitSandbox,
                                                     runs: list[WatchRun]) -> None:
    repo = sandbox.repo()
    subprocess.run([*gitaudit_command(), "hooks", "install", "--repo", str(repo), "--with",
                    "reference-transaction"], env=watch_env(sandbox), check=True,
                   capture_output=True)
    run = start(runs, sandbox, repo)
    sandbox.commit(repo, {"g": "1\n"}, "hooked")
    sandbox.git("branch", "hooked-branch", cwd=repo)
    sandbox.git("checkout", "-q", "hooked-branch", cwd=repo)
    assert any(e["source"] == "hook" for e in sandbox.events())
    assert run.sentinel(repo, "sentinel") == []


def test_a_tool_writing_right_next_to_a_hooked_commit_is_still_recorded(
    sandbox: GitSandbox, runs: list[WatchRun]
) -> None:
    repo = sandbox.repo()
    subprocess.run([*gitaudit_command(), "hooks", "install", "--repo", str(repo)],
                   env=watch_env(sandbox), check=True, capture_output=True)
    run = start(runs, sandbox, repo)
    lib = pygit2.Repository(str(repo))
    target = str(lib.head.peel(pygit2.Commit).id)
    lib.create_branch("tool-made", lib.head.peel(pygit2.Commit))
    sandbox.commit(repo, {"n": "1\n"}, "a moment later, through git")  # post-commit: HEAD, main
    assert summary(run.sentinel(repo, "sentinel")) == [("refs/heads/tool-made", None, target)]


def test_plain_git_without_any_capture_path_is_recorded(sandbox: GitSandbox,
                                                        runs: list[WatchRun]) -> None:
    repo = sandbox.repo()
    base = sandbox.out("rev-parse", "HEAD", cwd=repo)
    run = start(runs, sandbox, repo)
    sandbox.git("branch", "unseen", cwd=repo)  # nothing else saw it: the watcher is right
    assert summary(run.wait_events(1)) == [("refs/heads/unseen", None, base)]


def test_not_a_repository_is_a_clear_error(sandbox: GitSandbox) -> None:
    result = subprocess.run([*gitaudit_command(), "watch", str(sandbox.tmp)],
                            env=watch_env(sandbox), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "not a git repository" in result.stderr
    assert "hint:" in result.stderr


def test_a_deleted_repository_does_not_stop_the_others(sandbox: GitSandbox,
                                                       runs: list[WatchRun]) -> None:
    doomed = sandbox.repo("doomed")
    kept = sandbox.repo("kept")
    run = start(runs, sandbox, doomed, kept)
    shutil.rmtree(doomed)
    wait_for(lambda: "watched_repo_gone" in run.output(), "the deleted repository to be logged")
    lib = pygit2.Repository(str(kept))
    lib.create_branch("still", lib.head.peel(pygit2.Commit))
    events = run.wait_events(1)
    assert summary(events)[0][0] == "refs/heads/still"
    assert [e for e in events if e["repo"]["path"] == os.path.realpath(doomed)] == []
    assert run.stop() == 0
