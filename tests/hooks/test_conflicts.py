"""The conflict lifecycle with plain git and gitaudit's hooks only (and with the wrapper too).

Real git runs the installed hooks on real conflicting histories. No hook runs
when git stops on a conflict, so the stop is recorded late, at the next hook
(``prepare-commit-msg`` when the user concludes, ``post-checkout`` when they
check a side out), and replayed in memory to recover each file's stages.
"""

from __future__ import annotations

import os
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from gitaudit import events
from gitaudit.capture import gitstate, hooks
from tests.capture.test_conflict_lifecycle import (
    FILES,
    KINDS,
    assert_each_ended_once,
    state_files,
)
from tests.gitfixtures import (
    STOP_KINDS,
    GitSandbox,
    conflicting_branches,
    diverge_and_merge,
    diverged,
    rebase_stopping_twice,
    resolve,
    stopping,
)
from tests.hooks.conftest import gitaudit, settle

EDITOR = {"GIT_EDITOR": "true"}
HUNKS = {"added.txt": 1, "content.txt": 1, "modify_delete.txt": 0, "moved.txt": 0}


def install(sandbox: GitSandbox, repo: Path) -> Path:
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    return repo


def lifecycle(sandbox: GitSandbox) -> list[dict[str, Any]]:
    """The conflict events, in the order they happened (detached hook deliveries waited for)."""
    settle(sandbox)
    found = [e for e in sandbox.events() if e["operation"].startswith("conflict.")]
    found.sort(key=lambda event: str(event["occurred_at"]))
    for event in found:
        events.validate_event(event)
    return found


def one_of_each(sandbox: GitSandbox, *operations: str) -> list[dict[str, Any]]:
    found = lifecycle(sandbox)
    assert [e["operation"] for e in found] == list(operations), found
    assert state_files(sandbox) == []
    detected = found[0]
    for later in found[1:]:
        assert later["parent_id"] == detected["id"]
        assert later["correlation_id"] == detected["correlation_id"]
    return found


@pytest.mark.parametrize(
    ("how", "reverse", "conclude"),
    [
        ("ours", False, ("commit", "--no-edit")),
        ("theirs", True, ("merge", "--continue")),
        ("manual", False, ("merge", "--continue")),
        ("deleted", True, ("commit", "--no-edit")),
    ],
)
def test_merge_every_kind_every_resolution(
    sandbox: GitSandbox, how: str, reverse: bool, conclude: tuple[str, ...]
) -> None:
    repo = install(sandbox, conflicting_branches(sandbox, on="topic" if reverse else "main"))
    assert sandbox.git("merge", "main" if reverse else "topic", cwd=repo,
                       check=False).returncode == 1
    assert lifecycle(sandbox) == []  # git runs no hook when it stops
    for path in FILES:
        resolve(sandbox, repo, path, how)
    done = sandbox.git(*conclude, cwd=repo, env=EDITOR, check=False)
    assert done.returncode == 0, done.stderr
    assert b"gitaudit" not in done.stderr
    detected, resolved = one_of_each(sandbox, "conflict.detected", "conflict.resolved")
    assert detected["source"] == resolved["source"] == "hook"
    assert detected["details"]["late"] is True
    assert detected["details"]["stopped_in"] == "merge"
    assert detected["details"]["files"] == [
        {"path": path, "kind": KINDS[path], "hunks": HUNKS[path]} for path in FILES
    ]
    assert {f["path"]: f["resolution"] for f in resolved["details"]["files"]} == dict.fromkeys(
        FILES, how)
    assert resolved["details"]["result_commit"] == sandbox.out("rev-parse", "HEAD", cwd=repo)
    assert resolved["details"]["time_to_resolve_ms"] >= 0
    assert resolved["actor"]["git_name"]


def test_rebase_continue(sandbox: GitSandbox) -> None:
    repo = install(sandbox, conflicting_branches(sandbox, on="topic"))
    assert sandbox.git("rebase", "main", cwd=repo, check=False).returncode != 0
    resolve(sandbox, repo, "content.txt", "theirs")
    resolve(sandbox, repo, "added.txt", "ours")
    resolve(sandbox, repo, "modify_delete.txt", "deleted")
    resolve(sandbox, repo, "moved.txt", "manual")
    done = sandbox.git("rebase", "--continue", cwd=repo, env=EDITOR, check=False)
    assert done.returncode == 0, done.stderr
    detected, resolved = one_of_each(sandbox, "conflict.detected", "conflict.resolved")
    assert detected["details"]["stopped_in"] == "rebase"
    assert detected["details"]["ours_is"] == "upstream"
    assert [f["kind"] for f in detected["details"]["files"]] == [KINDS[p] for p in FILES]
    assert {f["path"]: f["resolution"] for f in resolved["details"]["files"]} == {
        "content.txt": "theirs", "added.txt": "ours", "modify_delete.txt": "deleted",
        "moved.txt": "manual",
    }


