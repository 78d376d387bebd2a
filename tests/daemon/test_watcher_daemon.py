"""The repo watcher inside the real daemon (``watch_repos``), with real git, trace2 and pygit2."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pygit2

from gitaudit.capture import watcher
from gitaudit.catalog import now_rfc3339, uuid7
from tests.daemon.daemon_harness import DaemonRun, Daemons, make_event, wait_for
from tests.gitfixtures import GitSandbox, gitaudit_command


def watcher_rows(run: DaemonRun) -> list[dict[str, Any]]:
    try:
        return [e for e in run.stored() if e["source"] == "watcher"]
    except Exception:  # noqa: BLE001 - the store may not exist yet
        return []


def wait_ref(run: DaemonRun, ref: str) -> list[dict[str, Any]]:
    """Every stored watcher event, once one for ``ref`` is there."""
    rows: list[dict[str, Any]] = wait_for(
        lambda: (rows := watcher_rows(run)) and any(r["details"]["ref"] == ref for r in rows)
        and rows, f"a watcher event for {ref}; log:\n{run.log()[-3000:]}")
    return rows


def start_watching(daemons: Daemons, *repos: Path, **config: Any) -> DaemonRun:
    run = daemons(config={"watch_repos": [str(repo) for repo in repos], "watch_window": 0.5,
                          **config})
    run.start()
    wait_for(lambda: "watching" in run.log(), "the daemon's watcher to start")
    return run


def test_pygit2_write_becomes_a_stored_row(daemons: Daemons, sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    base = sandbox.out("rev-parse", "HEAD", cwd=repo)
    run = start_watching(daemons, repo)
    lib = pygit2.Repository(str(repo))
    lib.create_branch("from-libgit2", lib.head.peel(pygit2.Commit))
    rows = wait_ref(run, "refs/heads/from-libgit2")
    assert len(rows) == 1
    row = rows[0]
    assert row["operation"] == "ref.update" and row["category"] == "create"
    assert (row["details"]["old"], row["details"]["new"]) == (None, base)
    assert row["actor"]["verified"] is False
    assert row["repo"]["path"] == str(repo.resolve())
    assert run.stop() == 0


def test_git_heard_through_trace2_is_not_recorded_twice(daemons: Daemons,
                                                        sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    run = start_watching(daemons, repo)
    env = {"GITAUDIT_RUNTIME_DIR": str(run.runtime)}
    subprocess.run([*gitaudit_command(), "trace2", "enable", "--global"],
                   env=sandbox.environ(env), check=True, capture_output=True)
    sandbox.commit(repo, {"t": "1\n"}, "traced")
    sandbox.git("branch", "traced-branch", cwd=repo)
    sandbox.git("checkout", "-q", "traced-branch", cwd=repo)
    wait_for(lambda: sum(e["source"] == "trace2" and e["operation"] == "git.checkout"
                         for e in run.stored()), "the trace2 record of the checkout")
    time.sleep(watcher.TOLERANCE + 0.3)
    lib = pygit2.Repository(str(repo))
    lib.create_branch("sentinel", lib.head.peel(pygit2.Commit))
    rows = wait_ref(run, "refs/heads/sentinel")
    assert [row["details"]["ref"] for row in rows] == ["refs/heads/sentinel"]
    assert run.stop() == 0


def test_intake_drops_a_standalone_watchers_event_git_explains(daemons: Daemons) -> None:
    run = daemons().start()
    at = time.time()
    git = make_event(operation="git.branch", category="create", occurred_at=now_rfc3339(at),
                     duration_ms=200.0, repo={"path": "/srv/app", "name": "app"},
                     details={"subcommand": "branch", "argv": ["branch", "x"]})

    def watched(when: float) -> dict[str, Any]:
        details = {"ref": "refs/heads/x", "old": None, "new": "a" * 40, "created": True,
                   "deleted": False, "observed_at": now_rfc3339(when),
                   "repo_paths": ["/srv/app", "/srv/app/.git"]}
        return make_event(id=uuid7(), operation="ref.update", category="create",
                          source="watcher", occurred_at=now_rfc3339(when), duration_ms=None,
                          repo={"path": "/srv/app/.git", "name": "app"}, details=details)

    assert run.send([git])[0]["status"] == "accepted"
    acks = run.send([watched(at + 0.1), watched(at + 60)])
    assert [ack["status"] for ack in acks] == ["duplicate", "accepted"]


def test_a_bad_watch_path_is_logged_and_the_rest_watched(daemons: Daemons,
                                                         sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    run = start_watching(daemons, sandbox.tmp, repo)
    assert "watch_repo_invalid" in run.log()
    lib = pygit2.Repository(str(repo))
    lib.references.create("refs/tags/t1", lib.head.target)
    wait_ref(run, "refs/tags/t1")
    assert run.stop() == 0
