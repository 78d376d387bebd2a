"""`gitaudit shim install DIR`: a marked `git` that records and never recurses."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gitaudit.capture.wrapper import is_shim
from gitaudit.cli.shim import ShimError, shim_install, shim_uninstall
from tests.gitfixtures import GitSandbox


def run_git_via_path(sandbox: GitSandbox, path: str, cwd: Path) -> subprocess.CompletedProcess[
    bytes
]:
    return subprocess.run(["git", "status", "--short"], cwd=cwd, capture_output=True,
                          env=sandbox.environ({"PATH": path}), check=False, timeout=120)


def test_install_writes_a_marked_executable(tmp_path: Path) -> None:
    shim_install(tmp_path / "bin")
    shim = tmp_path / "bin" / "git"
    assert stat.S_IMODE(shim.stat().st_mode) == 0o755
    assert is_shim(str(shim))
    assert b"# gitaudit-shim" in shim.read_bytes()[:512]
    first = shim.read_bytes()
    shim_install(tmp_path / "bin")  # idempotent
    assert shim.read_bytes() == first
    assert sorted(p.name for p in (tmp_path / "bin").iterdir()) == ["git"]


def test_shim_starts_without_site_yet_reaches_pygit2(sandbox: GitSandbox) -> None:
    shims = sandbox.root / "shims"
    shim_install(shims)
    # isolated, no site-packages scan: the wrapper's common path needs neither
    assert (shims / "git").read_text().splitlines()[0] == f"#!{sys.executable} -IS"
    remote = sandbox.bare_remote()
    work = sandbox.repo(remote=remote)
    sandbox.git("push", "-q", "origin", "main", cwd=work)
    sandbox.commit(work, {"a": "1"}, "one")
    sandbox.commit(work, {"a": "2"}, "two")
    pushed = subprocess.run(["git", "push", "-q", "origin", "main"], cwd=work,
                            capture_output=True, check=False, timeout=120,
                            env=sandbox.environ({"PATH": f"{shims}:{sandbox.env['PATH']}"}))
    assert (pushed.returncode, pushed.stderr) == (0, b"")
    (event,) = sandbox.events()
    assert event["operation"] == "git.push"
    assert event["details"]["commit_count"] == 2  # counted with pygit2, from site-packages


def test_shim_first_on_path_records_once_without_recursion(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    first, second = sandbox.root / "shims-a", sandbox.root / "shims-b"
    shim_install(first)
    shim_install(second)
    plain = sandbox.git("status", "--short", cwd=repo)
    result = run_git_via_path(sandbox, f"{first}:{sandbox.env['PATH']}", cwd=repo)
    assert (result.returncode, result.stdout, result.stderr) == (0, plain.stdout, b"")
    (event,) = sandbox.events()
    assert event["details"]["subcommand"] == "status"

    both = run_git_via_path(sandbox, f"{first}:{second}:{sandbox.env['PATH']}", cwd=repo)
    assert both.returncode == 0, both.stderr
    assert len(sandbox.events()) == 2  # one more event: no shim ran another shim


def test_refuses_a_foreign_git_unless_forced_and_restores_it(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    foreign = folder / "git"
    foreign.write_text("#!/bin/sh\necho mine\n")
    with pytest.raises(ShimError) as refused:
        shim_install(folder)
    assert "not a gitaudit shim" in str(refused.value)
    assert foreign.read_text() == "#!/bin/sh\necho mine\n"
    with pytest.raises(ShimError):
        shim_uninstall(folder)  # not ours: left alone
    assert foreign.read_text() == "#!/bin/sh\necho mine\n"

    shim_install(folder, force=True)
    assert is_shim(str(foreign))
    assert (folder / "git.gitaudit-orig").read_text() == "#!/bin/sh\necho mine\n"
    shim_uninstall(folder)
    assert foreign.read_text() == "#!/bin/sh\necho mine\n"
    assert not (folder / "git.gitaudit-orig").exists()


def test_uninstall_removes_only_our_shim(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    shim_install(folder)
    (folder / "other-tool").write_text("keep me")
    shim_uninstall(folder)
    assert not (folder / "git").exists()
    assert (folder / "other-tool").read_text() == "keep me"
    shim_uninstall(folder)  # nothing left to remove: fine
    shim_uninstall(tmp_path / "never-created")


def test_install_into_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ShimError) as failure:
        shim_install(blocker / "bin")
    assert "cannot install the shim" in str(failure.value)
