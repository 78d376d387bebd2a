"""Installing, removing and inspecting gitaudit's git hooks (``gitaudit hooks ...``).

Hook scripts are rendered from ``hooks/hook-template.sh`` (bundled in the
wheel as ``gitaudit/_hooks``); every installed script carries the marker
``# gitaudit-hook``, the template's version and SHA-256, the hook it is
(``hook=``: a hook manager may rename the file) and its mode (``record``;
``chain``: only runs the hook it chains to; ``gate``: records the commit a
chained hook refused), which is how install, uninstall and status recognise
ours, under any name, and tell an outdated one.

Per repository (``--repo``): scripts go into the repository's own hooks
directory (its local ``core.hooksPath`` if it sets one, else
``<common git dir>/hooks``). A hook already there that is not ours is renamed
``<name>.gitaudit-legacy`` (same directory, same mode) and the gitaudit hook
runs it with the same arguments and stdin; uninstall renames it back.
Where a hook manager that runs the hook it replaced sits (pre-commit runs
``<name>.legacy``), gitaudit takes that place instead of the manager's, so
either tool can be uninstalled first.

Globally (``--global``): scripts go into ``$XDG_DATA_HOME/gitaudit/hooks`` and
the global ``core.hooksPath`` points there. Its state file remembers the
previous global value: the global hooks chain to that directory if there was
one (that is what git ran before), else to each repository's own
``hooks/`` directory. A repository that sets ``core.hooksPath`` in its own
config overrides the global one in git itself, so the global hooks do not run
there; ``status`` says so (install per repository to cover it). Every other
hook name git knows (:data:`GIT_HOOKS`) gets a chain-only script, since with
``core.hooksPath`` set git runs nothing from ``.git/hooks`` itself.

Peers that rewrite their hooks (husky over ours; lefthook moving ours to
``<name>.old``) are recognised (:data:`PEERS`): ``status`` names what happened
and ``install`` repairs it; a kept copy that the peer wrote again (identical,
or the same peer's) is dropped, not refused.

Planning is pure (:func:`plan_install`, :func:`plan_uninstall`) and tested
without git; the I/O happens in :func:`apply_install` / :func:`apply_uninstall`.
Nothing that is not ours is ever deleted or overwritten, except a kept copy of a
peer's script that the peer has just written again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitaudit import paths
from gitaudit.capture import gitcmd
from gitaudit.capture.hookrun import GLOBAL_STATE, HOOK_MARKER, LEGACY_SUFFIX, read_global_state
from gitaudit.capture.hooks import DEFAULT_HOOKS, OPTIONAL_HOOKS, REFUSAL_HOOKS
from gitaudit.errors import GitauditError

__all__ = [
    "ABSENT", "ALL_HOOKS", "CHAIN", "CONFLICT", "DROP_COPY", "DROP_STALE", "GATE", "GIT_HOOKS",
    "KEEP_AND_WRITE", "LEGACY_SUFFIX", "NOT_OURS", "RECORD", "REMOVE", "RESTORE", "UNCHANGED",
    "UPGRADE", "WRITE", "HookFile", "HookInstallError", "Identity", "Outcome", "Step",
    "Template", "global_status", "install_global", "install_repo", "plan_install",
    "plan_uninstall", "repo_status", "uninstall_global", "uninstall_repo",
]

TEMPLATE_NAME = "hook-template.sh"
ALL_HOOKS = (*DEFAULT_HOOKS, *OPTIONAL_HOOKS)
# Every hook git (2.39) runs by name from its hooks directory (githooks(5)). A global install
# puts a script under each name into gitaudit's directory, so that a repository still runs
# exactly the hooks it ran before. Left out: fsmonitor-watchman (git runs core.fsmonitor, not
# a hook of that name) and proc-receive (its mere presence changes what receive-pack does for
# receive.procReceiveRefs; a server using it installs per repository).
GIT_HOOKS = (
    "applypatch-msg", "pre-applypatch", "post-applypatch", "pre-commit", "pre-merge-commit",
    "prepare-commit-msg", "commit-msg", "post-commit", "pre-rebase", "post-checkout",
    "post-merge", "pre-push", "pre-receive", "update", "post-receive", "post-update",
    "reference-transaction", "push-to-checkout", "pre-auto-gc", "post-rewrite",
    "sendemail-validate", "p4-changelist", "p4-prepare-changelist", "p4-post-changelist",
    "p4-pre-submit", "post-index-change",
)  # fmt: skip
RECORD = "record"  # the hook records its event, then runs the chained hook
CHAIN = "chain"  # the hook only runs the chained hook (global installs: every other name)
GATE = "gate"  # runs the chained hook; records the commit it refused (REFUSAL_HOOKS)
_TEMPLATE_LINE = re.compile(rb"^# gitaudit-template: version (\d+) sha256 ([0-9a-f]+)$", re.M)
_HOOK_LINE = re.compile(rb"^hook='?([A-Za-z0-9._-]+)'?", re.M)
_MODE_LINE = re.compile(rb"^mode='?([a-z]+)'?", re.M)
_LOCAL_SCOPES = frozenset({"local", "worktree"})
# Hook managers recognised by the scripts they write (first 2 KiB), and the name under which
# each runs a hook that was there before it (pre-commit: <hook>.legacy; husky 9 and lefthook
# run none: lefthook moves it to <hook>.old and leaves it there).
PEERS = (
    ("pre-commit", b"# File generated by pre-commit"),
    ("lefthook", b"call_lefthook"),
    ("husky", b'/h"'),
)
PEER_SLOT = {"pre-commit": ".legacy"}


class HookInstallError(GitauditError):
    """Hooks cannot be installed, removed or inspected as asked."""


# --- the template ------------------------------------------------------------------------


def template_path() -> Path:
    """The hook template: bundled in the wheel, or ``hooks/`` of a source checkout."""
    package = Path(__file__).resolve().parent
    bundled = package / "_hooks" / TEMPLATE_NAME
    return bundled if bundled.is_file() else package.parent / "hooks" / TEMPLATE_NAME


@dataclass(frozen=True)
class Template:
    """The hook template's text, version and SHA-256 (first 16 hex digits)."""

    text: str
    version: int
    sha256: str

    @classmethod
    def load(cls, path: Path | None = None) -> Template:
        """Read and identify the template."""
        source = path or template_path()
        try:
            raw = source.read_bytes()
        except OSError as exc:
            raise HookInstallError(
                f"cannot read the hook template {source}: {exc.strerror or exc}",
                "reinstall gitaudit (the wheel ships it as gitaudit/_hooks)",
            ) from exc
        found = re.search(rb"# gitaudit-template: version (\d+)", raw)
        version = int(found.group(1)) if found else 0
        return cls(raw.decode("utf-8"), version, hashlib.sha256(raw).hexdigest()[:16])

    def render(self, python: str, package_root: str, hook: str, mode: str = RECORD) -> bytes:
        """The script for ``hook`` (which it knows from its content, whatever its file name)."""
        return (
            self.text.replace("@TEMPLATE_SHA256@", self.sha256)
            .replace("@HOOK@", shlex.quote(hook))
            .replace("@MODE@", mode)
            .replace("@PYTHON@", shlex.quote(python))
            .replace("@PACKAGE_ROOT@", shlex.quote(package_root))
            .encode("utf-8")
        )


