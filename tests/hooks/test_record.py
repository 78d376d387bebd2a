"""What each hook records, with real git commands running the installed hooks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gitaudit import events
from tests.gitfixtures import GitSandbox
from tests.hooks.conftest import gitaudit, hook_events


def installed(sandbox: GitSandbox, *extra: str) -> tuple[Path, Path]:
    """A repository with a bare origin and gitaudit's hooks installed."""
    remote = sandbox.bare_remote()
    repo = sandbox.repo(remote=remote)
    sandbox.git("push", "-q", "origin", "main", cwd=repo)
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo), *extra)
    return repo, remote


def only(sandbox: GitSandbox, hook: str) -> dict[str, Any]:
    """The one event ``hook`` recorded, validated against the event model."""
    found = hook_events(sandbox, hook)
    assert len(found) == 1, found
    event = found[0]
    events.validate_event(event)
    assert event["source"] == "hook"
    return event


def test_post_commit(sandbox: GitSandbox) -> None:
    repo, _ = installed(sandbox)
    parent = sandbox.out("rev-parse", "HEAD", cwd=repo)
    result = sandbox.git("commit", "-q", "--allow-empty", "-m", "noop", cwd=repo)
    assert result.stderr == b""  # hooks never print on success
    (repo / "a.txt").write_text("a\n")
    (repo / "README").unlink()
    sandbox.git("add", "-A", cwd=repo)
    sandbox.git("commit", "-q", "-m", "files", cwd=repo)
    last = hook_events(sandbox, "post-commit")[-1]
    events.validate_event(last)
    commit = sandbox.out("rev-parse", "HEAD", cwd=repo)
    assert last["operation"] == "git.commit"
    assert last["details"]["commit"] == commit
    assert last["details"]["files"] == [{"path": "README", "status": "D"},
                                        {"path": "a.txt", "status": "A"}]
    assert last["details"]["files_changed"] == 2
    assert last["details"]["amend"] is False
    assert last["repo"]["head_after"] == commit
    assert last["actor"]["git_email"] == "carl@example.com"  # GIT_COMMITTER_EMAIL wins
    first = hook_events(sandbox, "post-commit")[0]
    assert first["details"]["parents"] == [parent]


def test_amend_records_commit_and_rewrite(sandbox: GitSandbox) -> None:
    repo, _ = installed(sandbox)
    old = sandbox.out("rev-parse", "HEAD", cwd=repo)
    sandbox.git("commit", "-q", "--amend", "-m", "reworded", cwd=repo)
    new = sandbox.out("rev-parse", "HEAD", cwd=repo)
    assert only(sandbox, "post-commit")["details"]["amend"] is True
    rewrite = only(sandbox, "post-rewrite")
    assert rewrite["operation"] == "git.commit"
    assert rewrite["details"]["rewritten_by"] == "amend"
    assert rewrite["details"]["rewritten"] == [[old, new]]


def test_post_checkout_branch_and_files(sandbox: GitSandbox) -> None:
    repo, _ = installed(sandbox)
    head = sandbox.out("rev-parse", "HEAD", cwd=repo)
    sandbox.git("checkout", "-q", "-b", "topic", cwd=repo)
    (repo / "README").write_text("changed\n")
    sandbox.git("checkout", "--", "README", cwd=repo)
    branch, files = hook_events(sandbox, "post-checkout")
    for event in (branch, files):
        events.validate_event(event)
    assert branch["details"]["kind"] == "branch"
    assert branch["details"]["branch"] == "topic"
    assert (branch["details"]["from"], branch["details"]["to"]) == (head, head)
    assert files["details"]["kind"] == "files"


def test_post_merge_fast_forward_true_merge_and_squash(sandbox: GitSandbox) -> None:
    repo, _ = installed(sandbox)
    sandbox.git("checkout", "-q", "-b", "ff", cwd=repo)
    sandbox.commit(repo, {"f": "1\n"}, "ff")
    sandbox.git("checkout", "-q", "main", cwd=repo)
    sandbox.git("merge", "-q", "ff", cwd=repo)
    sandbox.git("checkout", "-q", "-b", "side", "HEAD~1", cwd=repo)
    sandbox.commit(repo, {"s": "1\n"}, "side")
    sandbox.git("checkout", "-q", "main", cwd=repo)
    sandbox.git("merge", "-q", "--no-edit", "side", cwd=repo)
    sandbox.git("checkout", "-q", "-b", "sq", "HEAD~1", cwd=repo)
    sandbox.commit(repo, {"q": "1\n"}, "sq")
    sandbox.git("checkout", "-q", "main", cwd=repo)
    sandbox.git("merge", "-q", "--squash", "sq", cwd=repo)
    fast, true_merge, squash = hook_events(sandbox, "post-merge")
    assert fast["details"]["fast_forward"] is True
    assert true_merge["details"]["fast_forward"] is False
    assert (squash["details"]["squash"], squash["details"]["fast_forward"]) == (True, False)
    assert true_merge["operation"] == "git.merge"
    events.validate_event(true_merge)


