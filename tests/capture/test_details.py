"""argv -> invocation and details: pure functions, no git needed."""

from __future__ import annotations

import pytest

from gitaudit.capture import details


def test_global_options_are_split_from_the_subcommand() -> None:
    inv = details.parse_invocation(
        ["-C", "a", "-C", "b", "-c", "user.name=X", "--git-dir=/g", "--work-tree", "/w",
         "--no-pager", "--bare", "push", "-f", "origin", "main"]
    )
    assert inv.subcommand == "push"
    assert inv.args == ["-f", "origin", "main"]
    assert inv.chdirs == ["a", "b"]
    assert inv.config == ["user.name=X"]
    assert inv.git_dir == "/g"
    assert inv.work_tree == "/w"
    assert inv.bare is True


@pytest.mark.parametrize(
    ("argv", "subcommand"),
    [
        ([], None),
        (["--version"], "version"),
        (["-h"], "help"),
        (["--exec-path"], None),
        (["-c"], None),
        (["-p", "log", "-1"], "log"),
    ],
)
def test_subcommand_edge_cases(argv: list[str], subcommand: str | None) -> None:
    assert details.parse_invocation(argv).subcommand == subcommand


def test_split_options_handles_clusters_values_and_dashdash() -> None:
    opts = details.split_options(
        ["-qb", "main", "--depth=1", "--origin", "up", "-j4", "url", "dir", "--", "x"],
        frozenset({"-b", "--origin", "-j", "--depth"}),
    )
    assert opts.opts == [("-q", None), ("-b", "main"), ("--depth", "1"), ("--origin", "up"),
                         ("-j", "4")]
    assert opts.positionals == ["url", "dir"]
    assert opts.pathspecs == ["x"]
    assert opts.value("-b", "--branch") == "main"
    assert opts.last_of("--depth", "-q") == "--depth"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:token@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://ghp_secret@github.com/o/r.git", "https://github.com/o/r.git"),
        ("http://u:p@host:8080/r", "http://host:8080/r"),
        ("git+https://u:p@host/r", "git+https://host/r"),
        ("ssh://git:pw@host/r.git", "ssh://git@host/r.git"),
        ("ssh://git@host/r.git", "ssh://git@host/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("/srv/git/r.git", "/srv/git/r.git"),
        ("file:///srv/git/r.git", "file:///srv/git/r.git"),
        ("https://host/path@with/at", "https://host/path@with/at"),
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    assert details.strip_credentials(url) == expected


@pytest.mark.parametrize(
    ("remote", "worktree", "name"),
    [
        ("https://github.com/o/r.git", "/w/x", "r"),
        ("git@github.com:o/r.git", None, "r"),
        ("/srv/r/.git", None, "r"),
        (None, "/home/u/project", "project"),
        (None, None, None),
    ],
)
def test_repo_name(remote: str | None, worktree: str | None, name: str | None) -> None:
    assert details.repo_name(remote, worktree) == name


def test_clone_request_guesses_target_and_strips_url() -> None:
    request = details.clone_request(
        ["--depth", "1", "-b", "dev", "https://u:t@example.com/team/proj.git"]
    )
    assert request["url"] == "https://example.com/team/proj.git"
    assert request["branch"] == "dev"
    assert request["depth"] == 1
    assert request["target"] == "proj"
    bare = details.clone_request(["--bare", "git@h:x/y.git", "--", "dest"])
    assert bare["target"] == "dest"
    assert bare["bare"] is True
    assert details.clone_target("https://h/x/y/.git/", bare=True) == "y.git"


def test_push_request_flags() -> None:
    request = details.push_request(["-u", "origin", "+main", ":gone", "--tags"])
    assert request["remote"] == "origin"
    assert request["refspecs"] == ["+main", ":gone"]
    assert request["force"] is True
    assert request["delete"] is True
    assert request["tags"] is True
    assert request["set_upstream"] is True
    assert details.push_request([])["remote"] is None
    assert details.push_request(["--force-with-lease", "o", "x"])["force_with_lease"] is True


def test_rebase_and_pull_requests() -> None:
    assert details.rebase_request(["--onto", "main", "up", "topic"]) == {
        "action": "start", "upstream": "up", "onto_name": "main", "branch": "topic",
        "interactive": False, "root": False, "autosquash": False,
    }
    assert details.rebase_request(["--continue"])["action"] == "continue"
    assert details.pull_request(["--rebase", "origin", "main"])["rebase"] is True
    assert details.pull_request(["--rebase=merges"])["rebase"] == "merges"
    assert details.pull_request(["--no-rebase"])["rebase"] is False
    assert details.pull_request([])["rebase"] is None


@pytest.mark.parametrize(
    ("args", "mode", "target", "paths"),
    [
        ([], "mixed", "HEAD", []),
        (["--hard", "HEAD~1"], "hard", "HEAD~1", []),
        (["--soft"], "soft", "HEAD", []),
        (["--keep", "x"], "keep", "x", []),
        (["--", "file"], "paths", "HEAD", ["file"]),
        (["HEAD", "a", "b"], "paths", "HEAD", ["a", "b"]),
    ],
)
def test_reset_modes(args: list[str], mode: str, target: str, paths: list[str]) -> None:
    assert details.reset_request(args) == {"mode": mode, "target": target, "paths": paths}


def test_checkout_and_switch_requests() -> None:
    assert details.checkout_request(["-b", "feature", "main"])["create"] == "feature"
    assert details.checkout_request(["-b", "feature", "main"])["target"] == "main"
    restore = details.checkout_request(["main", "--", "a.txt"])
    assert (restore["target"], restore["paths"], restore["mode"]) == ("main", ["a.txt"], "paths")
    plain = details.checkout_request(["topic"])
    assert (plain["target"], plain["mode"]) == ("topic", "branch")
    switch = details.request_details("switch", ["-c", "new", "--detach"])
    assert (switch["create"], switch["detach"]) == ("new", True)


def test_other_requests() -> None:
    assert details.merge_request(["--no-ff", "topic"])["ff"] == "never"
    assert details.merge_request(["--abort"])["action"] == "abort"
    assert details.commit_request(["--amend", "-m", "msg", "--no-verify"])["amend"] is True
    assert details.cherry_pick_request(["-m", "1", "abc"])["mainline"] == 1
    assert details.tag_request(["-d", "v1", "v2"])["names"] == ["v1", "v2"]
    assert details.branch_request(["-D", "old"])["delete"] is True
    assert details.fetch_request(["--all", "--prune"])["remote"] is None
    assert details.request_details("status", ["-s"]) == {}
    assert details.request_details(None, []) == {}


def test_alias_rewrite() -> None:
    inv = details.parse_invocation(["-C", "x", "co", "nope"])
    rewritten = details.rewrite_for_alias(inv, "co", ["checkout", "nope"])
    assert (rewritten.subcommand, rewritten.args, rewritten.chdirs) == (
        "checkout", ["nope"], ["x"]
    )
    assert details.rewrite_for_alias(inv, "other", ["x"]) is inv


def test_push_refs_from_tracking_maps_remote_branches() -> None:
    before = {"refs/remotes/origin/main": "a" * 40, "refs/remotes/origin/gone": "b" * 40}
    after = {"refs/remotes/origin/main": "c" * 40, "refs/remotes/origin/new": "d" * 40,
             "refs/remotes/origin/HEAD": "c" * 40}
    refs, tips = details.push_refs_from_tracking(before, after)
    assert [(r["ref"], r["created"], r["deleted"]) for r in refs] == [
        ("refs/heads/gone", False, True),
        ("refs/heads/main", False, False),
        ("refs/heads/new", True, False),
    ]
    assert tips == ["a" * 40, "b" * 40]
