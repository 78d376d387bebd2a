"""gitaudit's hooks next to real hook managers: pre-commit (PyPI), husky and lefthook (npm).

Whatever the install order and scope: a hook that blocked before still blocks (same exit
code), gitaudit records each operation exactly once, and once both tools are uninstalled,
in either order, nothing of gitaudit is left and the other hooks are byte-exact as before.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.gitfixtures import PROJECT_ROOT, GitSandbox, gitaudit_command
from tests.hooks.conftest import gitaudit, hook_events
from tests.hooks.peers import WITHOUT_HOOKS_PATH, node_tools, precommit_exe, run_tool
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


def one_refusal(sandbox: GitSandbox, hook: str, exit_code: int = 1) -> None:
    """The refused commit was recorded once: git.commit, failure, which hook refused."""
    refused = hook_events(sandbox, hook)
    assert len(refused) == 1, refused
    event = refused[0]
    assert (event["operation"], event["outcome"]) == ("git.commit", "failure")
    assert event["result"]["exit_code"] == exit_code  # type: ignore[index]
    assert event["details"]["chained_hook"]["exit_code"] == exit_code  # type: ignore[index]


def no_gitaudit_left(folder: Path) -> None:
    if folder.is_dir():
        for path in folder.iterdir():
            assert ".gitaudit-legacy" not in path.name, path
            assert not path.is_file() or b"# gitaudit-hook" not in path.read_bytes(), path


# --- (1) a global install switches off no hook -------------------------------------------


@pytest.mark.parametrize("uninstall", ["gitaudit-first", "pre-commit-first"])
@pytest.mark.parametrize("order", ["gitaudit-first", "pre-commit-first"])
def test_global_install_keeps_the_repositorys_pre_commit_blocking(
    sandbox: GitSandbox, order: str, uninstall: str,
) -> None:
    repo, _ = _setup(sandbox)
    before = snapshot(repo / ".git" / "hooks")
    steps = [lambda: precommit(sandbox, repo, "install", "-t", "pre-commit", "-t", "pre-push"),
             lambda: gitaudit(sandbox, "hooks", "install", "--global")]
    for step in steps if order == "pre-commit-first" else steps[::-1]:
        step()
    assert commit_rc(sandbox, repo, "FORBIDDEN\n") == 1  # pre-commit's hook still blocks
    assert hook_events(sandbox, "post-commit") == []
    one_refusal(sandbox, "pre-commit")
    assert commit_rc(sandbox, repo, "fine\n") == 0
    assert len(hook_events(sandbox, "post-commit")) == 1
    status = gitaudit(sandbox, "hooks", "status", "--global").stdout
    assert "pre-commit" in status and "chains" in status and "repair" not in status
    uninstalls = [
        lambda: precommit(sandbox, repo, "uninstall", "-t", "pre-commit", "-t", "pre-push"),
        lambda: gitaudit(sandbox, "hooks", "uninstall", "--global")]
    for step in uninstalls if uninstall == "pre-commit-first" else uninstalls[::-1]:
        step()
    assert snapshot(repo / ".git" / "hooks") == before
    assert not global_hooks(sandbox).exists()
    assert sandbox.git("config", "--global", "core.hooksPath", check=False).returncode == 1


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
    one_refusal(sandbox, "commit-msg", 3)
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


# --- (4) peers that rewrite their hooks: husky 9 and lefthook -------------------------------


def _status(sandbox: GitSandbox, repo: Path) -> str:
    return gitaudit(sandbox, "hooks", "status", "--repo", str(repo)).stdout


@pytest.mark.parametrize("order", ["gitaudit-first", "husky-first"])
def test_husky_rewrites_its_hooks_and_install_repairs(sandbox: GitSandbox, order: str) -> None:
    husky = str(node_tools() / "husky")
    repo, _ = _setup(sandbox)
    _hook(repo / ".husky" / "pre-commit", "! grep -q FORBIDDEN file")
    install = ["hooks", "install", "--repo", str(repo)]
    if order == "gitaudit-first":
        gitaudit(sandbox, *install)
        run_tool(sandbox, [husky], repo)  # sets core.hooksPath: gitaudit's hooks are bypassed
        status = _status(sandbox, repo)
        assert "do not run" in status and f"repair: gitaudit hooks install --repo {repo}" in status
        gitaudit(sandbox, *install)
        no_gitaudit_left(repo / ".git" / "hooks")
    else:
        run_tool(sandbox, [husky], repo)
        gitaudit(sandbox, *install)
    husky_dir = repo / ".husky" / "_"
    assert "repair" not in _status(sandbox, repo)
    assert commit_rc(sandbox, repo, "FORBIDDEN\n") == 1  # the user's husky hook still blocks
    one_refusal(sandbox, "pre-commit")
    assert commit_rc(sandbox, repo, "fine\n") == 0
    assert len(hook_events(sandbox, "post-commit")) == 1
    run_tool(sandbox, [husky], repo)  # what `npm install` runs (the prepare script)
    status = _status(sandbox, repo)
    assert "husky wrote its own post-commit over gitaudit's" in status
    assert f"repair: gitaudit hooks install --repo {repo}" in status
    gitaudit(sandbox, *install)
    assert "repair" not in _status(sandbox, repo)
    assert commit_rc(sandbox, repo, "FORBIDDEN again\n") == 1
    assert commit_rc(sandbox, repo, "fine again\n") == 0
    assert len(hook_events(sandbox, "post-commit")) == 2
    run_tool(sandbox, [husky], repo)  # over gitaudit's again, then gitaudit is uninstalled
    husky_only = {name: kept for name, kept in snapshot(husky_dir).items()
                  if not name.endswith(".gitaudit-legacy")}
    gitaudit(sandbox, "hooks", "uninstall", "--repo", str(repo))
    assert snapshot(husky_dir) == husky_only
    no_gitaudit_left(husky_dir)


LEFTHOOK_CONFIG = """\
pre-commit:
  commands:
    no-forbidden:
      run: "! grep -q FORBIDDEN file"