def test_rebase_records_pre_rebase_and_every_pair(sandbox: GitSandbox) -> None:
    repo, _ = installed(sandbox)
    sandbox.git("checkout", "-q", "-b", "topic", cwd=repo)
    first = sandbox.commit(repo, {"t1": "1\n"}, "t1")
    second = sandbox.commit(repo, {"t2": "1\n"}, "t2")
    sandbox.git("checkout", "-q", "main", cwd=repo)
    sandbox.commit(repo, {"m": "1\n"}, "m")
    sandbox.git("rebase", "-q", "main", "topic", cwd=repo)
    pre = only(sandbox, "pre-rebase")
    assert pre["details"]["upstream"] == "main"
    assert pre["details"]["branch"] == "topic"
    rewrite = only(sandbox, "post-rewrite")
    assert rewrite["operation"] == "git.rebase"
    pairs = rewrite["details"]["rewritten"]
    assert [old for old, _ in pairs] == [first, second]
    assert pairs[-1][1] == sandbox.out("rev-parse", "topic", cwd=repo)


def test_pre_push_refs_forced_created_deleted_and_counts(sandbox: GitSandbox) -> None:
    repo, remote = installed(sandbox)
    sandbox.git("push", "-q", "origin", "main:doomed", cwd=repo)
    base = sandbox.out("rev-parse", "HEAD", cwd=repo)
    sandbox.commit(repo, {"p1": "1\n"}, "p1")
    tip = sandbox.commit(repo, {"p2": "1\n"}, "p2")
    sandbox.git("push", "-q", "origin", "main", "main:created", ":doomed", cwd=repo)
    push = hook_events(sandbox, "pre-push")[-1]
    events.validate_event(push)
    assert push["operation"] == "git.push"
    assert push["details"]["phase"] == "pre-push"
    assert push["details"]["remote"] == "origin"
    assert push["details"]["url"] == str(remote)
    refs = {ref["ref"]: ref for ref in push["details"]["refs"]}
    for ref in refs.values():  # detached (auto): the remote took each; inline: not known yet
        assert ref.pop("accepted", True) is True
    assert refs["refs/heads/main"] == {"ref": "refs/heads/main", "local_ref": "refs/heads/main",
                                       "old": base, "new": tip, "created": False,
                                       "deleted": False, "forced": False}
    assert refs["refs/heads/created"]["created"] is True
    assert refs["refs/heads/doomed"]["deleted"] is True
    assert push["details"]["commit_count"] == 2
    assert push["category"] == "delete"
    sandbox.git("reset", "-q", "--hard", base, cwd=repo)
    sandbox.commit(repo, {"other": "1\n"}, "diverged")
    sandbox.git("push", "-q", "--force", "origin", "main", cwd=repo)
    forced = hook_events(sandbox, "pre-push")[-1]
    assert forced["details"]["refs"][0]["forced"] is True
    assert forced["severity"] == "high"


def test_pre_push_of_300_tags(sandbox: GitSandbox) -> None:
    repo, _ = installed(sandbox)
    for index in range(300):
        sandbox.git("tag", f"v{index:03d}", cwd=repo)
    sandbox.git("push", "-q", "origin", "--tags", cwd=repo)
    push = only(sandbox, "pre-push")
    assert len(push["details"]["refs"]) == 300
    assert all(ref["created"] and not ref["forced"] for ref in push["details"]["refs"])
    assert push["details"]["commit_count"] == 0  # the tagged commit is on the remote already


def test_many_forced_updates_use_the_graph_walk(sandbox: GitSandbox) -> None:
    repo, _ = installed(sandbox)
    for index in range(12):
        sandbox.git("branch", f"b{index}", cwd=repo)
    sandbox.git("push", "-q", "origin", "--all", cwd=repo)
    base = sandbox.out("rev-parse", "HEAD", cwd=repo)
    sandbox.git("commit", "-q", "--amend", "-m", "rewritten base", cwd=repo)
    for index in range(12):
        sandbox.git("branch", "-f", f"b{index}", "HEAD", cwd=repo)
    sandbox.git("push", "-q", "--force", "origin", "--all", cwd=repo)
    push = hook_events(sandbox, "pre-push")[-1]
    updated = [ref for ref in push["details"]["refs"] if ref["old"] == base]
    assert len(updated) == 13
    assert all(ref["forced"] for ref in updated)
    assert push["details"]["commit_count"] == 1


def test_reference_transaction_is_opt_in(sandbox: GitSandbox) -> None:
    repo, _ = installed(sandbox)
    sandbox.git("branch", "plain", cwd=repo)
    assert hook_events(sandbox, "reference-transaction") == []
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo), "--with", "reference-transaction")
    sandbox.git("branch", "traced", cwd=repo)
    found = hook_events(sandbox, "reference-transaction")
    assert [event["details"]["ref"] for event in found] == ["refs/heads/traced"]
    assert found[0]["operation"] == "ref.update"
    assert found[0]["category"] == "create"
    events.validate_event(found[0])