def package_root() -> str:
    """The directory holding the ``gitaudit`` package (appended to the hook's sys.path)."""
    return str(Path(__file__).resolve().parent.parent)


def rendered_hooks(record: Sequence[str], chain: Sequence[str] = (), gate: Sequence[str] = (),
                   template: Template | None = None) -> dict[str, bytes]:
    """Each hook's script for the running interpreter (recorded at install time)."""
    template = template or Template.load()
    python, root = sys.executable, package_root()
    scripts = {name: template.render(python, root, name, RECORD) for name in record}
    scripts.update({name: template.render(python, root, name, CHAIN) for name in chain})
    scripts.update({name: template.render(python, root, name, GATE) for name in gate})
    return scripts


# --- what is on disk ---------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """A gitaudit script: template version and sha, the hook it is, what it does."""

    version: int | None
    sha256: str | None
    hook: str | None  # None: a version 1 script, which took its hook from its file name
    mode: str = RECORD


def identify(content: bytes) -> Identity | None:
    """Who wrote ``content``, if it is a gitaudit hook script; else None."""
    if HOOK_MARKER not in content[:512]:
        return None
    head = content[:2048]
    found = _TEMPLATE_LINE.search(head)
    hook = _HOOK_LINE.search(head)
    mode = _MODE_LINE.search(head)
    return Identity(
        int(found.group(1)) if found else None, found.group(2).decode() if found else None,
        hook.group(1).decode() if hook else None, mode.group(1).decode() if mode else RECORD,
    )


def peer_of(content: bytes | None) -> str | None:
    """The hook manager that wrote ``content`` (pre-commit, husky, lefthook), if known."""
    if not content:
        return None
    head = content[:2048]
    return next((name for name, mark in PEERS if mark in head), None)