pre-push:
  commands:
    note:
      run: echo lefthook {version} ran
"""


@pytest.mark.parametrize("uninstall", ["gitaudit-first", "lefthook-first"])
@pytest.mark.parametrize("order", ["gitaudit-first", "lefthook-first"])
def test_lefthook_moves_gitaudits_hook_aside_and_install_repairs(
    sandbox: GitSandbox, order: str, uninstall: str,
) -> None:
    lefthook = str(node_tools() / "lefthook")
    repo, _ = _setup(sandbox)
    hooks_dir = repo / ".git" / "hooks"
    before = snapshot(hooks_dir)
    (repo / "lefthook.yml").write_text(LEFTHOOK_CONFIG.format(version=1))
    install = ["hooks", "install", "--repo", str(repo)]
    env = {"LEFTHOOK_BIN": lefthook}
    if order == "gitaudit-first":
        gitaudit(sandbox, *install)
        run_tool(sandbox, [lefthook, "install"], repo, env)
        status = _status(sandbox, repo)
        assert "lefthook moved gitaudit's pre-push to pre-push.old" in status
        gitaudit(sandbox, *install)
    else:
        run_tool(sandbox, [lefthook, "install"], repo, env)
        gitaudit(sandbox, *install)
    assert "repair" not in _status(sandbox, repo)
    assert commit_rc(sandbox, repo, "FORBIDDEN\n") == 1  # lefthook's pre-commit still blocks
    one_refusal(sandbox, "pre-commit")
    assert commit_rc(sandbox, repo, "fine\n") == 0
    push = sandbox.git("push", "origin", "main", cwd=repo, env=env)
    assert b"lefthook 1 ran" in push.stdout + push.stderr
    assert len(hook_events(sandbox, "pre-push")) == 1
    # lefthook.yml changes: the next hook lefthook runs installs its hooks again
    config = repo / "lefthook.yml"
    config.write_text(LEFTHOOK_CONFIG.format(version=2))
    # lefthook compares the config's mtime, in whole seconds, with its last install: a change
    # within the same second as that install goes unseen, so date it a few seconds later
    later = config.stat().st_mtime + 5
    os.utime(config, (later, later))
    sandbox.commit(repo, {"w": "1\n"}, "w")
    status = _status(sandbox, repo)
    assert "lefthook moved gitaudit's pre-push to pre-push.old" in status
    assert f"repair: gitaudit hooks install --repo {repo}" in status
    gitaudit(sandbox, *install)
    assert "repair" not in _status(sandbox, repo)
    push = sandbox.git("push", "origin", "main", cwd=repo, env=env)
    assert b"lefthook 2 ran" in push.stdout + push.stderr
    assert len(hook_events(sandbox, "pre-push")) == 2
    uninstalls = [lambda: run_tool(sandbox, [lefthook, "uninstall"], repo, env),
                  lambda: gitaudit(sandbox, "hooks", "uninstall", "--repo", str(repo))]
    for step in uninstalls if uninstall == "lefthook-first" else uninstalls[::-1]:
        step()
    assert snapshot(hooks_dir) == before
    no_gitaudit_left(hooks_dir)


# --- README: the setups it shows, run as written --------------------------------------------

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def readme_setups() -> list[str]:
    """The ``sh`` blocks of README's "Next to pre-commit, husky and lefthook" section."""
    section = README.split("### Next to pre-commit, husky and lefthook\n", 1)[1]
    section = re.split(r"\n##+ ", section, maxsplit=1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def test_readme_shows_a_setup_per_hook_manager() -> None:
    blocks = readme_setups()
    for command in ("pre-commit install", "npx husky", "lefthook install"):
        assert any(command in block for block in blocks), command
    assert any("--global" in block and "pre-commit" in block for block in blocks)


@pytest.mark.parametrize("block", readme_setups(), ids=lambda block: block.split("\n")[0][:40])
def test_readme_setup_keeps_blocking_and_records_once(sandbox: GitSandbox, block: str) -> None:
    tools = sandbox.root / "tools"
    tools.mkdir()
    (tools / "pre-commit").symlink_to(precommit_exe())
    if "husky" in block or "lefthook" in block:
        node = node_tools()
        (tools / "lefthook").symlink_to(node / "lefthook")
        _hook(tools / "npx", f'tool=$1; shift; exec "{node}/$tool" "$@"')
    repo, _ = _setup(sandbox)
    _hook(repo / ".husky" / "pre-commit", "! grep -q FORBIDDEN file")
    (repo / "lefthook.yml").write_text(LEFTHOOK_CONFIG.format(version=1))
    env = {"PATH": f"{tools}:{Path(gitaudit_command()[0]).parent}:{sandbox.env['PATH']}"}
    if "--force" in block:  # the setup for a host with a global gitaudit install
        gitaudit(sandbox, "hooks", "install", "--global")
    run_tool(sandbox, ["sh", "-ec", block], repo, env)
    assert commit_rc(sandbox, repo, "FORBIDDEN\n") == 1
    assert commit_rc(sandbox, repo, "fine\n") == 0
    assert len(hook_events(sandbox, "post-commit")) == 1


def test_global_and_repo_install_under_pre_commit_record_once(sandbox: GitSandbox) -> None:
    repo, remote = _setup(sandbox)
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    precommit(sandbox, repo, "install", "-t", "pre-push", "-t", "pre-commit")
    gitaudit(sandbox, "hooks", "install", "--global")  # chains to pre-commit, which runs ours
    new = sandbox.commit(repo, {"y": "1\n"}, "y")
    sandbox.git("push", "-q", "origin", "main", cwd=repo)
    assert sandbox.out("rev-parse", "main", cwd=remote) == new
    assert len(hook_events(sandbox, "pre-push")) == 1
    assert len(hook_events(sandbox, "post-commit")) == 1
    assert commit_rc(sandbox, repo, "FORBIDDEN\n") == 1
    one_refusal(sandbox, "pre-commit")
