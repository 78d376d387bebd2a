"""Clone, fetch, push, checkout and reset through the wrapper against a local bare remote."""

from __future__ import annotations

from typing import Any

from gitaudit import events
from tests.gitfixtures import GitSandbox

SECRET_URL = "https://deploy:tok3n-SECRET@git.example.com/team/app.git"


def validated(event: dict[str, Any]) -> dict[str, Any]:
    events.validate_event(event)
    return event


def published(sandbox: GitSandbox) -> tuple[Any, Any]:
    """A bare remote with one commit on main, and a working clone of it."""
    remote = sandbox.bare_remote()
    seed = sandbox.repo("seed", remote=remote)
    sandbox.git("push", "-q", "origin", "main", cwd=seed)
    return remote, sandbox.clone(remote, "work")


def test_clone_with_credentials_in_the_url(sandbox: GitSandbox) -> None:
    remote, _ = published(sandbox)
    rewrite = f"url.{remote}.insteadOf={SECRET_URL}"
    result = sandbox.audited("-c", rewrite, "clone", "-q", "--depth", "1", "-b", "main",
                             SECRET_URL)
    assert result.returncode == 0, result.stderr
    event = validated(sandbox.last_event())
    target = sandbox.root / "app"
    assert event["operation"] == "git.clone"
    assert event["category"] == "read"
    details = event["details"]
    assert details["url"] == "https://git.example.com/team/app.git"
    assert (details["branch"], details["depth"], details["target"]) == ("main", 1, str(target))
    repo = event["repo"]
    assert repo["path"] == str(target)
    assert repo["remote"] == "https://git.example.com/team/app.git"
    assert repo["name"] == "app"
    assert repo["head_before"] is None
    assert repo["head_after"] == sandbox.out("rev-parse", "HEAD", cwd=target)
    line = (sandbox.spool / "active.jsonl").read_text()
    assert "tok3n-SECRET" not in line  # not in url, remote, argv or error: nowhere


def test_failed_clone_records_failure_without_credentials(sandbox: GitSandbox) -> None:
    result = sandbox.audited("clone", "-q", "https://u:hunter2@nonexistent.invalid/x.git",
                             cwd=sandbox.root)
    assert result.returncode != 0
    event = validated(sandbox.last_event())
    assert (event["operation"], event["outcome"]) == ("git.clone", "failure")
    assert event["repo"] is None
    assert event["details"]["url"] == "https://nonexistent.invalid/x.git"
    assert event["result"]["error"]
    assert "hunter2" not in (sandbox.spool / "active.jsonl").read_text()


def push_event(sandbox: GitSandbox, work: Any, *args: str) -> dict[str, Any]:
    result = sandbox.audited("push", "-q", *args, cwd=work)
    assert result.returncode == 0, result.stderr
    event = validated(sandbox.last_event())
    assert event["operation"] == "git.push"
    return event


def test_push_create_update_force_and_delete(sandbox: GitSandbox) -> None:
    _, work = published(sandbox)
    sandbox.git("checkout", "-q", "-b", "feature", cwd=work)
    first = sandbox.commit(work, {"a": "1"}, "feature 1")
    created = push_event(sandbox, work, "-u", "origin", "feature")
    assert created["details"]["refs_source"] == "packet-trace"
    assert created["details"]["refs"] == [{
        "ref": "refs/heads/feature", "old": None, "new": first, "created": True,
        "deleted": False, "forced": False, "status": "ok", "reason": None,
    }]
    assert created["details"]["commit_count"] == 1  # main was already there
    assert (created["category"], created["severity"]) == ("create", "low")
    assert created["details"]["remote"] == "origin"

    sandbox.commit(work, {"a": "2"}, "feature 2")
    second = sandbox.commit(work, {"a": "3"}, "feature 3")
    updated = push_event(sandbox, work)
    assert updated["details"]["remote"] == "origin"  # git's default, as git chose it
    assert updated["details"]["url"] == str(sandbox.root / "remote.git")
    (ref,) = updated["details"]["refs"]
    assert (ref["old"], ref["new"], ref["created"], ref["forced"]) == (first, second, False,
                                                                       False)
    assert updated["details"]["commit_count"] == 2
    assert (updated["category"], updated["severity"]) == ("update", "low")

    sandbox.git("reset", "-q", "--hard", first, cwd=work)
    rewritten = sandbox.commit(work, {"a": "rewritten"}, "feature rewritten")
    forced = push_event(sandbox, work, "--force", "origin", "feature")
    (ref,) = forced["details"]["refs"]
    assert (ref["old"], ref["new"], ref["forced"]) == (second, rewritten, True)
    assert forced["details"]["commit_count"] == 1
    assert (forced["category"], forced["severity"]) == ("update", "high")

    deleted = push_event(sandbox, work, "--delete", "origin", "feature")
    (ref,) = deleted["details"]["refs"]
    assert (ref["old"], ref["new"], ref["deleted"], ref["created"]) == (rewritten, None, True,
                                                                        False)
    assert (deleted["category"], deleted["severity"]) == ("delete", "medium")
    assert deleted["details"]["commit_count"] == 0