def _read(path: Path) -> bytes | None:
    """A regular file's bytes (None: absent, a directory, a symlink, unreadable)."""
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def scan_ours(folder: Path) -> dict[str, list[str]]:
    """Every gitaudit script in ``folder`` by the hook it is: {hook: [file names]}."""
    found: dict[str, list[str]] = {}
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return found
    for entry in entries:
        if entry.endswith(LEGACY_SUFFIX) or entry.startswith("."):
            continue
        content = _read(folder / entry)
        ours = identify(content) if content is not None and content[:2] == b"#!" else None
        if ours is not None:
            found.setdefault(ours.hook or entry, []).append(entry)
    return found


@dataclass(frozen=True)
class HookFile:
    """One hook in one directory: the file that holds its place (the slot) and around it.

    The slot is the hook's own name, or, when a hook manager that runs the hook it
    replaced sits there (pre-commit), the name under which it runs it (``<hook>.legacy``).
    """

    name: str
    kind: str  # of the slot: "absent", "ours" or "foreign"
    content: bytes | None = None
    version: int | None = None
    sha256: str | None = None
    legacy: bool = False  # a kept <name>.gitaudit-legacy exists
    slot: str = ""  # file name of the slot ("" = name)
    peer: str | None = None  # hook manager whose script is at <name>
    copy: bool = False  # the kept hook is the peer's own script again: the peer rewrote ours
    stale: tuple[str, ...] = ()  # ours under other names, where nothing runs them
    mode: str = RECORD

    @property
    def file(self) -> str:
        """The slot's file name."""
        return self.slot or self.name


def inspect_hook(folder: Path, name: str, ours: Mapping[str, list[str]] | None = None
                 ) -> HookFile:
    """What holds ``name``'s place in ``folder`` (a symlink or directory is always foreign)."""
    ours = scan_ours(folder) if ours is None else ours
    at_name = _read(folder / name)
    peer = peer_of(at_name)
    slot = name + PEER_SLOT[peer] if peer in PEER_SLOT else name
    path = folder / slot
    legacy_path = folder / (name + LEGACY_SUFFIX)
    legacy = os.path.lexists(legacy_path)
    stale = tuple(entry for entry in ours.get(name, ()) if entry != slot)
    common: dict[str, Any] = {"legacy": legacy, "slot": slot, "peer": peer, "stale": stale}
    if not os.path.lexists(path):
        return HookFile(name, "absent", **common)
    content = at_name if slot == name else _read(path)
    found = identify(content) if content is not None else None
    if found is None or (found.hook or name) != name:
        kept = _read(legacy_path) if legacy and slot == name else None
        copy = kept is not None and (kept == content or (peer is not None
                                                         and peer_of(kept) == peer))
        return HookFile(name, "foreign", content, copy=copy, **common)
    return HookFile(name, "ours", content, found.version, found.sha256, mode=found.mode,
                    **common)


def inspect_dir(folder: Path, names: Iterable[str] = ALL_HOOKS) -> list[HookFile]:
    """Every hook name of interest in ``folder``."""
    ours = scan_ours(folder)
    return [inspect_hook(folder, name, ours) for name in names]


# --- planning (pure) ---------------------------------------------------------------------

WRITE = "write"  # nothing there: write ours
UNCHANGED = "unchanged"  # ours, identical
UPGRADE = "upgrade"  # ours, other template or interpreter: rewrite
KEEP_AND_WRITE = "keep-and-write"  # foreign: keep it as .gitaudit-legacy, write ours
CONFLICT = "conflict"  # foreign, and a .gitaudit-legacy already exists: leave all alone
REMOVE = "remove"  # ours, nothing kept: delete
RESTORE = "restore"  # ours, a kept hook: put it back
ABSENT = "absent"  # nothing of ours there
NOT_OURS = "not-ours"  # a foreign hook: left alone
DROP_COPY = "drop-copy"  # the kept hook is a copy of what the peer wrote over ours: delete it
DROP_STALE = "drop-stale"  # ours where nothing runs it (moved aside by a peer): delete it,
# or put the kept hook there (where the peer would have moved it had gitaudit not been there)


@dataclass(frozen=True)
class Step:
    """One planned action on one hook name (``file``: the file acted on, default the name)."""

    name: str
    action: str
    file: str = ""

    @property
    def path_name(self) -> str:
        """The file name acted on."""
        return self.file or self.name


def _repairs(hook: HookFile) -> tuple[list[Step], bool]:
    """Steps that undo what a peer did to ours; and whether the kept hook is still there."""
    steps: list[Step] = []
    legacy = hook.legacy
    if hook.kind == "foreign" and hook.copy:
        steps.append(Step(hook.name, DROP_COPY, hook.name + LEGACY_SUFFIX))
        legacy = False
    for stale in hook.stale:
        steps.append(Step(hook.name, DROP_STALE, stale))
        if legacy and hook.kind != "ours":
            legacy = False  # the kept hook goes where the peer put ours
    return steps, legacy


