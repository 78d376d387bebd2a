"""Conflicts seen by a REAL daemon subprocess through git's trace2 (global config).

Plain git 2.39 in an isolated HOME sends trace2 to the daemon's socket
(`gitaudit trace2 enable --global`); real conflicting histories; the daemon
stores what it recorded in its SQLite store. With the wrapper too, each
conflict event is stored once.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from tests.capture.test_conflict_lifecycle import FILES, KINDS, assert_each_ended_once
from tests.daemon.daemon_harness import DaemonRun, Daemons, send_trace2_to, wait_for
from tests.gitfixtures import (
    STOP_KINDS,
    GitSandbox,
    conflicting_branches,
    diverge_and_merge,
    resolve,
    stopping,
)

EDITOR = {"GIT_EDITOR": "true"}


def traced(sandbox: GitSandbox, daemons: Daemons) -> DaemonRun:
    """A running daemon; plain git in the sandbox sends it trace2; the wrapper its events."""
    return send_trace2_to(daemons().start(), sandbox)


def stored_conflicts(run: DaemonRun, count: int) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        try:
            found = [e for e in run.stored() if e["operation"].startswith("conflict.")]
        except Exception:  # noqa: BLE001 - the store may not exist yet
            return None
        return found if len(found) >= count else None

    found: list[dict[str, Any]] = wait_for(enough, f"{count} conflict events stored")
    return found


def test_plain_git_merge_conflict_resolved(sandbox: GitSandbox, daemons: Daemons) -> None:
    run = traced(sandbox, daemons)
    repo = conflicting_branches(sandbox)
    assert sandbox.git("merge", "topic", cwd=repo, check=False).returncode == 1
    [detected] = stored_conflicts(run, 1)
    merge = next(e for e in run.stored() if e["id"] == detected["parent_id"])
    assert (merge["operation"], merge["source"]) == ("git.merge", "trace2")
    assert detected["source"] == "trace2"
    assert detected["correlation_id"] == merge["correlation_id"]
    assert detected["details"]["files"] == [
        {"path": "added.txt", "kind": "add_add", "hunks": 1},
        {"path": "content.txt", "kind": "content", "hunks": 1},
        {"path": "modify_delete.txt", "kind": "modify_delete", "hunks": 0},
        {"path": "moved.txt", "kind": "rename", "hunks": 0},
    ]
    for path in FILES:
        resolve(sandbox, repo, path, "manual")
    assert sandbox.git("commit", "--no-edit", cwd=repo, env=EDITOR).returncode == 0
    _, resolved = stored_conflicts(run, 2)
    assert resolved["operation"] == "conflict.resolved"
    assert resolved["parent_id"] == detected["id"]
    assert resolved["correlation_id"] == detected["correlation_id"]
    assert resolved["details"]["files"] == [
        {"path": path, "kind": KINDS[path], "resolution": "manual"} for path in FILES
    ]
    assert resolved["details"]["result_commit"] == sandbox.out("rev-parse", "HEAD", cwd=repo)


def test_plain_git_rebase_abort(sandbox: GitSandbox, daemons: Daemons) -> None:
    run = traced(sandbox, daemons)
    repo = conflicting_branches(sandbox, on="topic")
    assert sandbox.git("rebase", "main", cwd=repo, check=False).returncode != 0
    [detected] = stored_conflicts(run, 1)
    assert detected["details"]["stopped_in"] == "rebase"
    assert sandbox.git("rebase", "--abort", cwd=repo).returncode == 0
    _, aborted = stored_conflicts(run, 2)
    assert aborted["operation"] == "conflict.aborted"
    assert aborted["details"]["action"] == "abort"
    assert aborted["parent_id"] == detected["id"]


def test_wrapper_and_trace2_store_one_of_each(sandbox: GitSandbox, daemons: Daemons) -> None:
    run = traced(sandbox, daemons)
    repo = conflicting_branches(sandbox)
    # the wrapper gives its git its own trace2 target in place of the daemon's: the daemon
    # gets the wrapper's events, not a second copy of the command through trace2
    assert sandbox.audited("cherry-pick", "topic", cwd=repo).returncode != 0
    for path, how in (("content.txt", "theirs"), ("added.txt", "manual"),
                      ("modify_delete.txt", "ours"), ("moved.txt", "deleted")):
        resolve(sandbox, repo, path, how)
    done = sandbox.audited("cherry-pick", "--continue", cwd=repo, env=EDITOR)
    assert done.returncode == 0, done.stderr
    detected, resolved = stored_conflicts(run, 2)
    sandbox.git("tag", "sentinel", cwd=repo)  # plain git: trace2; stored after any twin
    wait_for(lambda: any(e["operation"] == "git.tag" for e in run.stored()) or None,
             "the plain git tag recorded through trace2")
    stored = run.stored()
    picks = [e for e in stored if e["operation"] == "git.cherry_pick"]
    assert [e["source"] for e in picks] == ["wrapper", "wrapper"]  # the stop, the --continue
    assert run.metric_sum("gitaudit_events_duplicate_total") == 0  # no twin was even sent
    conflict_events = [e for e in stored if e["operation"].startswith("conflict.")]
    assert [e["operation"] for e in conflict_events] == ["conflict.detected",
                                                         "conflict.resolved"]
    assert resolved["parent_id"] == detected["id"]
    assert {f["path"]: f["resolution"] for f in resolved["details"]["files"]} == {
        "content.txt": "theirs", "added.txt": "manual", "modify_delete.txt": "ours",
        "moved.txt": "deleted",
    }


@pytest.mark.parametrize("kind", STOP_KINDS)
def test_one_ending_per_conflict_whatever_git_leaves_behind(
    sandbox: GitSandbox, daemons: Daemons, kind: str
) -> None:
    run = traced(sandbox, daemons)
    stop = stopping(sandbox, kind)
    assert sandbox.git(*stop.start, cwd=stop.repo, env=EDITOR, check=False).returncode != 0
    stored_conflicts(run, 1)  # the daemon looks at a stop once it has the command's record
    resolve(sandbox, stop.repo, "a.txt", "manual")
    assert sandbox.git(*stop.conclude, cwd=stop.repo, env=EDITOR).returncode == 0
    stored_conflicts(run, 2)
    diverge_and_merge(sandbox, stop.repo, partial(sandbox.git, check=False),
                      stopped=lambda: stored_conflicts(run, 3))
    stored_conflicts(run, 4)
    sandbox.git("tag", "sentinel", cwd=stop.repo)  # recorded after anything still on its way
    wait_for(lambda: any(e["operation"] == "git.tag" for e in run.stored()) or None,
             "the plain git tag recorded through trace2")
    assert_each_ended_once(
        [e for e in run.stored() if e["operation"].startswith("conflict.")], stop.stopped_in)
