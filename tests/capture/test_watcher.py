"""Repo watcher, without watchfiles: ref reading, diffing, the activity log and the decisions.

Repositories are real (git builds them, pygit2 changes their refs the way
libgit2-based tools do: no hooks, no trace2); only the file-change
notifications are replaced by calling :meth:`Watcher.changed` directly.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pygit2
import pytest

from gitaudit.capture import watcher
from gitaudit.capture.watcher import INVALID, ActivityLog, Watcher, WatchError
from gitaudit.events import validate_event
from tests.gitfixtures import GitSandbox

A = "a" * 40
B = "b" * 40
C = "c" * 40


# --- pure parsing and diffing --------------------------------------------------------------


def test_packed_refs_skip_comments_peeled_lines_and_garbage() -> None:
    data = (
        b"# pack-refs with: peeled fully-peeled sorted \n"
        + f"{A} refs/heads/main\n{B} refs/tags/v1\n^{C}\n".encode()
        + b"garbage line\n" + f"{C} HEAD\n".encode()
    )
    assert watcher.parse_packed_refs(data) == {"refs/heads/main": A, "refs/tags/v1": B}


def test_for_each_ref_output_keeps_symbolic_refs() -> None:
    data = f"{A} refs/heads/main \n{A} refs/remotes/origin/HEAD refs/remotes/origin/main\n"
    assert watcher.parse_for_each_ref(data.encode()) == {
        "refs/heads/main": A,
        "refs/remotes/origin/HEAD": "ref: refs/remotes/origin/main",
    }


def test_diff_reports_created_updated_deleted_refs() -> None:
    before = {"refs/heads/main": A, "refs/heads/old": B, "HEAD": "ref: refs/heads/main"}
    after = {"refs/heads/main": C, "refs/tags/v1": A, "HEAD": "ref: refs/heads/main"}
    assert watcher.diff_refs(before, after) == [
        {"ref": "refs/heads/main", "old": A, "new": C, "created": False, "deleted": False},
        {"ref": "refs/heads/old", "old": B, "new": None, "created": False, "deleted": True},
        {"ref": "refs/tags/v1", "old": None, "new": A, "created": True, "deleted": False},
    ]


def test_diff_of_symbolic_head_switch_and_detach() -> None:
    before = {"refs/heads/main": A, "refs/heads/x": B, "HEAD": "ref: refs/heads/main"}
    switched = {**before, "HEAD": "ref: refs/heads/x"}
    assert watcher.diff_refs(before, switched) == [
        {"ref": "HEAD", "old": A, "new": B, "created": False, "deleted": False,
         "symref_from": "refs/heads/main", "symref_to": "refs/heads/x"},
    ]
    detached = {**before, "HEAD": C}
    assert watcher.diff_refs(before, detached) == [
        {"ref": "HEAD", "old": A, "new": C, "created": False, "deleted": False,
         "symref_from": "refs/heads/main", "symref_to": None},
    ]


def test_invalid_ref_content_is_no_change_and_keeps_the_old_value() -> None:
    before = {"refs/heads/main": A}
    after = {"refs/heads/main": INVALID, "refs/heads/new": INVALID}
    assert watcher.diff_refs(before, after) == []
    kept = watcher.settle(before, after)
    assert kept == {"refs/heads/main": A}
    assert watcher.diff_refs(kept, {"refs/heads/main": B}) == [
        {"ref": "refs/heads/main", "old": A, "new": B, "created": False, "deleted": False},
    ]


def test_reflog_line() -> None:
    line = f"{A} {B} Tool User <tool@example.com> 1700000000 +0100\tcommit: fix"
    assert watcher.parse_reflog_line(line) == {
        "old": A, "new": B, "name": "Tool User", "email": "tool@example.com",
        "time": 1700000000, "tz": "+0100", "message": "commit: fix",
    }
    assert watcher.parse_reflog_line(f"{'0' * 40} {B} X <x@y> 1 +0000\t")["old"] is None  # type: ignore[index]
    assert watcher.parse_reflog_line("nonsense") is None


# --- the activity log -----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def git_event(path: str, *, at: str = "2027-01-15T08:00:00Z", duration_ms: float | None = 500.0,
              source: str = "wrapper", operation: str = "git.commit",
              category: str = "create", subcommand: str | None = "commit") -> dict[str, Any]:
    return {"source": source, "operation": operation, "category": category,
            "occurred_at": at, "duration_ms": duration_ms, "repo": {"path": path},
            "details": {"subcommand": subcommand}}


AT = watcher.epoch_of("2027-01-15T08:00:00Z") or 0.0


def test_a_git_command_accounts_for_changes_during_its_run(tmp_path: Path) -> None:
    log = ActivityLog(tolerance=0.5)
    path = str(tmp_path)
    assert log.note(git_event(path))
    assert log.accounts_for([path], AT + 0.3)
    assert log.accounts_for([path], AT + 0.9)  # within tolerance after the end
    assert not log.accounts_for([path], AT + 2.0)
    assert not log.accounts_for([path], AT - 1.0)
    assert not log.accounts_for([str(tmp_path / "other")], AT + 0.3)


def test_a_hook_event_accounts_only_for_the_refs_it_names(tmp_path: Path) -> None:
    log = ActivityLog(tolerance=0.5)
    path = str(tmp_path)
    commit = git_event(path, source="hook", duration_ms=None)
    commit["repo"]["branch"] = "main"
    assert log.note(commit)
    assert log.accounts_for([path], AT - 0.1, "refs/heads/main")
    assert log.accounts_for([path], AT - 0.1, "HEAD")
    assert log.accounts_for([path], AT - 0.1, "worktrees/wt/HEAD")
    assert not log.accounts_for([path], AT - 0.1, "refs/heads/other")  # another tool's write
    assert not log.accounts_for([path], AT - 0.1, "refs/tags/v1")


def test_hook_events_that_name_no_refs_and_wrapper_events_account_for_any(
    tmp_path: Path,
) -> None:
    log = ActivityLog(tolerance=0.5)
    path = str(tmp_path)
    assert log.note(git_event(path, source="hook", operation="git.merge", duration_ms=None,
                              subcommand=None))
    assert log.note(git_event(path, at="2027-01-15T08:01:00Z"))
    assert log.accounts_for([path], AT, "refs/heads/anything")
    assert log.accounts_for([path], AT + 60.2, "refs/tags/v1")


def test_detached_commit_and_reference_transaction_refs() -> None:
    detached = {"source": "hook", "operation": "git.commit", "repo": {"branch": None}}
    assert watcher.touched_refs(detached) == frozenset({"HEAD"})
    transaction = {"source": "hook", "operation": "ref.update", "details": {
        "refs": [{"ref": "refs/heads/a"}, {"ref": "refs/tags/t"}]}}
    assert watcher.touched_refs(transaction) == frozenset({"refs/heads/a", "refs/tags/t"})
    assert watcher.touched_refs({"source": "wrapper", "operation": "git.commit"}) is None


def test_reads_and_watcher_events_account_for_nothing(tmp_path: Path) -> None:
    log = ActivityLog()
    path = str(tmp_path)
    assert not log.note(git_event(path, operation="git.other", category="read",
                                  subcommand="status"))
    assert not log.note(git_event(path, source="watcher", operation="ref.update"))
    assert not log.note({"operation": "claude.request", "repo": {"path": path}})
    assert not log.accounts_for([path], AT)
    # a fetch is "read" by category but writes remote-tracking refs
    assert log.note(git_event(path, operation="git.fetch", category="read", subcommand="fetch"))
    # a hook event is a point in time (no duration)
    assert log.note(git_event(path, source="hook", operation="ref.update", category="update",
                              duration_ms=None, at="2027-01-15T09:00:00Z"))
    assert log.accounts_for([path], AT + 3600.5)


def test_live_process_accounts_until_it_ends_then_its_run_does(tmp_path: Path) -> None:
    clock = Clock()
    log = ActivityLog(tolerance=0.5, clock=clock)
    path = str(tmp_path)
    log.begin("conn-1", path)
    assert log.live([path], clock.now + 1.0)
    assert not log.covered([path], clock.now + 1.0)
    assert not log.live([path], clock.now - 5.0)  # a change before the process started
    start = clock.now
    clock.now += 30.0
    log.end("conn-1")
    assert not log.live([path], start + 1.0)
    assert log.covered([path], start + 10.0)
    clock.now += 60.0
    log.begin("conn-2", path)
    log.forget("conn-2")  # turned out to be `git status`
    assert not log.accounts_for([path], clock.now + 0.1)


def test_activity_log_is_bounded_and_expires(tmp_path: Path) -> None:
    clock = Clock()
    log = ActivityLog(tolerance=0.1, horizon=100.0, per_path=3, max_paths=2, clock=clock)
    for index in range(5):
        log.add("/r1", clock.now + index * 10, clock.now + index * 10 + 1)
    assert not log.covered(["/r1"], clock.now)  # pushed out by newer runs
    assert log.covered(["/r1"], clock.now + 40.5)
    log.add("/r2", clock.now, clock.now + 1)
    log.add("/r3", clock.now, clock.now + 1)
    assert log.stats()["paths"] == 2  # /r1, least recently noted, is forgotten
    clock.now += 1000
    assert not log.covered(["/r2"], clock.now - 1000.5)
    assert log.stats()["paths"] == 0


def test_explains_a_standalone_watchers_event(tmp_path: Path) -> None:
    log = ActivityLog(tolerance=0.5)
    log.note(git_event(str(tmp_path / "linked")))
    event: dict[str, Any] = {"source": "watcher", "operation": "ref.update",
             "occurred_at": "2027-01-15T08:00:00.2Z", "repo": {"path": str(tmp_path)},
             "details": {"observed_at": "2027-01-15T08:00:00.2Z",
                         "repo_paths": [str(tmp_path), str(tmp_path / "linked")]}}
    assert log.explains(event)
    assert not log.explains({**event, "details": {**event["details"], "repo_paths": []}})
    assert not log.explains({**event, "source": "hook"})


# --- real repositories ----------------------------------------------------------------------


def test_locate_rejects_what_is_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(WatchError, match="not a git repository"):
        watcher.locate(str(tmp_path))
    with pytest.raises(WatchError, match="no such directory"):
        watcher.locate(str(tmp_path / "missing"))


def test_linked_worktrees_are_one_repository_with_all_their_paths(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    linked = sandbox.root / "linked"
    sandbox.git("worktree", "add", "-q", "-b", "side", str(linked), cwd=repo)
    found = watcher.locate_all([str(repo), str(linked)])
    assert len(found) == 1
    aliases = found[0].aliases
    assert str(repo.resolve()) in aliases and str(linked.resolve()) in aliases
    refs = watcher.read_refs(found[0])
    assert refs["HEAD"] == "ref: refs/heads/main"
    assert refs["worktrees/linked/HEAD"] == "ref: refs/heads/side"
    assert found[0].path_of("worktrees/linked/HEAD") == str(linked.resolve())


def test_read_refs_loose_over_packed_ignores_locks_flags_garbage(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    head = sandbox.out("rev-parse", "HEAD", cwd=repo)
    sandbox.git("branch", "packed", cwd=repo)
    sandbox.git("pack-refs", "--all", cwd=repo)
    first = sandbox.commit(repo, {"f": "1\n"}, "one")
    heads = repo / ".git/refs/heads"
    (heads / "wip.lock").write_text(first + "\n")
    (heads / "broken").write_text("not an object id\n")
    refs = watcher.read_refs(watcher.locate(str(repo)))
    assert refs["refs/heads/main"] == first  # the loose file wins over packed-refs
    assert refs["refs/heads/packed"] == head
    assert "refs/heads/wip.lock" not in refs and "refs/heads/wip" not in refs
    assert refs["refs/heads/broken"] == INVALID


def held(watch: Watcher, repo: Path, now: float = 0.0) -> list[dict[str, Any]]:
    """Tell the watcher something changed in ``repo``'s refs; the changes it holds."""
    items = watch.changed([str(repo.resolve() / ".git" / "refs" / "heads")], now=now)
    watch.hold(items)
    return [item.change for item in items]


