"""Shared helpers for tests that drive real git: isolated, deterministic environments.

:class:`GitSandbox` gives each test its own HOME, XDG directories, global git
config (``GIT_CONFIG_GLOBAL``, no system config), pinned author/committer
identities and dates, and helpers to make repositories, bare remotes and
commits. Nothing from the developer's own git setup leaks in.

Repositories and histories are built with GitPython (:meth:`GitSandbox.open`
gives a :class:`git.Repo` whose git runs in the sandbox environment);
:func:`branched`, :func:`conflicting_branches`, :func:`diverged` and :func:`stopping` build the
histories the conflict tests stop on. GitPython only builds fixtures: the
commands under test run the real ``git`` (:meth:`GitSandbox.git`) or the
wrapper (:meth:`GitSandbox.audited`) as a user would, and commits go through
``git commit`` so that installed hooks run as they do for a user.

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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import git

# GitPython starts git with this process's environment under the sandbox's, so a
# variable the sandbox does not set would leak through (GIT_DIR when the tests run
# from inside a git hook): none of git's own is inherited.
for _name in [name for name in os.environ if name.startswith("GIT_")]:
    del os.environ[_name]

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

    def open(self, path: Path) -> git.Repo:
        """A GitPython handle on ``path`` whose git commands run in the sandbox environment.

        Use it as a context manager: closing it ends the ``git cat-file``
        helpers GitPython keeps running (``settle`` in the hook tests waits
        for every process of the sandbox).
        """
        repo = git.Repo(path)
        repo.git.update_environment(**self.env)
        return repo

    def _init(self, path: Path, *options: str) -> git.Repo:
        runner = git.Git(self.root)
        runner.update_environment(**self.env)
        runner.init("-q", "-b", "main", *options, str(path))
        return self.open(path)

    def bare_remote(self, name: str = "remote.git") -> Path:
        """A bare repository to push to and clone from."""
        path = self.root / name
        self._init(path, "--bare").close()
        return path

    def repo(self, name: str = "work", remote: Path | None = None) -> Path:
        """A non-bare repository with one commit (``base``) and, optionally, ``origin``."""
        path = self.root / name
        with self._init(path) as repo:
            self.commit(path, {"README": "base\n"}, "base")
            if remote is not None:
                repo.create_remote("origin", str(remote))
        return path

    def clone(self, remote: Path, name: str) -> Path:
        """A clone of ``remote``."""
        path = self.root / name
        git.Repo.clone_from(str(remote), path, env=self.env).close()
        return path

    def push(self, repo: Path, branch: str = "main") -> None:
        """Push ``branch`` to ``origin``."""
        with self.open(repo) as handle:
            handle.remote("origin").push(branch).raise_if_error()

    def commit(self, repo: Path, files: Mapping[str, str | None], message: str,
               date: str | None = None) -> str:
        """Write (or with None, delete) files, commit them all, return the new commit id.

        The commit is git's own (``git commit``): installed hooks run, the
        reflog reads as a user's.
        """
        with self.open(repo) as handle:
            for name, content in files.items():
                if content is None:
                    handle.git.rm("-q", name)
                    continue
                target = repo / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content)
                handle.git.add(name)
            dates = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date} if date else {}
            with handle.git.custom_environment(**dates):
                handle.git.commit("-q", "--allow-empty", "-m", message)
            return str(handle.head.commit.hexsha)

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


# --- histories that stop on conflicts ------------------------------------------------------


def resolve(sandbox: GitSandbox, repo: Path, path: str, how: str) -> None:
    """Resolve one conflicted file the way a user would: ours, theirs, manual or deleted."""
    if how in {"ours", "theirs"}:
        sandbox.git("checkout", f"--{how}", "--", path, cwd=repo)
        sandbox.git("add", "--", path, cwd=repo)
    elif how == "manual":
        (repo / path).write_text(f"hand-merged {path}\n")
        sandbox.git("add", "--", path, cwd=repo)
    else:
        sandbox.git("rm", "-q", "--", path, cwd=repo)


Commits = Sequence[tuple[str, Mapping[str, str | None]]]  # (message, files) in order


def branched(sandbox: GitSandbox, base: Mapping[str, str], topic: Commits, main: Commits,
             on: str = "main") -> Path:
    """A repository: ``base`` committed on main, ``topic`` branched off it, then each side's
    commits (None deletes a file); ``on`` is checked out."""
    path = sandbox.repo()
    sandbox.commit(path, base, "base files")
    with sandbox.open(path) as repo:
        for branch, commits in ((repo.create_head("topic"), topic), (repo.heads.main, main)):
            branch.checkout()
            for message, files in commits:
                sandbox.commit(path, files, message)
        repo.heads[on].checkout()
    return path


def conflicting_branches(sandbox: GitSandbox, on: str = "main") -> Path:
    """main and topic that conflict in every way: content, add/add, modify/delete, rename."""
    moving = "rename me\n" * 20
    return branched(
        sandbox,
        {"content.txt": "base\n", "modify_delete.txt": "base\n", "renamed.txt": moving},
        topic=[("topic side", {"content.txt": "topic\n", "added.txt": "topic\n",
                               "modify_delete.txt": None, "renamed.txt": None})],
        main=[("main side", {"content.txt": "main\n", "added.txt": "main\n",
                             "modify_delete.txt": "main edit\n", "renamed.txt": None,
                             "moved.txt": moving})],
        on=on,
    )


def rebase_stopping_twice(sandbox: GitSandbox) -> Path:
    """topic checked out, two commits that each conflict with main's one: a rebase stops twice."""
    return branched(
        sandbox, {"a.txt": "base\n", "b.txt": "base\n"},
        topic=[("topic a", {"a.txt": "topic\n"}), ("topic b", {"b.txt": "topic\n"})],
        main=[("main both", {"a.txt": "main\n", "b.txt": "main\n"})],
        on="topic",
    )


