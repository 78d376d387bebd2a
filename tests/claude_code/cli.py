"""The real Claude Code CLI for the tests, installed from the npm registry once per checkout.

``npm install @anthropic-ai/claude-code`` into ``.venv/claude-code`` (a shared
cache: xdist workers take a lock, one installs, the others wait), then
:func:`claude_binary` is ``.venv/claude-code/node_modules/.bin/claude``. A test
that needs it is skipped, saying why, when npm, the registry or the binary is
unavailable. :func:`claude_env` is the environment the CLI must run in here:
its own ``HOME``, a fake Anthropic endpoint on loopback, every proxy pointing
nowhere, no telemetry or auto-update traffic.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.gitfixtures import PROJECT_ROOT

PACKAGE = "@anthropic-ai/claude-code"


def _cache() -> Path:
    venv = PROJECT_ROOT / ".venv"
    return (venv if venv.is_dir() else Path(tempfile.gettempdir())) / "claude-code"


def _works(binary: Path) -> str | None:
    """The binary's ``--version`` line, or None if it does not run."""
    if not binary.exists():
        return None
    try:
        done = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                              check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def claude_binary() -> Path:
    """The installed ``claude`` (npm install on first use); skips the test if unavailable."""
    cache = _cache()
    binary = cache / "node_modules" / ".bin" / "claude"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers: one installs, the others wait
        if _works(binary):
            return binary
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip(f"npm is not installed: {PACKAGE} comes from the npm registry")
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(cache), PACKAGE],
            capture_output=True, text=True, check=False, timeout=900,
        )
        if result.returncode != 0:
            pytest.skip(f"npm install {PACKAGE} failed (registry unreachable?): "
                        f"{result.stderr.strip()[-400:]}")
        if not _works(binary):
            pytest.skip(f"{binary} was installed but does not start (--version failed)")
    return binary


def claude_env(home: Path, api_port: int, extra: dict[str, str] | None = None
               ) -> dict[str, str]:
    """What the CLI runs with: its own HOME, the fake API on loopback, no other traffic."""
    env = {
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{api_port}",
        "ANTHROPIC_API_KEY": "sk-ant-fake",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env.update(extra or {})
    return env