def decided(watch: Watcher, now: float = 100.0) -> list[dict[str, Any]]:
    return [event["details"] for event in watch.decide(now=now)]


async def _nowhere(_events: list[dict[str, Any]]) -> None:
    return None


def new_watcher(repo: Path, **kwargs: Any) -> Watcher:
    watch = Watcher([watcher.locate(str(repo))], _nowhere, window=1.0, **kwargs)
    watch.start()
    return watch


def test_pygit2_branch_and_tag_writes_become_events(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    watch = new_watcher(repo)
    lib = pygit2.Repository(str(repo))
    base = str(lib.head.target)
    lib.create_branch("feature", lib.head.peel(pygit2.Commit))
    lib.references.create("refs/tags/v1", lib.head.target)
    assert [change["ref"] for change in held(watch, repo)] == ["refs/heads/feature",
                                                              "refs/tags/v1"]
    assert watch.decide(now=0.5) == []  # the window is not over
    events = watch.decide(now=1.5)
    assert [(e["details"]["ref"], e["category"]) for e in events] == [
        ("refs/heads/feature", "create"), ("refs/tags/v1", "create")]
    for event in events:
        validate_event(event)
        assert event["source"] == "watcher"
        assert event["details"]["new"] == base and event["details"]["old"] is None
        assert event["actor"]["verified"] is False
        assert event["actor"]["uid"] == os.getuid()
        assert event["details"]["actor_is"] == "file_owner"
        assert event["repo"]["path"] == str(repo.resolve())
    assert events[0]["details"]["reflog"]["new"] == base

    lib.branches["feature"].rename("renamed")
    lib.references.delete("refs/tags/v1")
    assert held(watch, repo) == [
        {"ref": "refs/heads/feature", "old": base, "new": None, "created": False, "deleted": True},
        {"ref": "refs/heads/renamed", "old": None, "new": base, "created": True, "deleted": False},
        {"ref": "refs/tags/v1", "old": base, "new": None, "created": False, "deleted": True},
    ]
    assert [e["category"] for e in watch.decide(now=5.0)] == ["delete", "create", "delete"]


def test_forced_move_and_detached_head(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    base = sandbox.out("rev-parse", "HEAD", cwd=repo)
    second = sandbox.commit(repo, {"f": "2\n"}, "second")
    watch = new_watcher(repo)
    lib = pygit2.Repository(str(repo))
    lib.references["refs/heads/main"].set_target(base, "tool: reset")
    lib.set_head(pygit2.Oid(hex=second))  # detach
    changes = held(watch, repo)
    assert changes == [
        {"ref": "HEAD", "old": second, "new": second, "created": False, "deleted": False,
         "symref_from": "refs/heads/main", "symref_to": None},  # detached where main was
        {"ref": "refs/heads/main", "old": second, "new": base, "created": False,
         "deleted": False},
    ]
    details = decided(watch)
    assert details[1]["forced"] is True  # main moved backwards: history rewritten
    assert details[1]["reflog"]["message"] == "tool: reset"
    # the reflog's identity is the actor's, where hash_user_ids pseudonymizes it; not repeated
    assert not {"name", "email"} & set(details[1]["reflog"])
    assert details[0]["forced"] is False


def test_packed_refs_deleted_and_updated_by_pygit2(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    base = sandbox.out("rev-parse", "HEAD", cwd=repo)
    sandbox.git("branch", "one", cwd=repo)
    sandbox.git("branch", "two", cwd=repo)
    sandbox.git("pack-refs", "--all", cwd=repo)
    assert not (repo / ".git/refs/heads/one").exists()
    second = sandbox.commit(repo, {"f": "2\n"}, "second")
    watch = new_watcher(repo)
    lib = pygit2.Repository(str(repo))
    lib.references.delete("refs/heads/one")
    lib.references["refs/heads/two"].set_target(second)
    assert held(watch, repo) == [
        {"ref": "refs/heads/one", "old": base, "new": None, "created": False, "deleted": True},
        {"ref": "refs/heads/two", "old": base, "new": second, "created": False, "deleted": False},
    ]
    assert [d["forced"] for d in decided(watch)] == [None, False]


def test_changes_git_made_are_dropped_and_counted(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    activity = ActivityLog()
    watch = new_watcher(repo, activity=activity)
    lib = pygit2.Repository(str(repo))
    lib.create_branch("x", lib.head.peel(pygit2.Commit))
    assert len(held(watch, repo)) == 1
    from gitaudit.catalog import now_rfc3339

    activity.note({"source": "wrapper", "operation": "git.branch", "category": "create",
                   "occurred_at": now_rfc3339(), "duration_ms": 20.0,
                   "repo": {"path": str(repo.resolve())}, "details": {}})
    assert watch.decide(now=5.0) == []
    assert watch.explained == 1 and watch.recorded == 0


def test_a_live_git_process_holds_the_change_until_it_ends(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    activity = ActivityLog()
    watch = new_watcher(repo, activity=activity, max_hold=60.0)
    activity.begin("git-gc", str(repo.resolve()))
    lib = pygit2.Repository(str(repo))
    lib.create_branch("y", lib.head.peel(pygit2.Commit))
    assert len(held(watch, repo)) == 1
    assert watch.decide(now=5.0) == [] and len(watch.pending) == 1  # held, not dropped
    activity.end("git-gc")
    assert watch.decide(now=10.0) == [] and watch.explained == 1


def test_a_live_process_holds_only_up_to_max_hold(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    activity = ActivityLog()
    watch = new_watcher(repo, activity=activity, max_hold=3.0)
    activity.begin("stuck", str(repo.resolve()))
    lib = pygit2.Repository(str(repo))
    lib.create_branch("z", lib.head.peel(pygit2.Commit))
    held(watch, repo)
    assert watch.decide(now=2.0) == []
    assert [d["ref"] for d in decided(watch, now=4.0)] == ["refs/heads/z"]


def test_repo_for_maps_ref_storage_paths_only(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    watch = new_watcher(repo)
    git_dir = str(repo.resolve() / ".git")
    assert watch.repo_for(f"{git_dir}/refs/heads/deep/er/branch") is watch.repos[0]
    assert watch.repo_for(f"{git_dir}/HEAD") is watch.repos[0]
    assert watch.repo_for(f"{git_dir}/packed-refs") is watch.repos[0]
    assert watch.repo_for(f"{git_dir}/index") is None
    assert watch.repo_for(f"{git_dir}/refs/heads/main.lock") is None
    assert watch.repo_for("/elsewhere/refs/heads/main") is None


def test_garbage_in_a_ref_file_is_no_event_until_it_is_a_ref_again(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    base = sandbox.out("rev-parse", "HEAD", cwd=repo)
    logged: list[str] = []
    watch = Watcher([watcher.locate(str(repo))], _nowhere,
                    log=lambda event, **_: logged.append(event))
    watch.start()
    second = sandbox.commit(repo, {"f": "2\n"}, "second")  # git, nothing told the watcher
    watch.snapshots[watch.repos[0].common_dir]["refs/heads/main"] = base
    (repo / ".git/refs/heads/main").write_text("\x00garbage")
    assert held(watch, repo) == []
    assert logged == ["ref_file_invalid"]
    (repo / ".git/refs/heads/main").write_text(second + "\n")
    assert held(watch, repo) == [
        {"ref": "refs/heads/main", "old": base, "new": second, "created": False,
         "deleted": False}]


def test_a_deleted_repository_is_logged_and_left_alone(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    logged: list[str] = []
    watch = Watcher([watcher.locate(str(repo))], _nowhere,
                    log=lambda event, **_: logged.append(event))
    watch.start()
    shutil.rmtree(repo)
    assert held(watch, repo) == []  # not "every ref deleted"
    assert logged == ["watched_repo_gone"]
    assert watch.repos[0].gone