@pytest.mark.parametrize("ci", [False, True])
def test_correlation_and_parent_ids(sandbox: GitSandbox, ci: bool) -> None:
    repo, _ = installed(sandbox)
    env = {"GITLAB_CI": "true", "CI_JOB_ID": "77"} if ci else {
        "GITAUDIT_CORRELATION_ID": "corr-1", "GITAUDIT_PARENT_ID": "parent-1"}
    sandbox.git("commit", "-q", "--allow-empty", "-m", "c", cwd=repo, env=env)
    event = only(sandbox, "post-commit")
    if ci:
        assert event["correlation_id"] == "gitlab:77"
        assert event["actor"]["ci"]["provider"] == "gitlab"
    else:
        assert (event["correlation_id"], event["parent_id"]) == ("corr-1", "parent-1")


def test_wrapped_command_and_its_hook_share_the_correlation_id(sandbox: GitSandbox) -> None:
    repo, _ = installed(sandbox)
    sandbox.audited("commit", "-q", "--allow-empty", "-m", "wrapped", cwd=repo)
    hook = only(sandbox, "post-commit")
    (wrapped,) = [event for event in sandbox.events() if event["source"] == "wrapper"]
    assert hook["correlation_id"] == wrapped["correlation_id"]
    assert hook["parent_id"] == wrapped["id"]


def test_pre_push_says_what_the_remote_took(sandbox: GitSandbox) -> None:
    repo, remote = installed(sandbox)
    detached = {"GITAUDIT_HOOK_DETACH": "always"}
    other = sandbox.clone(remote, "other")
    sandbox.commit(other, {"o": "1\n"}, "theirs")
    sandbox.git("push", "-q", "origin", "main", cwd=other)
    sandbox.commit(repo, {"r": "1\n"}, "ours")
    rejected = sandbox.git("push", "origin", "main", cwd=repo, check=False, env=detached)
    assert rejected.returncode == 1  # the remote has work we do not: rejected, "fetch first"
    (event,) = hook_events(sandbox, "pre-push")
    assert event["outcome"] == "failure"
    assert "refused 1 of 1" in event["result"]["error"]
    assert [ref["accepted"] for ref in event["details"]["refs"]] == [False]
    sandbox.git("pull", "-q", "--no-rebase", "origin", "main", cwd=repo)
    sandbox.git("push", "-q", "origin", "main", cwd=repo, env=detached)
    accepted = hook_events(sandbox, "pre-push")[-1]
    assert accepted["outcome"] == "success"
    assert [ref["accepted"] for ref in accepted["details"]["refs"]] == [True]
    inline = {"GITAUDIT_HOOK_DETACH": "never"}  # git waits for the hook: nothing known yet
    sandbox.commit(repo, {"r": "2\n"}, "more")
    sandbox.git("push", "-q", "origin", "main", cwd=repo, env=inline)
    assert "accepted" not in hook_events(sandbox, "pre-push")[-1]["details"]["refs"][0]


def test_git_run_by_a_chained_hook_is_recorded_too(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    own = repo / ".git" / "hooks" / "post-commit"
    own.write_text('#!/bin/sh\n[ -e nested ] && exit 0\n: > nested\n'
                   'git commit -q --allow-empty -m nested\n')
    own.chmod(0o755)
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    sandbox.commit(repo, {"o": "1\n"}, "outer")
    messages = sandbox.out("log", "--format=%s", "-2", cwd=repo).split("\n")
    assert messages == ["nested", "outer"]
    assert len(hook_events(sandbox, "post-commit")) == 2  # one per git commit, nested too


def test_pre_push_too_big_for_one_spool_line_is_cut_and_stored(sandbox: GitSandbox) -> None:
    """400 refs with 1.8 kB names: 1.5 MB of refs, over the 1 MiB spool line limit."""
    repo, _ = installed(sandbox)
    head = sandbox.out("rev-parse", "HEAD", cwd=repo)
    stem = "/".join(["d" * 200] * 9)
    updates = "".join(f"create refs/heads/{stem}/b{index:03d} {head}\n" for index in range(400))
    sandbox.git("update-ref", "--stdin", cwd=repo, input=updates.encode())
    sandbox.git("push", "-q", "origin", "--all", cwd=repo)
    push = only(sandbox, "pre-push")
    refs = push["details"]["refs"]
    assert 0 < len(refs) < 400
    (entry,) = [e for e in push["details"]["truncated"] if e["field"] == "details.refs"]
    assert entry["items"] == 400 and entry["bytes"] > 1024 * 1024
    ingested = gitaudit(sandbox, "ingest")
    assert "0 rejected" in ingested.stdout, ingested.stdout
    logged = gitaudit(sandbox, "log", "--format", "jsonl", "--op", "git.push")
    stored = [json.loads(line) for line in logged.stdout.splitlines()]
    assert [event["id"] for event in stored if event["source"] == "hook"] == [push["id"]]