def plan_install(files: Sequence[HookFile], rendered: Mapping[str, bytes]) -> list[Step]:
    """What installing ``rendered`` does to each hook; never clobbers a foreign file."""
    steps: list[Step] = []
    for hook in files:
        repairs, legacy = _repairs(hook)
        steps += repairs
        if hook.kind == "absent":
            action = WRITE
        elif hook.kind == "ours":
            action = UNCHANGED if hook.content == rendered[hook.name] else UPGRADE
        else:
            action = CONFLICT if legacy else KEEP_AND_WRITE
        steps.append(Step(hook.name, action, hook.slot if hook.slot != hook.name else ""))
    return steps


def plan_uninstall(files: Sequence[HookFile]) -> list[Step]:
    """What uninstalling does to each hook: only ours go; kept hooks come back."""
    steps: list[Step] = []
    for hook in files:
        repairs, legacy = _repairs(hook)
        steps += repairs
        slot = hook.slot if hook.slot != hook.name else ""
        if hook.kind == "ours":
            steps.append(Step(hook.name, RESTORE if legacy else REMOVE, slot))
        elif hook.kind == "foreign":
            steps.append(Step(hook.name, NOT_OURS, slot))
        else:
            steps.append(Step(hook.name, RESTORE if legacy else ABSENT, slot))
    return steps


def conflicts(steps: Sequence[Step]) -> list[str]:
    """Hook names a plan refuses to touch."""
    return [step.name for step in steps if step.action == CONFLICT]


# --- applying ----------------------------------------------------------------------------


def _write_hook(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o755)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(temporary, 0o755)  # noqa: S103 - a hook must be executable, or git skips it
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _put_back(folder: Path, name: str, path: Path) -> bool:
    """Rename the kept ``<name>.gitaudit-legacy`` to ``path`` (False: nothing kept)."""
    legacy = folder / (name + LEGACY_SUFFIX)
    if not os.path.lexists(legacy):
        return False
    os.replace(legacy, path)
    return True


def _apply_repair(folder: Path, step: Step) -> bool:
    """Carry out a DROP_COPY or DROP_STALE step (False: not a repair step)."""
    path = folder / step.path_name
    if step.action == DROP_COPY:
        path.unlink()
    elif step.action == DROP_STALE:
        slot = inspect_hook(folder, step.name, {})
        if slot.kind == "ours" or not _put_back(folder, step.name, path):
            path.unlink()
    else:
        return False
    return True


def apply_install(folder: Path, steps: Sequence[Step], rendered: Mapping[str, bytes]) -> None:
    """Carry out an install plan in ``folder`` (conflicting hooks are skipped)."""
    folder.mkdir(parents=True, exist_ok=True)
    for step in steps:
        path = folder / step.path_name
        if _apply_repair(folder, step):
            continue
        if step.action in {WRITE, UPGRADE}:
            _write_hook(path, rendered[step.name])
        elif step.action == KEEP_AND_WRITE:
            legacy = folder / (step.name + LEGACY_SUFFIX)
            os.rename(path, legacy)  # same directory: content, mode and links kept as they are
            try:
                _write_hook(path, rendered[step.name])
            except BaseException:
                os.rename(legacy, path)
                raise


def apply_uninstall(folder: Path, steps: Sequence[Step]) -> None:
    """Carry out an uninstall plan: remove ours, rename kept hooks back."""
    for step in steps:
        path = folder / step.path_name
        if _apply_repair(folder, step):
            continue
        if step.action == REMOVE:
            path.unlink()
        elif step.action == RESTORE:
            if os.path.lexists(path):
                path.unlink()
            _put_back(folder, step.name, path)


# --- repositories ------------------------------------------------------------------------


@dataclass
class HooksPath:
    """The effective ``core.hooksPath``: value and the config scope it comes from."""

    value: str | None = None
    scope: str | None = None  # "local", "worktree", "global", "system", "command"

    @property
    def local(self) -> bool:
        """Set by the repository itself (overrides any global value)."""
        return self.scope in _LOCAL_SCOPES


@dataclass
class Repository:
    """Where a repository keeps its hooks."""

    git_dir: str
    common_dir: str
    worktree: str | None
    hooks_path: HooksPath = field(default_factory=HooksPath)

    @property
    def default_hooks_dir(self) -> Path:
        """``<common git dir>/hooks``: where git looks without any core.hooksPath."""
        return Path(self.common_dir) / "hooks"

    def resolve(self, value: str) -> Path:
        """A core.hooksPath value as git resolves it (relative to where hooks run)."""
        expanded = os.path.expanduser(value)
        base = self.worktree or self.git_dir
        return Path(os.path.normpath(os.path.join(base, expanded)))

    @property
    def local_hooks_dir(self) -> Path:
        """The hooks directory the repository itself chose (local core.hooksPath or default)."""
        if self.hooks_path.local and self.hooks_path.value:
            return self.resolve(self.hooks_path.value)
        return self.default_hooks_dir


