"""Cheap repository reads, checked against what git itself says."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitaudit.capture import gitcmd, gitstate
from tests.gitfixtures import REAL_GIT, GitSandbox, resolve, stopping


def layout_of(path: Path, **kwargs: str) -> gitstate.Layout:
    found = gitstate.discover(str(path), {}, **kwargs)
    assert found is not None
    return found


def test_loose_then_packed_refs(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    head = sandbox.out("rev-parse", "HEAD", cwd=repo)
    sandbox.git("branch", "topic", cwd=repo)
    layout = layout_of(repo)
    assert layout == gitstate.Layout(str(repo / ".git"), str(repo / ".git"), str(repo))
    reader = gitstate.RefReader(layout)
    assert reader.head() == gitstate.Head("refs/heads/main", head)
    assert reader.oid("refs/heads/topic") == head

    sandbox.git("pack-refs", "--all", cwd=repo)
    assert not (repo / ".git/refs/heads/topic").exists()
    packed = gitstate.RefReader(layout)
    assert packed.head() == gitstate.Head("refs/heads/main", head)
    assert packed.oid("refs/heads/topic") == head
    assert packed.oid("refs/heads/top") is None  # no prefix matches
    assert packed.refs("refs/heads/") == {"refs/heads/main": head, "refs/heads/topic": head}


def test_loose_ref_overrides_a_stale_packed_one(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    sandbox.git("pack-refs", "--all", cwd=repo)
    new = sandbox.commit(repo, {"f": "1"}, "second")
    reader = gitstate.RefReader(layout_of(repo))
    assert reader.head().oid == new
    assert reader.refs("refs/heads/")["refs/heads/main"] == new


def test_detached_unborn_and_symbolic(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    head = sandbox.out("rev-parse", "HEAD", cwd=repo)
    sandbox.git("checkout", "-q", "--detach", cwd=repo)
    assert gitstate.read_head(layout_of(repo)) == gitstate.Head(None, head)

    sandbox.git("checkout", "-q", "--orphan", "fresh", cwd=repo)
    assert gitstate.read_head(layout_of(repo)) == gitstate.Head("refs/heads/fresh", None)

    sandbox.git("symbolic-ref", "refs/heads/alias", "refs/heads/main", cwd=repo)
    sandbox.git("symbolic-ref", "HEAD", "refs/heads/alias", cwd=repo)
    assert gitstate.read_head(layout_of(repo)) == gitstate.Head("refs/heads/main", head)


def test_discovery_from_a_subdirectory_and_with_options(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    (repo / "a/b").mkdir(parents=True)
    assert layout_of(repo / "a/b").worktree == str(repo)
    assert gitstate.start_dir(str(sandbox.root), ["work", "", "a", "../a/b"]) == str(repo / "a/b")
    explicit = gitstate.discover(str(sandbox.root), {}, git_dir="work/.git")
    assert explicit == gitstate.Layout(str(repo / ".git"), str(repo / ".git"), str(sandbox.root))
    env_dir = gitstate.discover(str(sandbox.root), {"GIT_DIR": str(repo / ".git"),
                                                     "GIT_WORK_TREE": str(repo)})
    assert env_dir is not None
    assert env_dir.worktree == str(repo)
    assert gitstate.discover(str(sandbox.root), {}) is None


def test_ceiling_directories_stop_the_walk(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    (repo / "sub").mkdir()
    ceiling = {"GIT_CEILING_DIRECTORIES": str(repo)}
    assert gitstate.discover(str(repo / "sub"), ceiling) is None
    assert gitstate.discover(str(repo), ceiling) is not None


def test_bare_repository(sandbox: GitSandbox) -> None:
    remote = sandbox.bare_remote()
    layout = layout_of(remote)
    assert layout.worktree is None
    assert gitstate.read_head(layout) == gitstate.Head("refs/heads/main", None)
    core = gitstate.read_core_config(layout.common_dir)
    assert core["core.bare"] == "true"
    explicit = gitstate.discover(str(sandbox.root), {"GIT_DIR": str(remote)})
    assert explicit is not None
    assert explicit.worktree is None


def test_linked_worktree_uses_gitfile_and_commondir(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    sandbox.git("worktree", "add", "-q", "-b", "wt", str(sandbox.root / "wt"), cwd=repo)
    new = sandbox.commit(sandbox.root / "wt", {"w": "1"}, "in worktree")
    layout = layout_of(sandbox.root / "wt")
    assert layout.git_dir == str(repo / ".git/worktrees/wt")
    assert layout.common_dir == str(repo / ".git")
    assert layout.worktree == str(sandbox.root / "wt")
    assert gitstate.read_head(layout) == gitstate.Head("refs/heads/wt", new)
    main_head = sandbox.out("rev-parse", "HEAD", cwd=repo)
    assert gitstate.read_head(layout_of(repo)).oid == main_head


def test_submodule_gitfile(sandbox: GitSandbox) -> None:
    library = sandbox.repo("library")
    lib_head = sandbox.out("rev-parse", "HEAD", cwd=library)
    app = sandbox.repo("app")
    sandbox.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library),
                "lib", cwd=app)
    assert (app / "lib/.git").is_file()
    layout = layout_of(app / "lib")
    assert layout.git_dir == str(app / ".git/modules/lib")
    assert layout.worktree == str(app / "lib")
    assert gitstate.read_head(layout).oid == lib_head


def test_unusual_layout_falls_back_to_git(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    head = sandbox.out("rev-parse", "HEAD", cwd=repo)
    layout = layout_of(repo)
    # what a reftable repository keeps in HEAD: the files readers must not trust it
    (repo / ".git/HEAD").write_text("ref: refs/heads/.invalid\n")
    with pytest.raises(gitstate.UnusualLayout):
        gitstate.RefReader(layout).head()
    (repo / ".git/HEAD").write_text("ref: refs/heads/main\n")
    expected = gitstate.Head("refs/heads/main", head)
    assert gitstate.head_via_git(REAL_GIT, layout, sandbox.env) == expected


def test_rebase_state_and_in_progress(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    base = sandbox.out("rev-parse", "HEAD", cwd=repo)
    sandbox.git("checkout", "-q", "-b", "topic", cwd=repo)
    sandbox.commit(repo, {"README": "topic\n"}, "topic change")
    topic = sandbox.out("rev-parse", "HEAD", cwd=repo)
    sandbox.git("checkout", "-q", "main", cwd=repo)
    main = sandbox.commit(repo, {"README": "main\n"}, "main change")
    sandbox.git("checkout", "-q", "topic", cwd=repo)
    assert gitstate.read_rebase_state(layout_of(repo)) is None
    assert sandbox.git("rebase", "main", cwd=repo, check=False).returncode != 0
    state = gitstate.read_rebase_state(layout_of(repo))
    assert state == gitstate.RebaseState("merge", "refs/heads/topic", main, topic, [])
    assert gitstate.operations_in_progress(layout_of(repo)) == ["rebase"]
    assert base != main


def test_fetch_head_and_config_parsing(sandbox: GitSandbox) -> None:
    remote = sandbox.bare_remote()
    repo = sandbox.repo(remote=remote)
    sandbox.git("push", "-q", "origin", "main", cwd=repo)
    sandbox.git("fetch", "-q", "origin", "main", cwd=repo)
    layout = layout_of(repo)
    assert gitstate.fetch_head_branches(layout) == ["main"]
    params = gitstate.config_params(REAL_GIT, layout, str(repo), sandbox.env)
    assert params == {"user.name": "Ulla User", "user.email": "ulla@example.com",
                      "remote.origin.url": str(remote)}
    assert gitstate.parse_config_z(b"a.b\nx\x00a.b\ny\x00c.d\n\x00") == {"a.b": "y", "c.d": ""}
    head = sandbox.out("rev-parse", "HEAD", cwd=repo)
    assert gitstate.rev_parse(REAL_GIT, layout, "HEAD", sandbox.env) == head
    assert gitstate.rev_parse(REAL_GIT, layout, "no-such-ref", sandbox.env) is None


def test_rebase_note_round_trip(sandbox: GitSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(sandbox.root / "state"))
    layout = layout_of(sandbox.repo())
    state = gitstate.RebaseState("merge", "refs/heads/x", "o" * 40, "a" * 40, [])
    assert gitstate.load_rebase_note(layout, state) is None
    gitstate.save_rebase_note(layout, state, {"upstream": "origin/main", "onto": "o" * 40})
    note = gitstate.load_rebase_note(layout, state)
    assert note is not None
    assert note["upstream"] == "origin/main"
    other = state._replace(orig_head="b" * 40)
    assert gitstate.load_rebase_note(layout, other) is None  # a different rebase
    gitstate.clear_rebase_note(layout)
    gitstate.clear_rebase_note(layout)  # idempotent
    assert gitstate.load_rebase_note(layout, state) is None


def test_gitcmd_strips_redirecting_variables_and_reports_failures(sandbox: GitSandbox) -> None:
    env = gitcmd.clean_env({"GIT_DIR": "/elsewhere", "GIT_INDEX_FILE": "/x", "GIT_TRACE2": "1",
                            "GIT_CONFIG_GLOBAL": "/g", "GIT_CONFIG_KEY_0": "k",
                            "GIT_AUTHOR_NAME": "a", "PATH": "/bin"}, {"GIT_DIR": "/mine"})
    assert env == {"GIT_DIR": "/mine", "GIT_CONFIG_GLOBAL": "/g", "GIT_CONFIG_KEY_0": "k",
                   "GIT_AUTHOR_NAME": "a", "PATH": "/bin", "GIT_TERMINAL_PROMPT": "0",
                   "GIT_OPTIONAL_LOCKS": "0", "GIT_TRACE2_EVENT": "0"}
    repo = sandbox.repo()
    redirected = {**sandbox.env, "GIT_DIR": str(sandbox.root / "nowhere")}
    ok = gitcmd.run(REAL_GIT, ["rev-parse", "--show-toplevel"], cwd=str(repo), environ=redirected)
    assert ok.stdout.decode().strip() == str(repo)
    with pytest.raises(gitcmd.GitCommandError) as failure:
        gitcmd.run(REAL_GIT, ["rev-parse", "--verify", "nope"], cwd=str(repo), environ=redirected)
    text = str(failure.value)
    assert "rev-parse --verify nope" in text
    assert "exit code 128" in text
    assert "stderr: fatal: Needed a single revision" in text
    with pytest.raises(gitcmd.GitCommandError):
        gitcmd.run(str(sandbox.root / "no-git"), ["version"])


def test_anonymous_fd_is_private_and_never_a_standard_stream() -> None:
    saved = os.dup(0)
    os.close(0)
    try:
        fd = gitcmd.anonymous_fd("test")
    finally:
        os.dup2(saved, 0)
        os.close(saved)
    try:
        assert fd > 2
        assert not os.get_inheritable(fd)
        os.write(fd, b"hello")
        assert gitcmd.read_fd(fd) == b"hello"
        assert gitcmd.read_fd(fd, limit=2) == b"he"
        straggler = os.dup(fd)  # what a daemon git started in the background would hold
    finally:
        gitcmd.retire_fd(fd)
    try:
        assert os.fstat(straggler).st_size == 0
        with pytest.raises(PermissionError):  # sealed: it cannot grow any more
            os.write(straggler, b"late trace event")
    finally:
        os.close(straggler)


def test_conflict_state_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    layout = gitstate.Layout(str(tmp_path / "repo/.git"), str(tmp_path / "repo/.git"),
                             str(tmp_path / "repo"))
    other = gitstate.Layout(str(tmp_path / "b/.git"), str(tmp_path / "b/.git"), None)
    path = gitstate.save_conflict_state(layout, {"detected_id": "x", "files": []})
    assert path == gitstate.conflict_state_path(layout) != gitstate.conflict_state_path(other)
    assert path.startswith(str(tmp_path / "state/gitaudit/conflicts/"))
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert gitstate.load_conflict_state(path) == {"detected_id": "x", "files": []}
    gitstate.clear_conflict_state(path)
    gitstate.clear_conflict_state(path)  # twice is fine
    assert gitstate.load_conflict_state(path) is None


@pytest.mark.parametrize("how", ["continue", "quit"])
def test_rebase_head_left_behind_is_no_stop(sandbox: GitSandbox, how: str) -> None:
    stop = stopping(sandbox, "rebase")
    assert sandbox.git(*stop.start, cwd=stop.repo, check=False).returncode != 0
    layout = layout_of(stop.repo)
    stopped = gitstate.current_stop(layout)
    assert stopped is not None and stopped[0] == "rebase"
    resolve(sandbox, stop.repo, "a.txt", "manual")
    sandbox.git("rebase", f"--{how}", cwd=stop.repo, env={"GIT_EDITOR": "true"})
    assert (stop.repo / ".git/REBASE_HEAD").exists()  # what git 2.39 leaves behind
    assert gitstate.current_stop(layout) is None
    assert not gitstate.rebasing(layout)


def test_ended_stops_are_remembered_per_worktree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    layout = gitstate.Layout(str(tmp_path / "repo/.git"), str(tmp_path / "repo/.git"),
                             str(tmp_path / "repo"))
    other = gitstate.Layout(str(tmp_path / "b/.git"), str(tmp_path / "b/.git"), None)
    stops = [("rebase", f"{n:040x}", 1_700_000_000_000_000_000 + n) for n in range(20)]
    for stop in stops:
        path = gitstate.save_conflict_state(layout, {"detected_id": "x", "stop": list(stop)})
        gitstate.end_conflict_state(path, gitstate.load_conflict_state(path) or {})
        assert gitstate.load_conflict_state(path) is None
    assert gitstate.ended_stops(layout) == set(stops[-gitstate.MAX_ENDED:])
    assert gitstate.ended_stops(other) == set()
    ended = Path(gitstate.conflict_state_path(layout)).with_suffix(".ended")
    assert os.stat(ended).st_mode & 0o777 == 0o600
    path = gitstate.save_conflict_state(layout, {"detected_id": "y", "stop": None})
    gitstate.end_conflict_state(path, {"detected_id": "y", "stop": None})  # nothing to keep
    assert len(gitstate.ended_stops(layout)) == gitstate.MAX_ENDED
    assert gitstate.stop_key(["merge", "0" * 40, 5]) == ("merge", "0" * 40, 5)
    assert gitstate.stop_key(["merge", "nope", 5]) is None
    assert gitstate.stop_key(None) is None


def test_a_marker_of_an_ended_stop_is_passed_over(sandbox: GitSandbox) -> None:
    stop = stopping(sandbox, "cherry-pick")
    assert sandbox.git(*stop.start, cwd=stop.repo, check=False).returncode != 0
    layout = layout_of(stop.repo)
    picked = gitstate.current_stop(layout)
    assert picked is not None and picked[0] == "cherry-pick"
    marker = stop.repo / ".git" / "CHERRY_PICK_HEAD"
    content = marker.read_bytes()
    sandbox.git("cherry-pick", "--abort", cwd=stop.repo)
    assert sandbox.git("merge", "topic", cwd=stop.repo, check=False).returncode == 1
    marker.write_bytes(content)  # left behind as git wrote it when the pick stopped
    os.utime(marker, ns=(picked[2], picked[2]))
    assert gitstate.current_stop(layout) == picked  # the marker first, if nothing says ended
    merged = gitstate.current_stop(layout, {picked})
    assert merged is not None and merged[0] == "merge"
    assert merged[1] == sandbox.out("rev-parse", "topic", cwd=stop.repo)
