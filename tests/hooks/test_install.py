"""`gitaudit hooks install|uninstall|status` against real repositories."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from gitaudit.capture.hooks import DEFAULT_HOOKS
from tests.gitfixtures import GitSandbox
from tests.hooks.conftest import gitaudit, hook_events

LEGACY = ".gitaudit-legacy"


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Content and mode of every file in a directory."""
    return {
        path.name: (path.read_bytes(), stat.S_IMODE(path.lstat().st_mode))
        for path in sorted(folder.iterdir())
        if path.is_file()
    }


def test_install_writes_marked_hooks_and_twice_changes_nothing(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    hooks_dir = repo / ".git" / "hooks"
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    first = snapshot(hooks_dir)
    for name in DEFAULT_HOOKS:
        content, mode = first[name]
        assert b"# gitaudit-hook" in content
        assert mode & 0o111
    assert "reference-transaction" not in first
    again = gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    assert "already installed" in again.stdout
    assert snapshot(hooks_dir) == first


def test_foreign_hook_kept_and_restored_byte_identical(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    hooks_dir = repo / ".git" / "hooks"
    original = b"#!/bin/sh\n# hand-written\nexit 0\n"
    (hooks_dir / "pre-push").write_bytes(original)
    (hooks_dir / "pre-push").chmod(0o750)
    before = snapshot(hooks_dir)
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    assert (hooks_dir / f"pre-push{LEGACY}").read_bytes() == original
    status = json.loads(gitaudit(sandbox, "hooks", "status", "--repo", str(repo),
                                 "--format", "json").stdout)
    row = next(item for item in status["hooks"] if item["name"] == "pre-push")
    assert row["state"] == "installed"
    assert row["chained"] == str(hooks_dir / f"pre-push{LEGACY}")
    gitaudit(sandbox, "hooks", "uninstall", "--repo", str(repo))
    assert snapshot(hooks_dir) == before


def test_conflicting_legacy_file_is_refused(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    hooks_dir = repo / ".git" / "hooks"
    for name in ("post-merge", f"post-merge{LEGACY}"):
        (hooks_dir / name).write_text(f"#!/bin/sh\n# {name}\n")
    before = snapshot(hooks_dir)
    result = gitaudit(sandbox, "hooks", "install", "--repo", str(repo), check=False)
    assert result.returncode == 2
    assert "post-merge" in result.stderr
    assert snapshot(hooks_dir) == before


def test_status_table_and_optional_hook(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo), "--with", "reference-transaction")
    table = gitaudit(sandbox, "hooks", "status", "--repo", str(repo)).stdout
    assert "reference-transaction    installed" in table
    assert "pre-push                 installed" in table


def test_bare_repository(sandbox: GitSandbox) -> None:
    bare = sandbox.bare_remote()
    gitaudit(sandbox, "hooks", "install", "--repo", str(bare))
    assert b"# gitaudit-hook" in (bare / "hooks" / "pre-push").read_bytes()
    status = json.loads(gitaudit(sandbox, "hooks", "status", "--repo", str(bare),
                                 "--format", "json").stdout)
    assert status["repository"] == str(bare)


def test_not_a_repository_is_refused_clearly(sandbox: GitSandbox) -> None:
    result = gitaudit(sandbox, "hooks", "install", "--repo", str(sandbox.tmp), check=False)
    assert result.returncode == 2
    assert "is not a git repository" in result.stderr


def test_worktree_installs_into_the_shared_hooks(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    linked = sandbox.root / "linked"
    sandbox.git("worktree", "add", "-q", "-b", "side", str(linked), cwd=repo)
    gitaudit(sandbox, "hooks", "install", "--repo", str(linked))
    assert (repo / ".git" / "hooks" / "post-commit").exists()
    sandbox.commit(linked, {"w": "1\n"}, "in the worktree")
    (event,) = hook_events(sandbox, "post-commit")
    assert event["repo"]["path"] == str(linked.resolve())  # type: ignore[index]
    assert event["repo"]["branch"] == "side"  # type: ignore[index]


def test_git_dir_environment_names_the_repository(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    gitaudit(sandbox, "hooks", "install", env={"GIT_DIR": str(repo / ".git")})
    assert (repo / ".git" / "hooks" / "post-checkout").exists()


def test_local_hooks_path_is_used_and_reported(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    sandbox.git("config", "core.hooksPath", ".git/custom-hooks", cwd=repo)
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    assert (repo / ".git" / "custom-hooks" / "post-commit").exists()
    assert not (repo / ".git" / "hooks" / "post-commit").exists()
    sandbox.commit(repo, {"x": "1\n"}, "x")
    assert len(hook_events(sandbox, "post-commit")) == 1


def test_tracked_hooks_path_is_refused(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    sandbox.commit(repo, {".githooks/post-commit": "#!/bin/sh\n"}, "team hooks")
    sandbox.git("config", "core.hooksPath", ".githooks", cwd=repo)
    result = gitaudit(sandbox, "hooks", "install", "--repo", str(repo), check=False)
    assert result.returncode == 2
    assert "tracked files" in result.stderr
    assert sandbox.out("status", "--porcelain", cwd=repo) == ""


# --- global ------------------------------------------------------------------------------


def global_hooks(sandbox: GitSandbox) -> Path:
    return sandbox.home / ".local/share" / "gitaudit" / "hooks"


def test_global_install_chains_to_repository_hooks(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    marker = sandbox.root / "ran"
    own = repo / ".git" / "hooks" / "post-commit"
    own.write_text(f"#!/bin/sh\necho \"$@\" >> '{marker}'\n")
    own.chmod(0o755)
    gitaudit(sandbox, "hooks", "install", "--global")
    gitaudit(sandbox, "hooks", "install", "--global")  # twice: no change, no self-chaining
    assert sandbox.out("config", "--global", "core.hooksPath") == str(global_hooks(sandbox))
    sandbox.commit(repo, {"g": "1\n"}, "global")
    assert marker.read_text() == "\n"
    assert len(hook_events(sandbox, "post-commit")) == 1
    status = json.loads(gitaudit(sandbox, "hooks", "status", "--global", "--format",
                                 "json").stdout)
    assert status["active"] is True
    repo_status = json.loads(gitaudit(sandbox, "hooks", "status", "--repo", str(repo),
                                      "--format", "json").stdout)
    assert any("global hooks run here" in note for note in repo_status["notes"])
    gitaudit(sandbox, "hooks", "uninstall", "--global")
    assert sandbox.git("config", "--global", "core.hooksPath", check=False).returncode == 1
    assert not global_hooks(sandbox).exists()


def test_global_keeps_and_restores_a_previous_global_hooks_path(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    company = sandbox.root / "company hooks"
    company.mkdir()
    marker = sandbox.root / "company-ran"
    hook = company / "post-checkout"
    hook.write_text(f"#!/bin/sh\necho \"$3\" >> '{marker}'\n")
    hook.chmod(0o755)
    sandbox.git("config", "--global", "core.hooksPath", str(company))
    gitaudit(sandbox, "hooks", "install", "--global")
    sandbox.git("checkout", "-q", "-b", "topic", cwd=repo)
    assert marker.read_text() == "1\n"
    assert len(hook_events(sandbox, "post-checkout")) == 1
    gitaudit(sandbox, "hooks", "uninstall", "--global")
    assert sandbox.out("config", "--global", "core.hooksPath") == str(company)


def test_global_hooks_do_not_record_twice_with_repo_hooks(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    gitaudit(sandbox, "hooks", "install", "--repo", str(repo))
    gitaudit(sandbox, "hooks", "install", "--global")
    sandbox.commit(repo, {"d": "1\n"}, "once")
    assert len(hook_events(sandbox, "post-commit")) == 1


def test_local_hooks_path_overrides_global_and_status_says_so(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    gitaudit(sandbox, "hooks", "install", "--global")
    sandbox.git("config", "core.hooksPath", ".git/mine", cwd=repo)
    status = json.loads(gitaudit(sandbox, "hooks", "status", "--repo", str(repo), "--format",
                                 "json").stdout)
    assert status["core_hooks_path"] == {"value": ".git/mine", "scope": "local"}
    assert any("global hooks do not run here" in note for note in status["notes"])
    sandbox.commit(repo, {"o": "1\n"}, "not seen by global hooks")
    assert hook_events(sandbox) == []


def test_uninstall_when_nothing_installed(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    before = snapshot(repo / ".git" / "hooks")
    gitaudit(sandbox, "hooks", "uninstall", "--repo", str(repo))
    assert snapshot(repo / ".git" / "hooks") == before


def _log_interpreter_starts(hooks_dir: Path, log: Path) -> None:
    """Point every installed hook at a shim that notes which hook started Python."""
    for hook in hooks_dir.iterdir():
        text = hook.read_text() if hook.is_file() else ""
        if "# gitaudit-hook" not in text:
            continue
        real = next(line for line in text.splitlines() if line.startswith("python="))[7:]
        shim = hooks_dir.parent / f"python-for-{hook.name}"
        shim.write_text(f"#!/bin/sh\necho {hook.name} >> '{log}'\nexec {real} \"$@\"\n")
        shim.chmod(0o755)
        hook.write_text(text.replace(f"python={real}\n", f"python='{shim}'\n", 1))


def test_global_prepare_commit_msg_starts_python_only_to_record(
    sandbox: GitSandbox,
) -> None:
    repo = sandbox.repo()
    log = sandbox.root / "interpreter-starts"
    gitaudit(sandbox, "hooks", "install", "--global")
    _log_interpreter_starts(global_hooks(sandbox), log)
    sandbox.commit(repo, {"p": "1\n"}, "no conflict, no hook of the repository's own")
    assert log.read_text().split() == ["post-commit"]
    marker = sandbox.root / "own-ran"
    own = repo / ".git" / "hooks" / "prepare-commit-msg"
    own.write_text(f"#!/bin/sh\necho \"$2\" >> '{marker}'\n")
    own.chmod(0o755)
    log.unlink()
    sandbox.commit(repo, {"p": "2\n"}, "the repository's own hook is chained")
    assert marker.read_text() == "message\n"
    assert log.read_text().split() == ["post-commit"]  # the shell chains it: no Python
