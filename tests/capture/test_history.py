"""Commit-graph helpers (pygit2) and conflict classification."""

from __future__ import annotations

from typing import Any

import pytest

from gitaudit.capture import conflicts, history
from tests.gitfixtures import GitSandbox


def key(message: str, time: int = 0) -> history.CommitKey:
    return history.CommitKey("A", "a@x", time, 0, message)


def test_pair_commits_by_author_date_and_message() -> None:
    originals = [("o1", key("one")), ("o2", key("two")), ("o3", key("dropped"))]
    rewritten = [("u1", key("upstream", 5)), ("n1", key("one")), ("n2", key("two"))]
    assert history.pair_commits(originals, rewritten) == [["o1", "n1"], ["o2", "n2"]]


def test_pair_commits_with_identical_keys_pairs_in_order() -> None:
    originals = [("o1", key("same")), ("o2", key("same"))]
    rewritten = [("n1", key("same")), ("n2", key("same")), ("n3", key("same"))]
    assert history.pair_commits(originals, rewritten) == [["o1", "n1"], ["o2", "n2"]]
    assert history.pair_commits([("x", key("m"))], [("x", key("m"))]) == []  # unchanged


@pytest.mark.parametrize(
    ("stages", "in_base", "kind"),
    [
        ((True, True, True), True, "content"),
        ((True, True, True), None, "content"),
        ((False, True, True), None, "add_add"),
        ((True, True, False), True, "modify_delete"),
        ((True, False, True), True, "modify_delete"),
        ((True, True, False), False, "rename"),
        ((True, True, True), False, "rename"),
        ((True, False, False), None, "rename"),
        ((False, True, False), None, "rename"),
    ],
)
def test_conflict_kind(stages: tuple[bool, bool, bool], in_base: bool | None, kind: str) -> None:
    assert conflicts.conflict_kind(*stages, in_base=in_base) == kind


def test_classify_push_marks_forced_and_counts_commits(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    base = sandbox.out("rev-parse", "HEAD", cwd=repo)
    one = sandbox.commit(repo, {"a": "1"}, "one")
    two = sandbox.commit(repo, {"a": "2"}, "two")
    sandbox.git("reset", "-q", "--hard", base, cwd=repo)
    other = sandbox.commit(repo, {"b": "1"}, "other")
    handle = history.open_repository(str(repo / ".git"))
    refs: list[dict[str, Any]] = [
        {"ref": "refs/heads/ff", "old": one, "new": two, "status": "ok"},
        {"ref": "refs/heads/rewrite", "old": two, "new": other, "status": "ok"},
        {"ref": "refs/heads/unknown-old", "old": "f" * 40, "new": two, "status": "ok"},
        {"ref": "refs/heads/new", "old": None, "new": one, "status": "ok"},
        {"ref": "refs/heads/gone", "old": one, "new": None, "status": "ok"},
    ]
    for ref in refs:
        ref["forced"] = False
    count = history.classify_push(handle, refs, remote_tips=[base])
    assert [ref["forced"] for ref in refs] == [False, True, True, False, False]
    # the remote already had base and every old value (one, two): only "other" is new to it
    assert count == 1
    assert history.is_fast_forward(handle, base, two) is True
    assert history.is_fast_forward(handle, two, base) is False
    assert history.is_fast_forward(handle, "0" * 40, two) is None
    assert history.count_commits(handle, [two], []) == 3
    assert history.rewritten_pairs(handle, two, two) == []
    assert history.path_in_commit(handle, two, "a") is True
    assert history.path_in_commit(handle, other, "a") is False
    assert history.path_in_commit(handle, "short", "a") is None
    assert history.parent_of(handle, base) is None
    assert history.merge_base(handle, two, other) == base


@pytest.mark.parametrize(
    ("data", "hunks"),
    [
        (b"", 0),
        (b"plain\n", 0),
        (b"<<<<<<< HEAD\na\n=======\nb\n>>>>>>> topic\n", 1),
        (b"<<<<<<< HEAD\na\n=======\nb\n>>>>>>> t\nx\n<<<<<<< HEAD\nc\n=======\nd\n>>>>>>> t", 2),
        (b"  <<<<<<< indented is not a marker\n", 0),
    ],
)
def test_count_hunks(data: bytes, hunks: int) -> None:
    assert conflicts.count_hunks(data) == hunks


@pytest.mark.parametrize(
    ("result", "resolution"),
    [("o", "ours"), ("t", "theirs"), ("m", "manual"), ("b", "manual"), (None, "deleted")],
)
def test_resolution(result: str | None, resolution: str) -> None:
    stages: dict[str, str | None] = {"base": "b", "ours": "o", "theirs": "t"}
    assert conflicts.resolution(stages, result) == resolution


def test_resolution_kept_from_gitaudit_resolve_is_claude() -> None:
    stages: dict[str, str | None] = {"base": "b", "ours": "o", "theirs": "t", "claude": "c"}
    assert conflicts.resolution(stages, "c") == "claude"
    assert conflicts.resolution(stages, "m") == "manual"  # edited again after Claude's proposal


def test_resolution_of_a_one_sided_conflict() -> None:
    assert conflicts.resolution({"base": "b", "ours": None, "theirs": "t"}, "t") == "theirs"
    assert conflicts.resolution({"base": "b", "ours": None, "theirs": "t"}, None) == "deleted"
