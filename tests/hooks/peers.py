"""The hook managers gitaudit must live with, installed for the tests from their registries.

pre-commit comes from PyPI with the test extras (``pip install -e '.[test]'``); husky and
lefthook from npm, installed once into ``.venv/hook-managers`` (a temporary directory without
a virtualenv) by :func:`node_tools`. A test that needs a tool that cannot be had is skipped,
saying why.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.gitfixtures import PROJECT_ROOT, GitSandbox

NPM_PACKAGES = ("husky@9", "lefthook@2")


def precommit_exe() -> str:
    """pre-commit, installed with the test extras next to the interpreter."""
    exe = Path(sys.executable).parent / "pre-commit"
    if not exe.exists():
        found = shutil.which("pre-commit")
        if found is None:
            pytest.skip("pre-commit is not installed: pip install -e '.[test]'")
        return found
    return str(exe)


def _npm_cache() -> Path:
    venv = PROJECT_ROOT / ".venv"
    base = venv if venv.is_dir() else Path(tempfile.gettempdir())
    return base / "hook-managers"


def node_tools() -> Path:
    """``node_modules/.bin`` holding husky and lefthook (npm install on first use)."""
    cache = _npm_cache()
    binaries = cache / "node_modules" / ".bin"
    npm = shutil.which("npm")
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers: one installs, the others wait
        if (binaries / "husky").exists() and (binaries / "lefthook").exists():
            return binaries
        if npm is None:
            pytest.skip("npm is not installed: husky and lefthook come from the npm registry")
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix",
             str(cache), *NPM_PACKAGES],
            capture_output=True, text=True, check=False, timeout=600,
        )
        if result.returncode != 0 or not (binaries / "lefthook").exists():
            pytest.skip(f"npm install {' '.join(NPM_PACKAGES)} failed (registry unreachable?): "
                        f"{result.stderr.strip()[-400:]}")
    return binaries


def run_tool(sandbox: GitSandbox, argv: list[str], cwd: Path,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a hook manager in the sandbox; it must succeed."""
    result = subprocess.run(argv, cwd=cwd, env=sandbox.environ(env), capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, (argv, result.stdout, result.stderr)
    return result


# pre-commit refuses to install while core.hooksPath is set, even globally; this lets it
# install into the repository's own .git/hooks, which gitaudit's global hooks chain to.
WITHOUT_HOOKS_PATH = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.hooksPath",
                      "GIT_CONFIG_VALUE_0": ""}