def seeded_clone(sandbox: GitSandbox, files: Mapping[str, str], message: str
                 ) -> tuple[Path, Path, Path]:
    """(bare remote, seed repository that pushed ``files`` to it, clone ``work`` of it)."""
    remote = sandbox.bare_remote()
    seed = sandbox.repo("seed", remote=remote)
    sandbox.commit(seed, files, message)
    sandbox.push(seed)
    return remote, seed, sandbox.clone(remote, "work")


def diverged(sandbox: GitSandbox) -> tuple[Path, Path, list[str]]:
    """A remote whose main moved on, and a clone with two local commits, one conflicting."""
    remote, seed, work = seeded_clone(sandbox, {"shared.txt": "line\n"}, "shared file")
    local = [
        sandbox.commit(work, {"shared.txt": "local change\n"}, "local edit of shared",
                       date="2024-02-01T00:00:00Z"),
        sandbox.commit(work, {"mine.txt": "only here\n"}, "local only file",
                       date="2024-02-02T00:00:00Z"),
    ]
    sandbox.commit(seed, {"shared.txt": "remote change\n"}, "remote edit of shared")
    sandbox.push(seed)
    return remote, work, local


# Every way git stops on a conflict, each with one conflicted file (a.txt) on the last step
# it applies: what git leaves behind once such a stop is concluded is then left in place.
STOP_KINDS = ("merge", "rebase", "cherry-pick", "revert", "pull-rebase")


class Stopping:
    """A repository about to stop on a conflict: run ``start`` in it, then ``conclude``."""

    def __init__(self, repo: Path, start: tuple[str, ...], conclude: tuple[str, ...],
                 stopped_in: str) -> None:
        self.repo = repo
        self.start = start
        self.conclude = conclude
        self.stopped_in = stopped_in  # the conflict.* events' details.stopped_in


def stopping(sandbox: GitSandbox, kind: str) -> Stopping:
    """A history that stops on a.txt when ``start`` runs (a kind of :data:`STOP_KINDS`)."""
    if kind == "pull-rebase":
        _, seed, work = seeded_clone(sandbox, {"a.txt": "base\n"}, "base a")
        sandbox.commit(work, {"a.txt": "local\n"}, "local a")
        sandbox.commit(seed, {"a.txt": "remote\n"}, "remote a")
        sandbox.push(seed)
        return Stopping(work, ("pull", "--rebase"), ("rebase", "--continue"), "rebase")
    path = branched(sandbox, {"a.txt": "base\n"}, topic=[("topic a", {"a.txt": "topic\n"})],
                    main=[("main a", {"a.txt": "main\n"})],
                    on="topic" if kind == "rebase" else "main")
    start = {"merge": ("merge", "topic"), "rebase": ("rebase", "main"),
             "cherry-pick": ("cherry-pick", "topic"), "revert": ("revert", "--no-edit", "main~")}
    return Stopping(path, start[kind], (kind, "--continue"), kind)


def diverge_and_merge(sandbox: GitSandbox, repo: Path, run: Callable[..., Any],
                      stopped: Callable[[], object] = lambda: None) -> None:
    """More work after a conflict ended: commits, a branch and back, then a merge that stops
    on later.txt (``run``: how the merge and its conclusion run, plain git or the wrapper;
    ``stopped`` is called once it has stopped)."""
    for number in range(3):
        sandbox.commit(repo, {f"more{number}.txt": f"{number}\n"}, f"more {number}")
    with sandbox.open(repo) as handle:
        back = handle.active_branch
        handle.create_head("side").checkout()
        sandbox.commit(repo, {"later.txt": "side\n"}, "side later")
        back.checkout()
        sandbox.commit(repo, {"later.txt": "here\n"}, "here later")
    assert run("merge", "side", cwd=repo).returncode == 1
    stopped()
    resolve(sandbox, repo, "later.txt", "theirs")
    done = run("commit", "--no-edit", cwd=repo, env={"GIT_EDITOR": "true"})
    assert done.returncode == 0, done.stderr