def parse_scoped_value(output: bytes) -> HooksPath:
    """``git config --show-scope --get`` output (``scope<TAB>value``) to a :class:`HooksPath`."""
    text = output.decode("utf-8", "surrogateescape").rstrip("\n")
    if not text:
        return HooksPath()
    scope, _, value = text.rpartition("\n")[2].partition("\t")
    return HooksPath(value or None, scope or None)


def _where(path: str | None, environ: Mapping[str, str]) -> dict[str, str | None]:
    """``cwd``/``git_dir`` for gitcmd: ``--repo PATH``, else ``$GIT_DIR``, else here."""
    if path is not None:
        return {"cwd": path, "git_dir": None}
    return {"cwd": None if environ.get("GIT_DIR") else os.getcwd(),
            "git_dir": environ.get("GIT_DIR") or None}


def locate(git: str, path: str | None, environ: Mapping[str, str]) -> Repository:
    """The repository at ``path`` (or ``$GIT_DIR``, or the current directory)."""
    where = _where(path, environ)
    output = gitcmd.run(
        git, ["rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir",
              "--is-bare-repository"],
        cwd=where["cwd"], git_dir=where["git_dir"], environ=environ, check=False,
    )
    lines = output.stdout.decode("utf-8", "surrogateescape").splitlines()
    if output.returncode != 0 or len(lines) < 3:
        shown = path or environ.get("GIT_DIR") or os.getcwd()
        raise HookInstallError(
            f"{shown} is not a git repository",
            "pass --repo PATH naming a repository, or --global",
        )
    git_dir, common_dir, bare = lines[0], lines[1], lines[2] == "true"
    worktree = None
    if not bare:
        top = gitcmd.run(git, ["rev-parse", "--show-toplevel"], cwd=where["cwd"],
                         git_dir=where["git_dir"], environ=environ, check=False)
        worktree = top.stdout.decode("utf-8", "surrogateescape").strip() or None
    scoped = gitcmd.run(git, ["config", "--show-scope", "--get", "core.hooksPath"],
                        git_dir=git_dir, environ=_with_worktree(environ, worktree), check=False)
    return Repository(git_dir, common_dir, worktree, parse_scoped_value(scoped.stdout))


def _with_worktree(environ: Mapping[str, str], worktree: str | None) -> dict[str, str]:
    env = dict(environ)
    if worktree:
        env["GIT_WORK_TREE"] = worktree
    return env


def tracked_files(git: str, repo: Repository, folder: Path, environ: Mapping[str, str]) -> bool:
    """True if ``folder`` holds files tracked in the repository (installing would dirty it)."""
    if repo.worktree is None:
        return False
    try:
        relative = os.path.relpath(folder, repo.worktree)
    except ValueError:
        return False
    if relative.startswith(".."):
        return False
    output = gitcmd.run(git, ["ls-files", "-z", "--", relative], cwd=repo.worktree,
                        environ=environ, check=False)
    return bool(output.stdout.strip(b"\0"))


# --- global ------------------------------------------------------------------------------


def global_hooks_dir() -> Path:
    """``$XDG_DATA_HOME/gitaudit/hooks``: the directory --global points core.hooksPath at."""
    return Path(paths.data_home()) / "gitaudit" / "hooks"


def global_value(git: str, environ: Mapping[str, str], scope: str) -> str | None:
    """``core.hooksPath`` from the ``--global`` or ``--system`` config alone."""
    output = gitcmd.run(git, ["config", f"--{scope}", "--get", "core.hooksPath"],
                        cwd="/", environ=environ, check=False)
    text = output.stdout.decode("utf-8", "surrogateescape").strip()
    return text if output.returncode == 0 and text else None


def set_global_value(git: str, environ: Mapping[str, str], value: str | None) -> None:
    """Set (or with None unset) the global ``core.hooksPath``."""
    args = ["config", "--global", "core.hooksPath", value] if value is not None else [
        "config", "--global", "--unset-all", "core.hooksPath"
    ]
    output = gitcmd.run(git, args, cwd="/", environ=environ, check=False)
    if output.returncode not in (0, 5):  # 5: --unset of a key that is not set
        raise HookInstallError(
            f"cannot update core.hooksPath in the global git config: "
            f"{output.stderr.decode('utf-8', 'replace').strip()}",
            "check that ~/.gitconfig (or $GIT_CONFIG_GLOBAL) is writable",
        )


