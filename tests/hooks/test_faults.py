"""Whatever goes wrong in gitaudit, the user's hooks and git commands behave as before."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gitaudit import events
from tests.gitfixtures import PROJECT_ROOT, GitSandbox
from tests.hooks.conftest import gitaudit, hook_events


def failing_pre_push(repo: Path) -> None:
    """A hand-written pre-push that prints its input and refuses the push (exit 3)."""
    hook = repo / ".git" / "hooks" / "pre-push"
    hook.write_text('#!/bin/sh\necho "policy says no to $1" >&2\ncat >&2\nexit 3\n')
    hook.chmod(0o755)


def pushable(sandbox: GitSandbox, name: str = "work") -> Path:
    remote = sandbox.bare_remote(f"{name}-remote.git")
    repo = sandbox.repo(name, remote=remote)
    sandbox.commit(repo, {"new": "1\n"}, "to push")
    return repo


def test_failing_hook_still_fails_the_push_exactly_as_before(sandbox: GitSandbox) -> None:
    repo = pushable(sandbox)
    failing_pre_push(repo)
    before = sandbox.git("push", "origin", "main", cwd=repo, check=False)
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    after = sandbox.git("push", "origin", "main", cwd=repo, check=False)
    assert before.returncode != 0
    assert (after.returncode, after.stdout, after.stderr) == (
        before.returncode, before.stdout, before.stderr)
    (event,) = hook_events(sandbox, "pre-push")
    events.validate_event(event)
    assert event["outcome"] == "failure"
    assert event["details"]["chained_hook"]["exit_code"] == 3  # type: ignore[index]


def test_chained_hook_gets_byte_identical_stdin_and_arguments(sandbox: GitSandbox) -> None:
    repo = pushable(sandbox)
    seen = sandbox.root / "seen"
    hook = repo / ".git" / "hooks" / "pre-push"
    hook.write_text(f"#!/bin/sh\nprintf '%s|' \"$@\" > '{seen}.args'\ncat > '{seen}.stdin'\n")
    hook.chmod(0o755)
    sandbox.git("push", "-q", "origin", "main", "main:other", cwd=repo)
    plain_args, plain_stdin = Path(f"{seen}.args").read_bytes(), Path(f"{seen}.stdin").read_bytes()
    shutil.rmtree(sandbox.root / "work-remote.git")  # the same push again, to an empty remote
    sandbox.bare_remote("work-remote.git")
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    sandbox.git("push", "-q", "origin", "main", "main:other", cwd=repo)
    assert Path(f"{seen}.args").read_bytes() == plain_args
    assert Path(f"{seen}.stdin").read_bytes() == plain_stdin
    assert len(hook_events(sandbox, "pre-push")) == 1


def test_husky_style_hook_that_uses_its_own_name_and_directory(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    hooks_dir = repo / ".git" / "hooks"
    marker = sandbox.root / "husky-ran"
    (hooks_dir / "husky.sh").write_text(
        f'hookName=$(basename "$0")\necho "$hookName $*" >> \'{marker}\'\n')
    (hooks_dir / "post-checkout").write_text('#!/bin/sh\n. "$(dirname "$0")/husky.sh"\n')
    (hooks_dir / "post-checkout").chmod(0o755)
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    sandbox.git("checkout", "-q", "-b", "topic", cwd=repo)
    assert marker.read_text().startswith("post-checkout ")
    assert marker.read_text().rstrip().endswith(" 1")
    assert len(hook_events(sandbox, "post-checkout")) == 1


def test_pre_commit_style_python_hook_keeps_working(sandbox: GitSandbox) -> None:
    repo = pushable(sandbox)
    marker = sandbox.root / "py-ran"
    helper = repo / ".git" / "hooks" / "impl.py"
    helper.write_text(f"import sys\nopen({str(marker)!r}, 'w').write(sys.stdin.read())\n")
    hook = repo / ".git" / "hooks" / "pre-push"
    hook.write_text(
        f"#!{sys.executable}\nimport os, subprocess, sys\n"
        "here = os.path.dirname(os.path.abspath(__file__))\n"
        "sys.exit(subprocess.call([sys.executable, os.path.join(here, 'impl.py')]))\n"
    )
    hook.chmod(0o755)
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    sandbox.git("push", "-q", "origin", "main", cwd=repo)
    assert marker.read_text().startswith("refs/heads/main ")


def test_daemon_down_events_are_spooled(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    empty = sandbox.root / "no-daemon"
    empty.mkdir()
    result = sandbox.git("commit", "-q", "--allow-empty", "-m", "x", cwd=repo,
                         env={"GITAUDIT_RUNTIME_DIR": str(empty)})
    assert result.stderr == b""
    assert len(hook_events(sandbox, "post-commit")) == 1


def test_unwritable_store_is_never_touched(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    locked = sandbox.root / "locked"
    locked.write_text("a file where the store's directory should be")
    url = f"sqlite:///{locked}/audit.db"
    result = sandbox.git("commit", "-q", "--allow-empty", "-m", "x", cwd=repo,
                         env={"GITAUDIT_DATABASE_URL": url})
    assert result.stderr == b""
    assert len(hook_events(sandbox, "post-commit")) == 1


def test_broken_config_warns_once_and_changes_nothing(sandbox: GitSandbox) -> None:
    repo = pushable(sandbox)
    failing_pre_push(repo)
    before = sandbox.git("push", "origin", "main", cwd=repo, check=False)
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    broken = sandbox.root / "broken.toml"
    broken.write_text("this is [not toml")
    after = sandbox.git("push", "origin", "main", cwd=repo, check=False,
                        env={"GITAUDIT_CONFIG": str(broken)})
    warnings = [line for line in after.stderr.splitlines(True) if line.startswith(b"gitaudit: ")]
    assert len(warnings) == 1
    assert b"cannot read config file" in warnings[0]
    unwarned = after.stderr.replace(warnings[0], b"", 1)
    assert (after.returncode, after.stdout, unwarned) == (
        before.returncode, before.stdout, before.stderr)
    assert len(hook_events(sandbox, "pre-push")) == 1  # recorded with defaults


def test_path_with_spaces_and_non_ascii(sandbox: GitSandbox) -> None:
    remote = sandbox.bare_remote("rémote ü.git")
    repo = sandbox.repo("wörk tree ☃", remote=remote)
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    sandbox.commit(repo, {"f": "1\n"}, "unicode")
    sandbox.git("push", "-q", "origin", "main", cwd=repo)
    commit = hook_events(sandbox, "post-commit")[0]
    assert commit["repo"]["path"] == str(repo.resolve())  # type: ignore[index]
    push = hook_events(sandbox, "pre-push")[0]
    assert push["details"]["url"] == str(remote)  # type: ignore[index]


def test_git_dir_and_work_tree_set(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    (repo / "g").write_text("1\n")
    env = {"GIT_DIR": str(repo / ".git"), "GIT_WORK_TREE": str(repo)}
    sandbox.git("add", "g", cwd=sandbox.tmp, env=env)
    sandbox.git("commit", "-q", "-m", "from elsewhere", cwd=sandbox.tmp, env=env)
    event = hook_events(sandbox, "post-commit")[0]
    assert event["repo"]["path"] == str(repo.resolve())  # type: ignore[index]
    assert event["details"]["files"] == [{"path": "g", "status": "A"}]  # type: ignore[index]


def test_submodule(sandbox: GitSandbox) -> None:
    inner = sandbox.repo("inner")
    outer = sandbox.repo("outer")
    sandbox.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(inner), "sub",
                cwd=outer)
    sub = outer / "sub"
    gitaudit(sandbox, "hooks", "install", "--repo", str(sub))
    assert (outer / ".git" / "modules" / "sub" / "hooks" / "post-commit").exists()
    sandbox.commit(sub, {"s": "1\n"}, "in the submodule")
    event = hook_events(sandbox, "post-commit")[0]
    assert event["repo"]["path"] == str(sub.resolve())  # type: ignore[index]


def test_missing_interpreter_still_runs_the_kept_hook(sandbox: GitSandbox) -> None:
    repo = pushable(sandbox)
    failing_pre_push(repo)
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    hook = repo / ".git" / "hooks" / "pre-push"
    # the interpreter the hook recorded at install time (the gitaudit console script's)
    lines = hook.read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith("python="))
    lines[index] = "python=/nonexistent/python\n"
    hook.write_text("".join(lines))
    result = sandbox.git("push", "origin", "main", cwd=repo, check=False)
    assert result.returncode != 0
    assert b"policy says no to origin" in result.stderr
    assert hook_events(sandbox) == []


def test_hook_path_imports_no_pydantic_typer_or_pygit2(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    head = sandbox.out("rev-parse", "HEAD", cwd=repo)
    code = (
        "import sys; sys.path.append(sys.argv.pop(1))\n"
        "from gitaudit.capture import hookrun\n"
        "hookrun.main(sys.argv[1:])\n"
        "heavy = {'pydantic', 'typer', 'pygit2', 'rich', 'sqlalchemy'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    hook = repo / ".git" / "hooks" / "post-checkout"
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(PROJECT_ROOT), str(hook), head, head, "1"],
        cwd=repo, env=sandbox.environ(), capture_output=True, text=True, check=True,
    )
    assert result.stdout.strip() == "[]"
    assert len(hook_events(sandbox, "post-checkout")) == 1


def test_disabled_records_nothing_but_chains(sandbox: GitSandbox) -> None:
    repo = pushable(sandbox)
    failing_pre_push(repo)
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    result = sandbox.git("push", "origin", "main", cwd=repo, check=False,
                         env={"GITAUDIT_ENABLED": "false"})
    assert result.returncode != 0
    assert b"policy says no to origin" in result.stderr
    assert not any(line.startswith(b"gitaudit:") for line in result.stderr.splitlines())
    assert hook_events(sandbox) == []
    assert os.path.exists(repo / ".git" / "hooks" / "pre-push.gitaudit-legacy")


@pytest.mark.parametrize("broken", ["interpreter", "package"])
def test_global_hooks_without_gitaudit_still_chain_as_git_would(
    sandbox: GitSandbox, broken: str,
) -> None:
    repo = pushable(sandbox)
    own = repo / ".git" / "hooks" / "pre-push"
    own.write_text('#!/bin/sh\necho "policy says no to $1 as $0" >&2\nexit 3\n')
    own.chmod(0o755)
    gitaudit(sandbox, "hooks", "install", "--global")
    hooks_dir = sandbox.home / ".local/share" / "gitaudit" / "hooks"
    hook = hooks_dir / "pre-push"
    key = "python=" if broken == "interpreter" else "root="
    lines = hook.read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(key))
    lines[index] = f"{key}/nonexistent/{broken}\n"
    hook.write_text("".join(lines))
    result = sandbox.git("push", "origin", "main", cwd=repo, check=False)
    assert result.returncode != 0
    said = result.stderr.decode().splitlines()[0]
    assert said.startswith("policy says no to origin as ")
    ran_as = repo / said.removeprefix("policy says no to origin as ")  # as git runs it: $0
    assert ran_as.resolve() == own.resolve()
    assert hook_events(sandbox) == []