def test_cherry_pick_continue(sandbox: GitSandbox) -> None:
    repo = install(sandbox, conflicting_branches(sandbox))
    assert sandbox.git("cherry-pick", "topic", cwd=repo, check=False).returncode != 0
    for path, how in (("content.txt", "theirs"), ("added.txt", "manual"),
                      ("modify_delete.txt", "ours"), ("moved.txt", "deleted")):
        resolve(sandbox, repo, path, how)
    done = sandbox.git("cherry-pick", "--continue", cwd=repo, env=EDITOR, check=False)
    assert done.returncode == 0, done.stderr
    detected, resolved = one_of_each(sandbox, "conflict.detected", "conflict.resolved")
    assert detected["details"]["stopped_in"] == "cherry-pick"
    assert {f["path"]: f["resolution"] for f in resolved["details"]["files"]} == {
        "content.txt": "theirs", "added.txt": "manual", "modify_delete.txt": "ours",
        "moved.txt": "deleted",
    }


def test_revert_continue(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    first = sandbox.commit(repo, {"f.txt": "one\n"}, "one")
    sandbox.commit(repo, {"f.txt": "two\n"}, "two")
    install(sandbox, repo)
    assert sandbox.git("revert", "--no-edit", first, cwd=repo, check=False).returncode != 0
    resolve(sandbox, repo, "f.txt", "manual")
    done = sandbox.git("revert", "--continue", cwd=repo, env=EDITOR, check=False)
    assert done.returncode == 0, done.stderr
    detected, resolved = one_of_each(sandbox, "conflict.detected", "conflict.resolved")
    assert detected["details"]["stopped_in"] == "revert"
    assert detected["details"]["files"] == [  # "one" added f.txt: reverting deletes it
        {"path": "f.txt", "kind": "modify_delete", "hunks": 0}
    ]
    assert resolved["details"]["files"][0]["resolution"] == "manual"


def test_pull_rebase_then_continue(sandbox: GitSandbox) -> None:
    _, work, _ = diverged(sandbox)
    install(sandbox, work)
    assert sandbox.git("pull", "--rebase", cwd=work, env=EDITOR, check=False).returncode != 0
    resolve(sandbox, work, "shared.txt", "ours")
    done = sandbox.git("rebase", "--continue", cwd=work, env=EDITOR, check=False)
    assert done.returncode == 0, done.stderr
    detected, resolved = one_of_each(sandbox, "conflict.detected", "conflict.resolved")
    assert detected["details"]["files"] == [{"path": "shared.txt", "kind": "content", "hunks": 1}]
    assert resolved["details"]["files"] == [
        {"path": "shared.txt", "kind": "content", "resolution": "ours"}
    ]


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "wrapped"])
@pytest.mark.parametrize("kind", STOP_KINDS)
def test_one_ending_per_conflict_whatever_git_leaves_behind(
    sandbox: GitSandbox, kind: str, wrapped: bool
) -> None:
    # git 2.39 leaves REBASE_HEAD behind when rebase --continue ends on the step that
    # stopped: later commits must not take it for the same stop again (nor a later merge)
    stop = stopping(sandbox, kind)
    repo = install(sandbox, stop.repo)
    run = sandbox.audited if wrapped else partial(sandbox.git, check=False)
    assert run(*stop.start, cwd=repo, env=EDITOR).returncode != 0
    resolve(sandbox, repo, "a.txt", "manual")
    done = run(*stop.conclude, cwd=repo, env=EDITOR)
    assert done.returncode == 0, done.stderr
    diverge_and_merge(sandbox, repo, run)
    found = lifecycle(sandbox)
    assert_each_ended_once(found, stop.stopped_in)
    if stop.stopped_in == "rebase":  # whichever path saw it end: the rebase --continue
        assert (found[1]["details"]["concluded_by"], found[1]["details"]["action"]) == (
            "git.rebase", "continue")
    assert state_files(sandbox) == []


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "wrapped"])
def test_a_marker_left_behind_never_stops_an_ended_conflict_again(
    sandbox: GitSandbox, wrapped: bool
) -> None:
    # CHERRY_PICK_HEAD as git wrote it when it stopped, still there after the pick ended
    # (as a sequencer can leave one): the stop has ended once, it never ends again, and a
    # later merge that stops is that merge's conflict, not the pick's
    stop = stopping(sandbox, "cherry-pick")
    repo = install(sandbox, stop.repo)
    run = sandbox.audited if wrapped else partial(sandbox.git, check=False)
    assert run(*stop.start, cwd=repo).returncode != 0
    marker = repo / ".git" / "CHERRY_PICK_HEAD"
    content, stopped = marker.read_bytes(), marker.stat().st_mtime_ns
    resolve(sandbox, repo, "a.txt", "manual")
    assert run(*stop.conclude, cwd=repo, env=EDITOR).returncode == 0
    assert not marker.exists()
    marker.write_bytes(content)
    os.utime(marker, ns=(stopped, stopped))
    diverge_and_merge(sandbox, repo, run)
    assert_each_ended_once(lifecycle(sandbox), "cherry-pick")
    assert state_files(sandbox) == []