def test_rejected_push_and_nothing_to_push(sandbox: GitSandbox) -> None:
    remote, work = published(sandbox)
    other = sandbox.clone(remote, "other")
    sandbox.commit(other, {"o": "1"}, "elsewhere")
    sandbox.git("push", "-q", "origin", "main", cwd=other)
    sandbox.commit(work, {"w": "1"}, "here")
    rejected = sandbox.audited("push", "origin", "main", cwd=work)
    assert rejected.returncode == 1
    event = validated(sandbox.last_event())
    assert event["outcome"] == "failure"
    assert event["details"]["refs"] == []  # git refused locally: nothing was sent
    assert "failed to push some refs" in event["result"]["error"]

    sandbox.git("pull", "-q", "--rebase", cwd=work)
    sandbox.git("push", "-q", cwd=work)
    nothing = push_event(sandbox, work)
    assert nothing["details"]["refs"] == []
    assert nothing["details"]["commit_count"] == 0


def test_push_falls_back_to_tracking_refs_when_packets_are_traced_by_the_user(
    sandbox: GitSandbox,
) -> None:
    _, work = published(sandbox)
    theirs = sandbox.root / "my-packet-trace.txt"
    new = sandbox.commit(work, {"t": "1"}, "tracked")
    old = sandbox.out("rev-parse", "origin/main", cwd=work)
    result = sandbox.audited("push", "-q", cwd=work, env={"GIT_TRACE_PACKET": str(theirs)})
    assert result.returncode == 0, result.stderr
    assert b"push>" in theirs.read_bytes()  # the user's trace is left to them, intact
    event = validated(sandbox.last_event())
    assert event["details"]["refs_source"] == "tracking-refs"
    (ref,) = event["details"]["refs"]
    assert (ref["ref"], ref["old"], ref["new"], ref["forced"]) == ("refs/heads/main", old, new,
                                                                   False)
    assert event["details"]["commit_count"] == 1


def test_fetch_records_updated_tracking_refs(sandbox: GitSandbox) -> None:
    remote, work = published(sandbox)
    other = sandbox.clone(remote, "other")
    old = sandbox.out("rev-parse", "origin/main", cwd=work)
    new = sandbox.commit(other, {"o": "1"}, "elsewhere")
    sandbox.git("push", "-q", "origin", "main", cwd=other)
    result = sandbox.audited("fetch", "-q", "origin", cwd=work)
    assert result.returncode == 0, result.stderr
    event = validated(sandbox.last_event())
    assert (event["operation"], event["category"]) == ("git.fetch", "read")
    assert event["details"]["remote"] == "origin"
    assert event["details"]["updated_refs"] == [
        {"ref": "refs/remotes/origin/main", "old": old, "new": new}
    ]


def test_push_remote_from_push_default(sandbox: GitSandbox) -> None:
    remote, work = published(sandbox)
    sandbox.git("remote", "add", "mirror", str(remote), cwd=work)
    sandbox.git("config", "remote.pushDefault", "mirror", cwd=work)
    sandbox.commit(work, {"m": "1"}, "to mirror")
    event = push_event(sandbox, work, "--set-upstream")
    assert event["details"]["remote"] == "mirror"


def test_checkout_and_reset(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    base = sandbox.out("rev-parse", "HEAD", cwd=repo)
    tip = sandbox.commit(repo, {"f": "1"}, "second")
    sandbox.audited("checkout", "-q", "-b", "topic", cwd=repo)
    checkout = validated(sandbox.last_event())
    assert (checkout["operation"], checkout["category"]) == ("git.checkout", "update")
    assert checkout["details"]["create"] == "topic"
    assert checkout["details"]["branch_before"] == "main"
    assert checkout["repo"]["branch"] == "topic"

    sandbox.audited("reset", "-q", "--hard", "HEAD~1", cwd=repo)
    reset = validated(sandbox.last_event())
    assert reset["operation"] == "git.reset"
    assert (reset["details"]["mode"], reset["details"]["target"]) == ("hard", "HEAD~1")
    assert reset["severity"] == "medium"
    assert (reset["repo"]["head_before"], reset["repo"]["head_after"]) == (tip, base)

    sandbox.audited("switch", "-q", "--detach", "main", cwd=repo)
    switch = validated(sandbox.last_event())
    assert switch["operation"] == "git.checkout"
    assert switch["repo"]["branch"] is None
    assert switch["repo"]["head_after"] == tip