def same_path(first: str | Path | None, second: str | Path | None) -> bool:
    """Two paths naming the same directory (by file identity when both exist)."""
    if not first or not second:
        return False
    try:
        return os.path.samefile(os.path.expanduser(first), os.path.expanduser(second))
    except OSError:
        return os.path.normpath(os.path.expanduser(first)) == os.path.normpath(
            os.path.expanduser(second))


def format_state(chain: str | None, previous_global: str | None) -> str:
    """The global hooks directory's state file (read by the hooks: see hookrun)."""
    return (
        "# gitaudit: where the global hooks chain to, and the core.hooksPath to restore\n"
        f"chain={chain or ''}\nprevious_global={previous_global or ''}\n"
    )


# --- the operations ----------------------------------------------------------------------


@dataclass
class Outcome:
    """What an install or uninstall did, for the CLI to print."""

    hooks_dir: Path
    steps: list[Step]
    notes: list[str] = field(default_factory=list)


def hook_names(extra: Sequence[str]) -> list[str]:
    """The default hooks plus the optional ones asked for (``--with``)."""
    unknown = [name for name in extra if name not in OPTIONAL_HOOKS]
    if unknown:
        raise HookInstallError(
            f"unknown optional hook(s): {', '.join(unknown)}",
            f"choose from: {', '.join(OPTIONAL_HOOKS)}",
        )
    return [*DEFAULT_HOOKS, *(name for name in OPTIONAL_HOOKS if name in extra)]


def _install_into(folder: Path, rendered: Mapping[str, bytes]) -> list[Step]:
    steps = plan_install(inspect_dir(folder, rendered), rendered)
    refused = conflicts(steps)
    if refused:
        raise HookInstallError(
            f"{folder}: " + ", ".join(f"{name} and {name}{LEGACY_SUFFIX}" for name in refused)
            + " both exist and are not gitaudit's; nothing was changed",
            f"see which is the hook you want: run it by hand, merge the two into {refused[0]}, "
            f"delete {refused[0]}{LEGACY_SUFFIX}, then install again",
        )
    with _reported(f"cannot install hooks in {folder}"):
        apply_install(folder, steps, rendered)
    return steps


def _uninstall_from(folder: Path) -> list[Step]:
    steps = plan_uninstall(inspect_dir(folder, _uninstall_names(folder)))
    with _reported(f"cannot remove hooks from {folder}"):
        apply_uninstall(folder, steps)
    return steps


@contextlib.contextmanager
def _reported(what: str) -> Iterator[None]:
    """An OSError inside becomes a :class:`HookInstallError` saying ``what`` failed."""
    try:
        yield
    except OSError as exc:
        raise HookInstallError(f"{what}: {exc.strerror or exc}",
                               "check the directory's permissions") from exc


def _uninstall_names(folder: Path) -> list[str]:
    """Every hook git knows, and any other that a gitaudit script in ``folder`` says it is."""
    return [*GIT_HOOKS, *(name for name in scan_ours(folder) if name not in GIT_HOOKS)]


def install_repo(git: str, path: str | None, environ: Mapping[str, str],
                 extra: Sequence[str] = ()) -> Outcome:
    """Install the hooks into one repository's own hooks directory.

    gitaudit's hooks left in ``<git dir>/hooks`` after the repository pointed its
    core.hooksPath elsewhere (husky does) no longer run: they are removed there.
    """
    repo = locate(git, path, environ)
    folder = repo.local_hooks_dir
    if tracked_files(git, repo, folder, environ):
        raise HookInstallError(
            f"core.hooksPath of this repository ({folder}) holds tracked files; "
            "installing there would change them",
            "gitaudit's wrapper and trace2 capture still cover this repository",
        )
    steps = _install_into(folder, rendered_hooks(hook_names(extra), gate=_gates(folder)))
    notes = repo_notes(git, repo, environ)
    if _bypassed(repo):
        _uninstall_from(repo.default_hooks_dir)
        notes.append(f"removed gitaudit's hooks from {repo.default_hooks_dir}: git does not "
                     f"run hooks there since core.hooksPath points to {folder}")
    return Outcome(folder, steps, notes)


def _gates(folder: Path) -> list[str]:
    """The refusal hooks worth a gate in a repository: where a hook is there to refuse.

    Not where pre-commit's script sits: it runs a kept hook before its own checks, so a gate
    there would never see a refusal.
    """
    gates = []
    for hook in inspect_dir(folder, REFUSAL_HOOKS):
        if (hook.kind == "ours" and hook.mode == GATE) or (
            hook.kind == "foreign" and hook.peer != "pre-commit"
        ):
            gates.append(hook.name)
    return gates


