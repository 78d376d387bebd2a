"""Operations that stop on conflicts: the operation event, conflict.detected, and the finish."""

from __future__ import annotations

from typing import Any

from gitaudit import events
from tests.gitfixtures import GitSandbox, branched, conflicting_branches, diverged


def validated(event: dict[str, Any]) -> dict[str, Any]:
    events.validate_event(event)
    return event


def test_pull_rebase_conflict_then_continue(sandbox: GitSandbox) -> None:
    _, work, local = diverged(sandbox)
    pulled = sandbox.audited("pull", "--rebase", cwd=work, env={"GIT_EDITOR": "true"})
    assert pulled.returncode != 0
    pull, conflict = (validated(event) for event in sandbox.events()[-2:])
    upstream_tip = sandbox.out("rev-parse", "origin/main", cwd=work)

    assert (pull["operation"], pull["outcome"]) == ("git.pull", "failure")
    assert pull["details"]["integration"] == "rebase"
    assert pull["details"]["upstream"] == "refs/remotes/origin/main"
    assert pull["details"]["onto"] == upstream_tip
    assert pull["details"]["stopped_on_conflict"] is True
    assert pull["details"]["rewritten"] == []  # stopped on the first commit
    assert "could not apply" in pull["result"]["error"]
    assert pull["details"]["updated_refs"][0]["ref"] == "refs/remotes/origin/main"
    assert pull["repo"]["branch"] == "main"  # the branch being rebased, not "detached"

    assert conflict["operation"] == "conflict.detected"
    assert conflict["parent_id"] == pull["id"]
    assert conflict["correlation_id"] == pull["correlation_id"]
    assert conflict["details"]["files"] == [{"path": "shared.txt", "kind": "content", "hunks": 1}]
    assert conflict["details"]["operation"] == "git.pull"
    assert conflict["details"]["stopped_in"] == "rebase"

    (work / "shared.txt").write_text("resolved\n")
    sandbox.git("add", "shared.txt", cwd=work)
    finished = sandbox.audited("rebase", "--continue", cwd=work, env={"GIT_EDITOR": "true"})
    assert finished.returncode == 0, finished.stderr
    rebase = validated(sandbox.last_event("git.rebase"))
    new_commits = sandbox.out("rev-list", "--reverse", f"{upstream_tip}..HEAD", cwd=work).split()
    assert rebase["operation"] == "git.rebase"
    assert rebase["outcome"] == "success"
    assert rebase["details"]["action"] == "continue"
    assert rebase["details"]["upstream"] == "refs/remotes/origin/main"
    assert rebase["details"]["onto"] == upstream_tip
    assert rebase["details"]["rewritten"] == [[local[0], new_commits[0]],
                                              [local[1], new_commits[1]]]
    assert rebase["details"]["stopped_on_conflict"] is False
    assert rebase["repo"]["branch"] == "main"
    assert rebase["repo"]["head_after"] == new_commits[1]
    resolved = validated(sandbox.last_event())
    assert (resolved["operation"], resolved["parent_id"]) == ("conflict.resolved", conflict["id"])
    assert len(sandbox.events()) == 4  # pull, conflict, rebase, resolution: nothing else


def test_plain_rebase_records_rewritten_pairs(sandbox: GitSandbox) -> None:
    repo = branched(sandbox, {}, topic=[(f"topic {i}", {f"t{i}": str(i)}) for i in range(3)],
                    main=[("main moves", {"m": "1"})], on="topic")
    with sandbox.open(repo) as handle:
        originals = [commit.hexsha for commit in handle.iter_commits("main..topic", reverse=True)]
        main_tip = handle.heads.main.commit.hexsha
    result = sandbox.audited("rebase", "main", cwd=repo)
    assert result.returncode == 0, result.stderr
    event = validated(sandbox.last_event())
    rebased = sandbox.out("rev-list", "--reverse", "main..topic", cwd=repo).split()
    assert event["details"]["upstream"] == "main"
    assert event["details"]["onto"] == main_tip
    assert event["details"]["rewritten"] == [list(pair) for pair in zip(originals, rebased,
                                                                         strict=True)]
    assert event["repo"]["head_before"] == originals[-1]
    assert event["category"] == "update"


def test_merge_conflict_kinds(sandbox: GitSandbox) -> None:
    repo = conflicting_branches(sandbox)
    result = sandbox.audited("merge", "topic", cwd=repo)
    assert result.returncode == 1
    merge, conflict = (validated(event) for event in sandbox.events()[-2:])
    assert (merge["operation"], merge["outcome"]) == ("git.merge", "failure")
    assert merge["details"]["commits"] == ["topic"]
    assert merge["details"]["stopped_on_conflict"] is True
    assert conflict["parent_id"] == merge["id"]
    assert conflict["details"]["stopped_in"] == "merge"
    assert conflict["details"]["files"] == [
        {"path": "added.txt", "kind": "add_add", "hunks": 1},
        {"path": "content.txt", "kind": "content", "hunks": 1},
        {"path": "modify_delete.txt", "kind": "modify_delete", "hunks": 0},
        {"path": "moved.txt", "kind": "rename", "hunks": 0},
    ]


def test_cherry_pick_conflict(sandbox: GitSandbox) -> None:
    repo = conflicting_branches(sandbox)
    result = sandbox.audited("cherry-pick", "topic", cwd=repo)
    assert result.returncode != 0
    pick, conflict = (validated(event) for event in sandbox.events()[-2:])
    assert pick["operation"] == "git.cherry_pick"
    assert conflict["details"]["stopped_in"] == "cherry-pick"
    assert {item["kind"] for item in conflict["details"]["files"]} == {
        "add_add", "content", "modify_delete", "rename"
    }


def test_clean_merge_has_no_conflict_event(sandbox: GitSandbox) -> None:
    repo = branched(sandbox, {}, topic=[("topic", {"t": "1"})], main=[("main", {"m": "1"})])
    result = sandbox.audited("merge", "--no-edit", "topic", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert [e["operation"] for e in sandbox.events()] == ["git.merge"]
    assert sandbox.last_event()["details"]["stopped_on_conflict"] is False


def test_conflict_kinds_ignore_a_rebase_head_left_behind(sandbox: GitSandbox) -> None:
    repo = conflicting_branches(sandbox)
    # what git 2.39 leaves once a rebase that stopped on "base files" has ended: its
    # parent has none of the files, so taken for the base every file would read as renamed
    base_files = sandbox.out("rev-parse", "main~", cwd=repo)
    (repo / ".git" / "REBASE_HEAD").write_text(base_files + "\n")
    assert sandbox.audited("cherry-pick", "topic", cwd=repo).returncode != 0
    conflict = validated(sandbox.last_event("conflict.detected"))
    assert conflict["details"]["stopped_in"] == "cherry-pick"
    assert conflict["details"]["stopped_at"] == sandbox.out("rev-parse", "topic", cwd=repo)
    assert [(item["path"], item["kind"]) for item in conflict["details"]["files"]] == [
        ("added.txt", "add_add"), ("content.txt", "content"),
        ("modify_delete.txt", "modify_delete"), ("moved.txt", "rename"),
    ]