@pytest.mark.parametrize(
    ("start", "abort"),
    [
        (("merge", "topic"), ("merge", "--abort")),
        (("cherry-pick", "topic"), ("cherry-pick", "--abort")),
        (("rebase", "main"), ("rebase", "--abort")),
    ],
)
def test_abort_is_recorded_at_the_next_hook(
    sandbox: GitSandbox, start: tuple[str, ...], abort: tuple[str, ...]
) -> None:
    repo = install(sandbox, conflicting_branches(sandbox, on="topic" if start[0] == "rebase"
                                                 else "main"))
    assert sandbox.git(*start, cwd=repo, check=False).returncode != 0
    sandbox.git("checkout", "--theirs", "--", "content.txt", cwd=repo)  # post-checkout sees it
    [detected] = lifecycle(sandbox)
    assert detected["details"]["hook"] == "post-checkout"
    assert sandbox.git(*abort, cwd=repo).returncode == 0
    assert len(lifecycle(sandbox)) == 1  # git runs no hook on these aborts
    sandbox.git("commit", "-q", "--allow-empty", "-m", "later", cwd=repo)
    _, aborted = one_of_each(sandbox, "conflict.detected", "conflict.aborted")
    assert aborted["details"]["action"] == "abort"
    assert [f["path"] for f in aborted["details"]["files"]] == list(FILES)


def test_unrelated_commit_after_an_unseen_abort_is_not_a_resolution(sandbox: GitSandbox) -> None:
    repo = install(sandbox, conflicting_branches(sandbox))
    assert sandbox.git("merge", "topic", cwd=repo, check=False).returncode == 1
    sandbox.git("checkout", "--ours", "--", "content.txt", cwd=repo)
    sandbox.git("merge", "--abort", cwd=repo)
    sandbox.commit(repo, {"later.txt": "x\n"}, "on the same parent")
    one_of_each(sandbox, "conflict.detected", "conflict.aborted")


def test_wrapper_and_hooks_record_one_of_each(sandbox: GitSandbox) -> None:
    repo = install(sandbox, conflicting_branches(sandbox))
    assert sandbox.audited("merge", "topic", cwd=repo).returncode == 1
    sandbox.git("checkout", "--theirs", "--", "content.txt", cwd=repo)  # a hook, same stop
    for path in FILES:
        resolve(sandbox, repo, path, "ours")
    done = sandbox.audited("merge", "--continue", cwd=repo, env=EDITOR)
    assert done.returncode == 0, done.stderr
    detected, resolved = one_of_each(sandbox, "conflict.detected", "conflict.resolved")
    assert detected["source"] == "wrapper"
    assert resolved["details"]["result_commit"] == sandbox.out("rev-parse", "HEAD", cwd=repo)
    assert {f["resolution"] for f in resolved["details"]["files"]} == {"ours"}


def test_wrapper_rebase_with_hooks_stopping_twice(sandbox: GitSandbox) -> None:
    repo = rebase_stopping_twice(sandbox)
    install(sandbox, repo)
    assert sandbox.audited("rebase", "main", cwd=repo).returncode != 0
    resolve(sandbox, repo, "a.txt", "theirs")
    assert sandbox.audited("rebase", "--continue", cwd=repo, env=EDITOR).returncode != 0
    resolve(sandbox, repo, "b.txt", "ours")
    assert sandbox.git("rebase", "--continue", cwd=repo, env=EDITOR).returncode == 0
    found = lifecycle(sandbox)
    assert [e["operation"] for e in found] == [
        "conflict.detected", "conflict.resolved", "conflict.detected", "conflict.resolved"]
    assert found[1]["parent_id"] == found[0]["id"]
    assert found[3]["parent_id"] == found[2]["id"]
    assert [f["resolution"] for f in (found[1]["details"]["files"]
                                      + found[3]["details"]["files"])] == ["theirs", "ours"]
    assert state_files(sandbox) == []


