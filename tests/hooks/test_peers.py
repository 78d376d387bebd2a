"""gitaudit's hooks next to real hook managers: pre-commit (PyPI), husky and lefthook (npm).

Whatever the install order and scope: a hook that blocked before still blocks (same exit
code), gitaudit records each operation exactly once, and once both tools are uninstalled,
in either order, nothing of gitaudit is left and the other hooks are byte-exact as before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitfixtures import GitSandbox
from tests.hooks.conftest import gitaudit, hook_events
from tests.hooks.peers import WITHOUT_HOOKS_PATH, precommit_exe, run_tool
from tests.hooks.test_install import global_hooks, snapshot

PRE_COMMIT_CONFIG = """\
repos:
- repo: local
  hooks:
  - id: no-forbidden
    name: no FORBIDDEN
    entry: FORBIDDEN
    language: pygrep
    stages: [pre-commit, pre-push]
"""


def _hook(path: Path, body: str) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path.read_bytes()


def _setup(sandbox: GitSandbox) -> tuple[Path, Path]:
    remote = sandbox.bare_remote()
    repo = sandbox.repo(remote=remote)
    sandbox.commit(repo, {".pre-commit-config.yaml": PRE_COMMIT_CONFIG}, "config")
    sandbox.git("push", "-q", "origin", "main", cwd=repo)
    return repo, remote


def precommit(sandbox: GitSandbox, repo: Path, *args: str) -> None:
    run_tool(sandbox, [precommit_exe(), *args], repo, WITHOUT_HOOKS_PATH)


def commit_rc(sandbox: GitSandbox, repo: Path, content: str, message: str = "m") -> int:
    (repo / "file").write_text(content)
    sandbox.git("add", "file", cwd=repo)
    return sandbox.git("commit", "-q", "-m", message, cwd=repo, check=False).returncode


def no_gitaudit_left(folder: Path) -> None:
    if folder.is_dir():
        for path in folder.iterdir():
            assert ".gitaudit-legacy" not in path.name, path
            assert not path.is_file() or b"# gitaudit-hook" not in path.read_bytes(), path


# --- (1) a global install switches off no hook -------------------------------------------


@pytest.mark.parametrize("order", ["gitaudit-first", "pre-commit-first"])
def test_global_install_keeps_the_repositorys_pre_commit_blocking(
    sandbox: GitSandbox, order: str,
) -> None:
    repo, _ = _setup(sandbox)
    steps = [lambda: precommit(sandbox, repo, "install", "-t", "pre-commit", "-t", "pre-push"),
             lambda: gitaudit(sandbox, "hooks", "install", "--global")]
    for step in steps if order == "pre-commit-first" else steps[::-1]:
        step()
    assert commit_rc(sandbox, repo, "FORBIDDEN\n") == 1  # pre-commit's hook still blocks
    assert hook_events(sandbox, "post-commit") == []
    assert commit_rc(sandbox, repo, "fine\n") == 0
    assert len(hook_events(sandbox, "post-commit")) == 1
    status = gitaudit(sandbox, "hooks", "status", "--global").stdout
    assert "pre-commit" in status and "chains" in status and "repair" not in status


def test_global_install_keeps_a_previous_global_commit_msg_blocking(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    company = sandbox.root / "company"
    _hook(company / "commit-msg", 'grep -q BAD "$1" && exit 3; exit 0')
    sandbox.git("config", "--global", "core.hooksPath", str(company))
    head = sandbox.out("rev-parse", "HEAD", cwd=repo)
    assert commit_rc(sandbox, repo, "1\n", "BAD message") == 1  # git: 1 for any hook failure
    gitaudit(sandbox, "hooks", "install", "--global")
    assert commit_rc(sandbox, repo, "2\n", "BAD message") == 1
    assert sandbox.out("rev-parse", "HEAD", cwd=repo) == head
    assert commit_rc(sandbox, repo, "3\n", "good message") == 0
    assert len(hook_events(sandbox, "post-commit")) == 1


def test_global_status_names_missing_chainers(sandbox: GitSandbox) -> None:
    gitaudit(sandbox, "hooks", "install", "--global")
    (global_hooks(sandbox) / "commit-msg").unlink()
    status = gitaudit(sandbox, "hooks", "status", "--global").stdout
    assert "commit-msg is missing" in status
    assert "repair: gitaudit hooks install --global" in status
    gitaudit(sandbox, "hooks", "install", "--global")
    assert "repair" not in gitaudit(sandbox, "hooks", "status", "--global").stdout


def test_global_push_to_checkout_without_a_hook_updates_the_worktree(
    sandbox: GitSandbox,
) -> None:
    target = sandbox.repo("target")
    sandbox.git("config", "receive.denyCurrentBranch", "updateInstead", cwd=target)
    work = sandbox.clone(target, "work")
    gitaudit(sandbox, "hooks", "install", "--global")
    sandbox.commit(work, {"new": "x\n"}, "new")
    sandbox.git("push", "-q", "origin", "main", cwd=work)
    assert (target / "new").read_text() == "x\n"


# --- (2) a chained hook runs as git would have run it --------------------------------------


@pytest.mark.parametrize("order", ["gitaudit-first", "pre-commit-first"])
def test_global_chained_pre_commit_finds_its_legacy_pre_push(
    sandbox: GitSandbox, order: str,
) -> None:
    repo, remote = _setup(sandbox)
    _hook(repo / ".git" / "hooks" / "pre-push", "echo refused by hand >&2; exit 1")
    steps = [lambda: precommit(sandbox, repo, "install", "-t", "pre-push"),
             lambda: gitaudit(sandbox, "hooks", "install", "--global")]
    for step in steps if order == "pre-commit-first" else steps[::-1]:
        step()
    assert (repo / ".git" / "hooks" / "pre-push.legacy").exists()
    before = sandbox.out("rev-parse", "main", cwd=remote)
    sandbox.commit(repo, {"x": "1\n"}, "x")
    push = sandbox.git("push", "origin", "main", cwd=repo, check=False)
    assert push.returncode == 1
    assert b"refused by hand" in push.stderr
    assert sandbox.out("rev-parse", "main", cwd=remote) == before
    pushes = hook_events(sandbox, "pre-push")
    assert len(pushes) == 1
    assert pushes[0]["outcome"] == "failure"


# --- (3) and (5): pre-commit renames gitaudit's hook; uninstalls in any order ---------------


@pytest.mark.parametrize("uninstall", ["gitaudit-first", "pre-commit-first"])
@pytest.mark.parametrize("order", ["gitaudit-first", "pre-commit-first"])
def test_repo_install_with_pre_commit_records_once_and_uninstalls_clean(
    sandbox: GitSandbox, order: str, uninstall: str,
) -> None:
    repo, remote = _setup(sandbox)
    hooks_dir = repo / ".git" / "hooks"
    marker = sandbox.root / "own-ran"
    _hook(hooks_dir / "pre-push", f"cat >> '{marker}'; exit 0")
    before = snapshot(hooks_dir)
    installs = [lambda: precommit(sandbox, repo, "install", "-t", "pre-push"),
                lambda: gitaudit(sandbox, "hooks", "install", "--repo", str(repo))]
    for step in installs if order == "pre-commit-first" else installs[::-1]:
        step()
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))  # again: changes nothing
    assert len([p for p in hooks_dir.iterdir() if b"gitaudit-hook" in p.read_bytes()]) == 7
    status = gitaudit(sandbox, "hooks", "status", "--repo", str(repo)).stdout
    assert "pre-push.legacy, run by pre-commit" in status and "repair" not in status
    new = sandbox.commit(repo, {"y": "1\n"}, "y")
    sandbox.git("push", "-q", "origin", "main", cwd=repo, env={"GITAUDIT_HOOK_DETACH": "never"})
    assert sandbox.out("rev-parse", "main", cwd=remote) == new
    assert new in marker.read_text()  # the hand-written hook ran, with git's stdin
    pushes = hook_events(sandbox, "pre-push")
    assert len(pushes) == 1
    assert [ref["new"] for ref in pushes[0]["details"]["refs"]] == [new]
    sandbox.commit(repo, {"z": "FORBIDDEN\n"}, "z")
    assert sandbox.git("push", "origin", "main", cwd=repo, check=False).returncode == 1
    assert sandbox.out("rev-parse", "main", cwd=remote) == new
    uninstalls = [lambda: precommit(sandbox, repo, "uninstall", "-t", "pre-push"),
                  lambda: gitaudit(sandbox, "hooks", "uninstall", "--repo", str(repo))]
    for step in uninstalls if uninstall == "pre-commit-first" else uninstalls[::-1]:
        step()
    assert snapshot(hooks_dir) == before
    no_gitaudit_left(hooks_dir)
