"""The conflict lifecycle through the wrapper: detected, then resolved or aborted.

Real git, real conflicting histories: every kind (content, add/add,
modify/delete, rename/delete) resolved every way (ours, theirs, manual,
deleted), through merge, rebase, cherry-pick and pull --rebase.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from gitaudit import events
from tests.gitfixtures import (
    STOP_KINDS,
    GitSandbox,
    branched,
    conflicting_branches,
    diverge_and_merge,
    diverged,
    rebase_stopping_twice,
    resolve,
    stopping,
)

FILES = ("added.txt", "content.txt", "modify_delete.txt", "moved.txt")
KINDS = {"added.txt": "add_add", "content.txt": "content",
         "modify_delete.txt": "modify_delete", "moved.txt": "rename"}
EDITOR = {"GIT_EDITOR": "true"}


def validated(event: dict[str, Any]) -> dict[str, Any]:
    events.validate_event(event)
    return event


def state_files(sandbox: GitSandbox) -> list[Path]:
    return sorted((sandbox.home / ".local/state/gitaudit/conflicts").glob("*.json"))


def detected(sandbox: GitSandbox) -> dict[str, Any]:
    event = validated(sandbox.last_event("conflict.detected"))
    [state] = state_files(sandbox)
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    return event


def assert_resolved(sandbox: GitSandbox, conflict: dict[str, Any],
                    expected: dict[str, str]) -> dict[str, Any]:
    resolved = validated(sandbox.last_event("conflict.resolved"))
    assert resolved["parent_id"] == conflict["id"]
    assert resolved["correlation_id"] == conflict["correlation_id"]
    assert resolved["outcome"] == "success"
    assert resolved["details"]["time_to_resolve_ms"] >= 0
    assert resolved["actor"]["git_name"]
    assert {item["path"]: item["resolution"] for item in resolved["details"]["files"]} == expected
    assert {item["path"]: item["kind"] for item in resolved["details"]["files"]} == {
        path: KINDS[path] for path in expected
    }
    assert state_files(sandbox) == []
    return resolved


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
    # reverse: topic merges main, one-sided files then have only a "theirs" stage
    repo = conflicting_branches(sandbox, on="topic" if reverse else "main")
    result = sandbox.audited("merge", "main" if reverse else "topic", cwd=repo)
    assert result.returncode == 1
    conflict = detected(sandbox)
    assert [item["kind"] for item in conflict["details"]["files"]] == [
        KINDS[path] for path in FILES
    ]
    assert conflict["details"]["ours_is"] == "HEAD"
    for path in FILES:
        resolve(sandbox, repo, path, how)
    done = sandbox.audited(*conclude, cwd=repo, env=EDITOR)
    assert done.returncode == 0, done.stderr
    resolved = assert_resolved(sandbox, conflict, dict.fromkeys(FILES, how))
    assert resolved["details"]["operation"] == "git.merge"
    assert resolved["details"]["stopped_in"] == "merge"
    operation = "git.commit" if conclude[0] == "commit" else "git.merge"
    concluding = sandbox.last_event(operation)
    assert resolved["details"]["concluded_by"] == operation
    assert resolved["actor"] == concluding["actor"]
    assert resolved["details"]["result_commit"] == sandbox.out("rev-parse", "HEAD", cwd=repo)


def test_rebase_records_git_stage_semantics(sandbox: GitSandbox) -> None:
    repo = conflicting_branches(sandbox, on="topic")
    result = sandbox.audited("rebase", "main", cwd=repo)
    assert result.returncode != 0
    conflict = detected(sandbox)
    assert conflict["details"]["stopped_in"] == "rebase"
    assert conflict["details"]["ours_is"] == "upstream"
    resolve(sandbox, repo, "content.txt", "theirs")  # the replayed topic commit
    resolve(sandbox, repo, "added.txt", "ours")  # upstream (main)
    resolve(sandbox, repo, "modify_delete.txt", "deleted")
    resolve(sandbox, repo, "moved.txt", "manual")
    done = sandbox.audited("rebase", "--continue", cwd=repo, env=EDITOR)
    assert done.returncode == 0, done.stderr
    resolved = assert_resolved(sandbox, conflict, {
        "content.txt": "theirs", "added.txt": "ours", "modify_delete.txt": "deleted",
        "moved.txt": "manual",
    })
    assert resolved["details"]["ours_is"] == "upstream"
    assert (repo / "content.txt").read_text() == "topic\n"


def test_cherry_pick_continue(sandbox: GitSandbox) -> None:
    repo = conflicting_branches(sandbox)
    result = sandbox.audited("cherry-pick", "topic", cwd=repo)
    assert result.returncode != 0
    conflict = detected(sandbox)
    for path, how in (("content.txt", "theirs"), ("added.txt", "manual"),
                      ("modify_delete.txt", "ours"), ("moved.txt", "deleted")):
        resolve(sandbox, repo, path, how)
    done = sandbox.audited("cherry-pick", "--continue", cwd=repo, env=EDITOR)
    assert done.returncode == 0, done.stderr
    resolved = assert_resolved(sandbox, conflict, {
        "content.txt": "theirs", "added.txt": "manual", "modify_delete.txt": "ours",
        "moved.txt": "deleted",
    })
    assert resolved["details"]["stopped_in"] == "cherry-pick"


def test_pull_rebase_then_continue(sandbox: GitSandbox) -> None:
    _, work, _ = diverged(sandbox)
    pulled = sandbox.audited("pull", "--rebase", cwd=work, env=EDITOR)
    assert pulled.returncode != 0
    conflict = detected(sandbox)
    assert conflict["details"]["files"] == [{"path": "shared.txt", "kind": "content", "hunks": 1}]
    resolve(sandbox, work, "shared.txt", "ours")  # upstream's version
    done = sandbox.audited("rebase", "--continue", cwd=work, env=EDITOR)
    assert done.returncode == 0, done.stderr
    resolved = validated(sandbox.last_event("conflict.resolved"))
    assert resolved["parent_id"] == conflict["id"]
    assert resolved["correlation_id"] == conflict["correlation_id"]
    assert resolved["details"]["operation"] == "git.pull"
    assert resolved["details"]["files"] == [
        {"path": "shared.txt", "kind": "content", "resolution": "ours"}
    ]
    assert state_files(sandbox) == []


def test_revert_continue(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    first = sandbox.commit(repo, {"f.txt": "one\n"}, "one")
    sandbox.commit(repo, {"f.txt": "two\n"}, "two")
    result = sandbox.audited("revert", "--no-edit", first, cwd=repo)
    assert result.returncode != 0
    conflict = detected(sandbox)
    assert conflict["details"]["stopped_in"] == "revert"
    resolve(sandbox, repo, "f.txt", "manual")
    done = sandbox.audited("revert", "--continue", cwd=repo, env=EDITOR)
    assert done.returncode == 0, done.stderr
    resolved = validated(sandbox.last_event("conflict.resolved"))
    assert resolved["parent_id"] == conflict["id"]
    assert resolved["details"]["files"][0]["resolution"] == "manual"
    assert state_files(sandbox) == []


@pytest.mark.parametrize(
    ("start", "abort"),
    [
        (("merge", "topic"), ("merge", "--abort")),
        (("cherry-pick", "topic"), ("cherry-pick", "--abort")),
        (("rebase", "main"), ("rebase", "--abort")),
    ],
)
def test_abort(sandbox: GitSandbox, start: tuple[str, ...], abort: tuple[str, ...]) -> None:
    repo = conflicting_branches(sandbox, on="topic" if start[0] == "rebase" else "main")
    assert sandbox.audited(*start, cwd=repo).returncode != 0
    conflict = detected(sandbox)
    done = sandbox.audited(*abort, cwd=repo)
    assert done.returncode == 0, done.stderr
    aborted = validated(sandbox.last_event())
    assert aborted["operation"] == "conflict.aborted"
    assert aborted["parent_id"] == conflict["id"]
    assert aborted["correlation_id"] == conflict["correlation_id"]
    assert [item["path"] for item in aborted["details"]["files"]] == list(FILES)
    assert state_files(sandbox) == []
    assert not [e for e in sandbox.events() if e["operation"] == "conflict.resolved"]


def test_unresolved_continue_keeps_the_conflict_open(sandbox: GitSandbox) -> None:
    repo = conflicting_branches(sandbox)
    assert sandbox.audited("merge", "topic", cwd=repo).returncode == 1
    conflict = detected(sandbox)
    refused = sandbox.audited("commit", "--no-edit", cwd=repo, env=EDITOR)
    assert refused.returncode != 0
    assert [e["operation"] for e in sandbox.events()].count("conflict.detected") == 1
    assert not [e for e in sandbox.events() if e["operation"].startswith("conflict.r")]
    assert len(state_files(sandbox)) == 1
    for path in FILES:
        resolve(sandbox, repo, path, "ours")
    assert sandbox.audited("commit", "--no-edit", cwd=repo, env=EDITOR).returncode == 0
    assert_resolved(sandbox, conflict, dict.fromkeys(FILES, "ours"))


def test_rebase_stopping_twice_resolves_the_first_and_detects_the_second(
    sandbox: GitSandbox,
) -> None:
    repo = rebase_stopping_twice(sandbox)
    assert sandbox.audited("rebase", "main", cwd=repo).returncode != 0
    first = detected(sandbox)
    resolve(sandbox, repo, "a.txt", "theirs")
    again = sandbox.audited("rebase", "--continue", cwd=repo, env=EDITOR)
    assert again.returncode != 0
    resolved = validated(sandbox.last_event("conflict.resolved"))
    second = detected(sandbox)
    assert resolved["parent_id"] == first["id"]
    assert resolved["details"]["files"] == [
        {"path": "a.txt", "kind": "content", "resolution": "theirs"}
    ]
    assert second["id"] != first["id"]
    assert [item["path"] for item in second["details"]["files"]] == ["b.txt"]
    resolve(sandbox, repo, "b.txt", "ours")
    assert sandbox.audited("rebase", "--continue", cwd=repo, env=EDITOR).returncode == 0
    last = validated(sandbox.last_event("conflict.resolved"))
    assert last["parent_id"] == second["id"]
    assert last["details"]["files"][0]["resolution"] == "ours"
    assert state_files(sandbox) == []


def test_hunks_are_counted(sandbox: GitSandbox) -> None:
    def two_lines_changed(side: str) -> dict[str, str | None]:
        lines = [f"line {n}\n" for n in range(20)]
        if side:
            lines[1], lines[17] = f"{side} 1\n", f"{side} 17\n"
        return {"two.txt": "".join(lines)}

    repo = branched(sandbox, two_lines_changed(""), topic=[("topic", two_lines_changed("topic"))],
                    main=[("main", two_lines_changed("main"))])
    assert sandbox.audited("merge", "topic", cwd=repo).returncode == 1
    conflict = detected(sandbox)
    assert conflict["details"]["files"] == [{"path": "two.txt", "kind": "content", "hunks": 2}]


def test_stale_state_is_dropped(sandbox: GitSandbox) -> None:
    repo = conflicting_branches(sandbox)
    assert sandbox.audited("merge", "topic", cwd=repo).returncode == 1
    detected(sandbox)
    sandbox.git("merge", "--abort", cwd=repo)  # outside the wrapper
    sandbox.commit(repo, {"later.txt": "x\n"}, "unrelated")
    assert sandbox.audited("commit", "--allow-empty", "-m", "later", cwd=repo).returncode == 0
    assert not [e for e in sandbox.events() if e["operation"] in {"conflict.resolved",
                                                                  "conflict.aborted"}]
    assert state_files(sandbox) == []


def test_commit_without_a_saved_conflict_stays_lean(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    (repo / "f.txt").write_text("x\n")
    sandbox.git("add", "f.txt", cwd=repo)
    done = sandbox.audited("commit", "-q", "-m", "plain", cwd=repo,
                           env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert done.returncode == 0, done.stderr
    assert b"pygit2" not in done.stderr
    assert b"hashlib" not in done.stderr
    assert state_files(sandbox) == []


def test_rebase_skip_aborts_the_stop_and_detects_the_next(sandbox: GitSandbox) -> None:
    repo = rebase_stopping_twice(sandbox)
    assert sandbox.audited("rebase", "main", cwd=repo).returncode != 0
    first = detected(sandbox)
    assert sandbox.audited("rebase", "--skip", cwd=repo, env=EDITOR).returncode != 0
    skipped = validated(sandbox.last_event("conflict.aborted"))
    assert skipped["parent_id"] == first["id"]
    assert skipped["details"]["action"] == "skip"
    second = detected(sandbox)
    assert second["id"] != first["id"]
    assert [item["path"] for item in second["details"]["files"]] == ["b.txt"]
    assert sandbox.audited("rebase", "--abort", cwd=repo).returncode == 0
    aborted = validated(sandbox.last_event("conflict.aborted"))
    assert (aborted["parent_id"], aborted["details"]["action"]) == (second["id"], "abort")
    assert state_files(sandbox) == []


@pytest.mark.parametrize("kind", STOP_KINDS)
def test_a_later_conflict_is_its_own_whatever_git_left_behind(
    sandbox: GitSandbox, kind: str
) -> None:
    stop = stopping(sandbox, kind)
    assert sandbox.audited(*stop.start, cwd=stop.repo, env=EDITOR).returncode != 0
    detected(sandbox)  # with its state file saved
    resolve(sandbox, stop.repo, "a.txt", "manual")
    assert sandbox.audited(*stop.conclude, cwd=stop.repo, env=EDITOR).returncode == 0
    diverge_and_merge(sandbox, stop.repo, sandbox.audited)
    found = [validated(e) for e in sandbox.events() if e["operation"].startswith("conflict.")]
    assert_each_ended_once(found, stop.stopped_in)
    assert state_files(sandbox) == []


def assert_each_ended_once(found: list[dict[str, Any]], stopped_in: str) -> None:
    """The conflict events of a stop on a.txt resolved by hand, then of ``diverge_and_merge``:
    one ending each, and the later conflict is a merge of its own (not the first again)."""
    assert [e["operation"] for e in found] == [
        "conflict.detected", "conflict.resolved", "conflict.detected", "conflict.resolved"]
    first, ended, second, later = found
    assert second["id"] != first["id"]
    assert (ended["parent_id"], later["parent_id"]) == (first["id"], second["id"])
    assert (first["details"]["stopped_in"], second["details"]["stopped_in"]) == (
        stopped_in, "merge")
    assert [f["path"] for f in second["details"]["files"]] == ["later.txt"]
    assert [(f["path"], f["resolution"])
            for f in ended["details"]["files"] + later["details"]["files"]] == [
        ("a.txt", "manual"), ("later.txt", "theirs")]