def python_started(sandbox: GitSandbox, repo: Path) -> bool:
    """Whether the installed prepare-commit-msg script would start Python (traced by sh -x)."""
    message = sandbox.tmp / "msg"
    message.write_text("x\n")
    hook = repo / ".git" / "hooks" / "prepare-commit-msg"
    run = subprocess.run(["/bin/sh", "-x", str(hook), str(message), "message"], cwd=repo,
                         env=sandbox.env, capture_output=True, check=False)
    assert run.returncode == 0
    return b"exec " in run.stderr


def test_prepare_commit_msg_starts_python_only_while_stopped(sandbox: GitSandbox) -> None:
    repo = install(sandbox, conflicting_branches(sandbox))
    assert not python_started(sandbox, repo)  # a plain commit: the shell test says no
    assert sandbox.git("merge", "topic", cwd=repo, check=False).returncode == 1
    assert python_started(sandbox, repo)
    assert [e["operation"] for e in lifecycle(sandbox)] == ["conflict.detected"]


def test_prepare_commit_msg_ignores_a_rebase_head_left_behind(sandbox: GitSandbox) -> None:
    stop = stopping(sandbox, "rebase")
    repo = install(sandbox, stop.repo)
    assert sandbox.git(*stop.start, cwd=repo, check=False).returncode != 0
    assert python_started(sandbox, repo)
    resolve(sandbox, repo, "a.txt", "manual")
    assert sandbox.git(*stop.conclude, cwd=repo, env=EDITOR).returncode == 0
    assert (repo / ".git" / "REBASE_HEAD").exists()
    assert not python_started(sandbox, repo)


# --- faults: git behaves as without gitaudit ---------------------------------------------


def test_corrupt_state_file_never_breaks_git(
    sandbox: GitSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", sandbox.env["XDG_STATE_HOME"])
    repo = install(sandbox, conflicting_branches(sandbox))
    layout = gitstate.discover(str(repo), {})
    assert layout is not None
    path = Path(gitstate.conflict_state_path(layout))
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert sandbox.git("merge", "topic", cwd=repo, check=False).returncode == 1
    for name in FILES:
        resolve(sandbox, repo, name, "ours")
    done = sandbox.git("commit", "--no-edit", cwd=repo, env=EDITOR, check=False)
    assert done.returncode == 0
    assert b"gitaudit" not in done.stderr
    one_of_each(sandbox, "conflict.detected", "conflict.resolved")


def test_repository_without_reflog(sandbox: GitSandbox) -> None:
    repo = install(sandbox, conflicting_branches(sandbox))
    sandbox.git("config", "core.logAllRefUpdates", "false", cwd=repo)
    for log in (repo / ".git" / "logs").rglob("*"):
        if log.is_file():
            log.unlink()
    assert sandbox.git("merge", "topic", cwd=repo, check=False).returncode == 1
    for name in FILES:
        resolve(sandbox, repo, name, "manual")
    done = sandbox.git("merge", "--continue", cwd=repo, env=EDITOR, check=False)
    assert done.returncode == 0, done.stderr
    assert b"gitaudit" not in done.stderr
    _, resolved = one_of_each(sandbox, "conflict.detected", "conflict.resolved")
    assert {f["resolution"] for f in resolved["details"]["files"]} == {"manual"}


def test_bare_repository_stop_is_replayed_without_a_worktree(sandbox: GitSandbox) -> None:
    repo = conflicting_branches(sandbox)
    bare = sandbox.root / "bare.git"
    sandbox.git("clone", "-q", "--bare", str(repo), str(bare))
    topic = sandbox.out("rev-parse", "topic", cwd=repo)
    (bare / "MERGE_HEAD").write_text(topic + "\n")
    layout = gitstate.discover(str(bare), {})
    assert layout is not None and layout.worktree is None
    head = gitstate.read_head(layout)
    inp = hooks.HookInput("post-checkout", [], b"", sandbox.env, layout, head)
    found = hooks.conflict_events(inp, source_event=None, actor={}, params={},
                                  correlation_id="c", parent_id=None)
    assert [e["operation"] for e in found] == ["conflict.detected"]
    assert [f["kind"] for f in found[0]["details"]["files"]] == [KINDS[p] for p in FILES]