def _bypassed(repo: Repository) -> bool:
    """gitaudit scripts sit in ``<git dir>/hooks`` although git runs hooks elsewhere."""
    return (not same_path(repo.default_hooks_dir, repo.local_hooks_dir)
            and bool(scan_ours(repo.default_hooks_dir)))


def uninstall_repo(git: str, path: str | None, environ: Mapping[str, str]) -> Outcome:
    """Remove our hooks from a repository and put back the ones they replaced."""
    repo = locate(git, path, environ)
    folder = repo.local_hooks_dir
    steps = _uninstall_from(folder)
    if _bypassed(repo):
        _uninstall_from(repo.default_hooks_dir)
    return Outcome(folder, steps, _leftover_notes(folder, steps))


def _leftover_notes(folder: Path, steps: Sequence[Step]) -> list[str]:
    return [
        f"{step.name} is not gitaudit's but {step.name}{LEGACY_SUFFIX} is still there: "
        f"merge them by hand ({folder})"
        for step in steps
        if step.action == NOT_OURS and os.path.lexists(folder / (step.name + LEGACY_SUFFIX))
    ]


def global_scripts(extra: Sequence[str]) -> dict[str, bytes]:
    """A global install's scripts: ours record, every other hook git knows only chains."""
    record = hook_names(extra)
    chain = [name for name in GIT_HOOKS if name not in record and name not in REFUSAL_HOOKS]
    return rendered_hooks(record, chain, REFUSAL_HOOKS)


def install_global(git: str, environ: Mapping[str, str], extra: Sequence[str] = ()) -> Outcome:
    """Point the global core.hooksPath at gitaudit's hooks directory (chaining as before)."""
    folder = global_hooks_dir()
    current = global_value(git, environ, "global")
    steps = _install_into(folder, global_scripts(extra))
    state_file = folder / GLOBAL_STATE
    already = same_path(current, folder)
    if not (already and state_file.exists()):
        previous = None if already else current
        chain = previous or global_value(git, environ, "system")
        state_file.write_text(format_state(chain, previous), encoding="utf-8")
    if not already:
        set_global_value(git, environ, str(folder))
    return Outcome(folder, steps, global_notes(git, environ))


def uninstall_global(git: str, environ: Mapping[str, str]) -> Outcome:
    """Remove the global hooks and restore the previous global core.hooksPath."""
    folder = global_hooks_dir()
    notes: list[str] = []
    state_file = folder / GLOBAL_STATE
    state = read_global_state(str(folder)) or {}
    current = global_value(git, environ, "global")
    if same_path(current, folder):
        set_global_value(git, environ, state.get("previous_global") or None)
    elif current:
        notes.append(f"global core.hooksPath is {current}, not gitaudit's: left as it is")
    steps = _uninstall_from(folder)
    state_file.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # other files remain (not ours): the directory stays
        folder.rmdir()
    return Outcome(folder, steps, notes)


# --- status ------------------------------------------------------------------------------


def _problem(hook: HookFile) -> tuple[str, str] | None:
    """(state, what happened) when a peer left gitaudit's hook where it does not run."""
    who = hook.peer or "another hook manager"
    if hook.stale and hook.kind != "ours":
        return "moved-aside", (
            f"{who} moved gitaudit's {hook.name} to {', '.join(hook.stale)}, where nothing runs "
            f"it: {hook.name} is not recorded")
    if hook.kind == "foreign" and hook.copy:
        return "overwritten", (
            f"{who} wrote its own {hook.name} over gitaudit's (its previous copy is "
            f"{hook.name}{LEGACY_SUFFIX}): {hook.name} is not recorded")
    if hook.kind == "foreign" and hook.legacy:
        return "conflict", (
            f"{hook.name} and {hook.name}{LEGACY_SUFFIX} are both not gitaudit's: "
            f"{hook.name}{LEGACY_SUFFIX} does not run and {hook.name} is not recorded")
    return None


def hook_rows(folder: Path, template: Template, names: Iterable[str] = ALL_HOOKS
              ) -> list[dict[str, Any]]:
    """One row per hook name: state, version, the file holding its place, chained hook."""
    rows = []
    for hook in inspect_dir(folder, names):
        state = hook.kind
        if hook.kind == "ours":
            state = "installed" if hook.sha256 == template.sha256 else "outdated"
        problem = _problem(hook)
        if problem is not None:
            state = problem[0]
        legacy = folder / (hook.name + LEGACY_SUFFIX)
        rows.append({
            "name": hook.name,
            "state": state,
            "records": hook.kind == "ours" and hook.mode == RECORD,
            "mode": hook.mode if hook.kind == "ours" else None,
            "file": hook.file,
            "peer": hook.peer,
            "version": hook.version,
            "template_sha256": hook.sha256,
            "chained": str(legacy) if hook.legacy and hook.kind == "ours" else None,
            "problem": problem[1] if problem else None,
        })
    return rows


