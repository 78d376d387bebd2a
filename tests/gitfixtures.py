"""Shared helpers for tests that drive real git: isolated, deterministic environments.

:class:`GitSandbox` gives each test its own HOME, XDG directories, global git
config (``GIT_CONFIG_GLOBAL``, no system config), pinned author/committer
identities and dates, and helpers to make repositories, bare remotes and
commits. Nothing from the developer's own git setup leaks in.

:func:`gitaudit_command` is how tests run the wrapper: the installed console
script ``gitaudit`` next to the interpreter if there is one, else
``python -m gitaudit`` with the source tree on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REAL_GIT = shutil.which("git") or "/usr/bin/git"

PINNED_IDENTITY = {
    "GIT_AUTHOR_NAME": "Ada Author",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_AUTHOR_DATE": "2024-01-02T03:04:05Z",
    "GIT_COMMITTER_NAME": "Carl Committer",
    "GIT_COMMITTER_EMAIL": "carl@example.com",
    "GIT_COMMITTER_DATE": "2024-01-02T03:04:05Z",
}

_GLOBAL_CONFIG = """\
[init]
\tdefaultBranch = main
[user]
\tname = Ulla User
\temail = ulla@example.com
[advice]
\tdetachedHead = false
[pull]
\trebase = false
"""


def gitaudit_command() -> list[str]:
    """argv prefix that runs gitaudit (console script if installed, else ``-m gitaudit``)."""
    script = Path(sys.executable).parent / "gitaudit"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "gitaudit"]


def _base_environment() -> dict[str, str]:
    """The parent environment minus everything git- or gitaudit-specific."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GIT_", "GITAUDIT_", "XDG_"))
        and key not in {"HOME", "EMAIL", "PAGER", "LESS", "EDITOR", "VISUAL"}
        and not key.startswith(("GITHUB_", "GITLAB_", "CI_", "BUILDKITE", "CIRCLE", "JENKINS"))
        and key not in {"CI", "BUILD_TAG"}
    }


class GitSandbox:
    """An isolated place to run git and the wrapper."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.spool = root / "spool"
        self.tmp = root / "tmp"
        for folder in (self.home, self.tmp, self.home / ".config", self.home / ".local/state",
                       self.home / ".local/share"):
            folder.mkdir(parents=True, exist_ok=True)
        self.global_config = self.home / "gitconfig"
        self.global_config.write_text(_GLOBAL_CONFIG)
        self.env: dict[str, str] = {
            **_base_environment(),
            **PINNED_IDENTITY,
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_STATE_HOME": str(self.home / ".local/state"),
            "XDG_DATA_HOME": str(self.home / ".local/share"),
            "XDG_RUNTIME_DIR": str(self.tmp),
            "TMPDIR": str(self.tmp),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(self.global_config),
            "GIT_TERMINAL_PROMPT": "0",
            "GITAUDIT_SPOOL_DIR": str(self.spool),
            "GITAUDIT_LEVEL": "all",  # record reads too: the tests look at every command
            "GITAUDIT_CONFIG": str(root / "no-such-gitaudit-config.toml"),
            "LANG": "C",
            "LC_ALL": "C",
            "TZ": "UTC",
            "PYTHONPATH": str(PROJECT_ROOT),
        }

    # -- running --

    def environ(self, extra: Mapping[str, str] | None = None,
                drop: Sequence[str] = ()) -> dict[str, str]:
        """The sandbox environment with ``extra`` applied and ``drop`` removed."""
        env = dict(self.env)
        env.update(extra or {})
        for name in drop:
            env.pop(name, None)
        return env

    def git(self, *args: str, cwd: Path | None = None, check: bool = True,
            env: Mapping[str, str] | None = None, input: bytes | None = None,
            ) -> subprocess.CompletedProcess[bytes]:
        """Run the real git (never the wrapper) in the sandbox."""
        return subprocess.run(
            [REAL_GIT, *args], cwd=cwd or self.root, env=self.environ(env), check=check,
            capture_output=True, input=input,
        )

    def audited(self, *args: str, cwd: Path | None = None,
                env: Mapping[str, str] | None = None, drop: Sequence[str] = (),
                input: bytes | None = None,
                ) -> subprocess.CompletedProcess[bytes]:
        """Run ``gitaudit git ARGS`` in the sandbox (never raises on a non-zero exit)."""
        return subprocess.run(
            [*gitaudit_command(), "git", *args], cwd=cwd or self.root,
            env=self.environ(env, drop), capture_output=True, input=input, check=False,
        )

    def out(self, *args: str, cwd: Path | None = None) -> str:
        """stdout of a real git command, stripped."""
        return self.git(*args, cwd=cwd).stdout.decode().strip()

    # -- building repositories --

    def bare_remote(self, name: str = "remote.git") -> Path:
        """A bare repository to push to and clone from."""
        path = self.root / name
        self.git("init", "-q", "--bare", "-b", "main", str(path))
        return path

    def repo(self, name: str = "work", remote: Path | None = None) -> Path:
        """A non-bare repository with one commit (``base``) and, optionally, ``origin``."""
        path = self.root / name
        self.git("init", "-q", "-b", "main", str(path))
        self.commit(path, {"README": "base\n"}, "base")
        if remote is not None:
            self.git("remote", "add", "origin", str(remote), cwd=path)
        return path

    def clone(self, remote: Path, name: str) -> Path:
        """A clone of ``remote``."""
        path = self.root / name
        self.git("clone", "-q", str(remote), str(path))
        return path

    def commit(self, repo: Path, files: Mapping[str, str | None], message: str,
               date: str | None = None) -> str:
        """Write (or with None, delete) files, commit them all, return the new commit id."""
        for name, content in files.items():
            target = repo / name
            if content is None:
                self.git("rm", "-q", name, cwd=repo)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            self.git("add", name, cwd=repo)
        extra = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date} if date else None
        self.git("commit", "-q", "--allow-empty", "-m", message, cwd=repo, env=extra)
        return self.out("rev-parse", "HEAD", cwd=repo)

    # -- reading what the wrapper recorded --

    def events(self, spool: Path | None = None) -> list[dict[str, Any]]:
        """Every event in a spool directory (active and sealed segments), oldest first."""
        folder = spool or self.spool
        if not folder.is_dir():
            return []
        found: list[dict[str, Any]] = []
        for segment in [*sorted(folder.glob("seg-*.jsonl")), folder / "active.jsonl"]:
            if segment.exists():
                found += [json.loads(line) for line in segment.read_text().splitlines() if line]
        return found

    def last_event(self, operation: str | None = None) -> dict[str, Any]:
        """The most recent event (of ``operation`` if given)."""
        events = [e for e in self.events() if operation is None or e["operation"] == operation]
        assert events, f"no {operation or ''} event spooled in {self.spool}"
        return events[-1]