def repair_notes(rows: Sequence[Mapping[str, Any]], command: str,
                 more: Sequence[str] = ()) -> list[str]:
    """What went wrong with which hook, and the one command that repairs it all."""
    problems = [*(row["problem"] for row in rows if row["problem"]), *more]
    if not problems:
        return []
    return [*problems, f"repair: {command}"]


def repo_notes(git: str, repo: Repository, environ: Mapping[str, str]) -> list[str]:
    """What decides which hooks run in this repository, in words."""
    hooks_path = repo.hooks_path
    ours = global_hooks_dir()
    if hooks_path.local:
        note = (f"this repository sets core.hooksPath ({hooks_path.value}) in its own config: "
                f"git runs hooks from {repo.local_hooks_dir} only")
        if same_path(global_value(git, environ, "global"), ours):
            note += "; gitaudit's global hooks do not run here (install with --repo to cover it)"
        return [note]
    if hooks_path.value and same_path(repo.resolve(hooks_path.value), ours):
        return [f"gitaudit's global hooks run here and chain to {repo.default_hooks_dir}"]
    if hooks_path.value:
        return [f"core.hooksPath from the {hooks_path.scope} config ({hooks_path.value}) "
                f"overrides {repo.default_hooks_dir}: hooks there do not run"]
    return []


def repo_status(git: str, path: str | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """Status of one repository's hooks (for ``gitaudit hooks status --repo``)."""
    repo = locate(git, path, environ)
    folder = repo.local_hooks_dir
    template = Template.load()
    rows = hook_rows(folder, template, _status_names(folder))
    command = "gitaudit hooks install --repo " + shlex.quote(repo.worktree or repo.git_dir)
    bypassed = [
        f"gitaudit's hooks in {repo.default_hooks_dir} do not run: this repository's "
        f"core.hooksPath points git to {folder} (husky sets it)"
    ] if _bypassed(repo) else []
    return {
        "scope": "repo",
        "repository": repo.worktree or repo.git_dir,
        "hooks_dir": str(folder),
        "core_hooks_path": {"value": repo.hooks_path.value, "scope": repo.hooks_path.scope},
        "overridden": bool(repo.hooks_path.value)
        and not same_path(repo.resolve(repo.hooks_path.value or ""), folder),
        "template": {"version": template.version, "sha256": template.sha256},
        "hooks": rows,
        "notes": [*repo_notes(git, repo, environ), *repair_notes(rows, command, bypassed)],
    }


def _status_names(folder: Path) -> list[str]:
    """gitaudit's hooks, and any other hook a gitaudit script in ``folder`` says it is."""
    names = [*ALL_HOOKS, *REFUSAL_HOOKS]
    return [*names, *(name for name in scan_ours(folder) if name not in names)]


def global_notes(git: str, environ: Mapping[str, str]) -> list[str]:
    """What the global hooks chain to, in words."""
    folder = global_hooks_dir()
    state = read_global_state(str(folder))
    notes = []
    if state and state.get("chain"):
        notes.append(f"global hooks chain to {state['chain']} (the previous core.hooksPath)")
    elif state is not None:
        notes.append("global hooks chain to each repository's own hooks directory")
    notes.append("repositories that set core.hooksPath in their own config bypass global hooks")
    return notes


def global_status(git: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """Status of the global hooks (for ``gitaudit hooks status --global``)."""
    folder = global_hooks_dir()
    current = global_value(git, environ, "global")
    template = Template.load()
    rows = hook_rows(folder, template, GIT_HOOKS)
    if read_global_state(str(folder)) is not None:
        for row in rows:
            if row["state"] == "absent":  # git runs nothing under this name, chained or not
                row["state"] = "missing"
                row["problem"] = (f"{row['name']} is missing from {folder}: with core.hooksPath "
                                  f"there, no {row['name']} hook runs at all")
    return {
        "scope": "global",
        "hooks_dir": str(folder),
        "core_hooks_path": {"value": current, "scope": "global" if current else None},
        "active": same_path(current, folder),
        "template": {"version": template.version, "sha256": template.sha256},
        "hooks": rows,
        "notes": [*global_notes(git, environ),
                  *repair_notes(rows, "gitaudit hooks install --global")],
    }
