"""The repo watcher: ref changes that no git command accounts for (libgit2, JGit, go-git).

Tools that write a repository without running git run neither hooks nor
trace2, so the only trace they leave is the ref storage itself. The watcher
keeps a snapshot of every watched repository's refs (loose files under
``refs/``, ``packed-refs``, ``HEAD`` and linked worktrees' ``HEAD``; through
``git for-each-ref`` when the repository uses reftable), re-reads a
repository when watchfiles reports a change in it, and holds each difference
for a short window. A change that git itself made shows up meanwhile as a
wrapper, hook or trace2 event in the same repository (the :class:`ActivityLog`
remembers those); it is dropped and counted. The rest become ``ref.update``
events with ``source: watcher``.

Pure parts (tested without watchfiles): :func:`locate`, :func:`read_refs`,
:func:`parse_packed_refs`, :func:`diff_refs`, :func:`settle`,
:class:`ActivityLog`, :func:`build_event`. :class:`Watcher` adds the file
watching and the clock. One place for the dedupe decision: the daemon's intake
and trace2 receiver, and ``gitaudit watch``, only feed and ask the
:class:`ActivityLog`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from gitaudit import catalog
from gitaudit.capture import context, gitstate, record
from gitaudit.errors import GitauditError

SOURCE: Final = "watcher"
OPERATION: Final = "ref.update"
DEFAULT_WINDOW: Final = 1.0
TOLERANCE: Final = 0.5  # seconds either side of a git command's run that still count as its own
MAX_HOLD: Final = 600.0  # longest a change waits for a live git process to end
Span = tuple[float, float, "frozenset[str] | None"]  # start, end, the refs moved (None: any)
REALPATH_CACHE: Final = 4096  # repository paths whose realpath the activity log remembers
INVALID: Final = "\0invalid"  # a ref file whose content is not (yet) a ref: keep the old value
SYMREF_PREFIX: Final = "ref: "
MAIN_HEAD: Final = "HEAD"
# Operations that say "git touched this repository"; reads (status, log, ...) do not.
WRITES_REFS_DESPITE_READ: Final = frozenset({"git.fetch", "git.clone"})
RECURSIVE_DIRS: Final = ("refs", "reftable")
TOP_FILES: Final = frozenset({"HEAD", "packed-refs"})
DEBOUNCE_MS: Final = 50
STEP_MS: Final = 50
RUST_TIMEOUT_MS: Final = 30_000


class WatchError(GitauditError):
    """A path given to the watcher is not a git repository."""


# --- where a repository's refs are ---------------------------------------------------------


class WatchedRepo:
    """One repository (all its worktrees): where its refs live and the paths events name it by."""

    def __init__(self, given: str, layout: gitstate.Layout) -> None:
        self.given = given
        self.layout = layout
        self.common_dir = os.path.realpath(layout.common_dir)
        self.path = os.path.realpath(layout.worktree or layout.git_dir)  # repo.path of events
        self.reftable = os.path.isdir(os.path.join(self.common_dir, "reftable"))
        self.worktrees = linked_worktrees(self.common_dir)  # name -> (git dir, worktree path)
        self.aliases = self._aliases()
        self.gone = False

    def _aliases(self) -> tuple[str, ...]:
        paths = [self.path, os.path.realpath(self.layout.git_dir), self.common_dir]
        main = os.path.dirname(self.common_dir)
        if os.path.basename(self.common_dir) == ".git":
            paths.append(main)
        for git_dir, worktree in self.worktrees.values():
            paths += [git_dir, worktree]
        return tuple(dict.fromkeys(paths))

    def recursive_dirs(self) -> list[str]:
        """Directories watched with their subdirectories (``refs/``, ``reftable/``)."""
        found = [os.path.join(self.common_dir, name) for name in RECURSIVE_DIRS]
        return [folder for folder in found if os.path.isdir(folder)]

    def top_dirs(self) -> list[str]:
        """Git directories watched without subdirectories (for ``HEAD`` and ``packed-refs``)."""
        return [self.common_dir, *(git_dir for git_dir, _ in self.worktrees.values())]

    def path_of(self, ref: str) -> str:
        """``repo.path`` for an event about ``ref`` (a linked worktree's HEAD names that tree)."""
        if ref.startswith("worktrees/") and ref.endswith("/HEAD"):
            name = ref[len("worktrees/") : -len("/HEAD")]
            if name in self.worktrees:
                return self.worktrees[name][1]
        return self.path


def linked_worktrees(common_dir: str) -> dict[str, tuple[str, str]]:
    """Linked worktrees of a repository: name -> (its git dir, its working tree)."""
    found: dict[str, tuple[str, str]] = {}
    base = os.path.join(common_dir, "worktrees")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return found
    for name in names:
        git_dir = os.path.join(base, name)
        pointer = _first_line(os.path.join(git_dir, "gitdir"))
        if pointer:
            worktree = os.path.dirname(os.path.normpath(os.path.join(git_dir, pointer)))
            found[name] = (os.path.realpath(git_dir), os.path.realpath(worktree))
    return found


def locate(path: str) -> WatchedRepo:
    """The repository at ``path`` (a worktree, a bare repository or a git dir).

    Raises :class:`WatchError` when there is none, naming the path.
    """
    folder = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(folder):
        raise WatchError(f"cannot watch {path}: no such directory",
                         "give the path of a git repository (its worktree or bare directory)")
    layout = gitstate.discover(folder, {"GIT_CEILING_DIRECTORIES": os.path.dirname(folder)})
    if layout is None:
        raise WatchError(f"cannot watch {path}: not a git repository",
                         "give the top of a worktree, a bare repository or a .git directory")
    return WatchedRepo(folder, layout)


def locate_all(paths: Iterable[str]) -> list[WatchedRepo]:
    """Every repository named by ``paths``; two worktrees of one repository are one entry."""
    repos: dict[str, WatchedRepo] = {}
    for path in paths:
        found = locate(path)
        repos.setdefault(found.common_dir, found)
    return list(repos.values())


# --- reading refs ---------------------------------------------------------------------------


def _first_line(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read(4096)
    except OSError:
        return None
    return data.split(b"\n", 1)[0].decode("utf-8", "replace").strip()


def _ref_value(line: str | None) -> str | None:
    """The snapshot value of a ref file's first line: an oid, ``ref: <target>`` or INVALID."""
    if line is None:
        return None  # vanished meanwhile
    if gitstate.is_oid(line):
        return line
    if line.startswith("ref:"):
        target = line[len("ref:") :].strip()
        return SYMREF_PREFIX + target if target else INVALID
    return INVALID  # empty (half written by a tool that does not lock) or garbage


def parse_packed_refs(data: bytes) -> dict[str, str]:
    """``packed-refs`` content to ``{ref: oid}`` (comments and peeled ``^`` lines skipped)."""
    found: dict[str, str] = {}
    for raw in data.splitlines():
        if not raw or raw.startswith((b"#", b"^")):
            continue
        oid, _, name = raw.decode("utf-8", "surrogateescape").partition(" ")
        name = name.strip()
        if name.startswith("refs/") and gitstate.is_oid(oid):
            found[name] = oid
    return found


def parse_for_each_ref(data: bytes) -> dict[str, str]:
    """``git for-each-ref --format='%(objectname) %(refname) %(symref)'`` output to a snapshot."""
    found: dict[str, str] = {}
    for raw in data.decode("utf-8", "surrogateescape").splitlines():
        words = raw.split(" ")
        if len(words) >= 2 and words[1]:
            symref = words[2] if len(words) > 2 else ""
            found[words[1]] = SYMREF_PREFIX + symref if symref else words[0]
    return found


def _loose(folder: str, name: str, found: dict[str, str]) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return  # vanished or unreadable: nothing there as far as we can tell
    for entry in entries:
        child = f"{name}/{entry.name}"
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            continue
        if is_dir:
            _loose(entry.path, child, found)
        elif not entry.name.endswith(".lock"):
            value = _ref_value(_first_line(entry.path))
            if value is not None:
                found[child] = value


def read_refs(repo: WatchedRepo, git: str | None = None) -> dict[str, str]:
    """``{ref: value}`` of every ref of ``repo``; values are oids, ``ref: <target>`` or INVALID.

    Plain file reads: ``packed-refs`` first, loose refs under ``refs/`` over
    them, ``HEAD`` and every linked worktree's ``HEAD`` (``worktrees/<name>/HEAD``).
    With reftable, one ``git for-each-ref`` (needs ``git``) plus ``HEAD``.
    """
    if repo.reftable:
        return _read_reftable(repo, git)
    found: dict[str, str] = {}
    try:
        with open(os.path.join(repo.common_dir, "packed-refs"), "rb") as handle:
            found.update(parse_packed_refs(handle.read()))
    except OSError:
        pass  # no packed-refs: every ref is loose
    _loose(os.path.join(repo.common_dir, "refs"), "refs", found)
    _heads(repo, found)
    return found


def _heads(repo: WatchedRepo, found: dict[str, str]) -> None:
    value = _ref_value(_first_line(os.path.join(repo.common_dir, "HEAD")))
    if value is not None:
        found[MAIN_HEAD] = value
    for name, (git_dir, _) in repo.worktrees.items():
        value = _ref_value(_first_line(os.path.join(git_dir, "HEAD")))
        if value is not None:
            found[f"worktrees/{name}/HEAD"] = value


def _read_reftable(repo: WatchedRepo, git: str | None) -> dict[str, str]:
    from gitaudit.capture import gitcmd

    if git is None:
        raise WatchError(f"{repo.given} stores refs in reftable and no git was found",
                         "install git or set GITAUDIT_GIT")
    output = gitcmd.run(git, ["for-each-ref", "--format=%(objectname) %(refname) %(symref)"],
                        git_dir=repo.common_dir, check=False)
    found = parse_for_each_ref(output.stdout)
    head = gitstate.head_via_git(git, repo.layout)
    if head.ref:
        found[MAIN_HEAD] = SYMREF_PREFIX + head.ref
    elif head.oid:
        found[MAIN_HEAD] = head.oid
    return found


# --- what changed ---------------------------------------------------------------------------


def resolve(snapshot: Mapping[str, str], ref: str) -> str | None:
    """The oid a ref points to in a snapshot, following symbolic refs (None if none)."""
    value = snapshot.get(ref)
    for _ in range(5):
        if value is None or value == INVALID:
            return None
        if not value.startswith(SYMREF_PREFIX):
            return value
        value = snapshot.get(value[len(SYMREF_PREFIX) :])
    return None


def _target(value: str | None) -> str | None:
    if value is not None and value.startswith(SYMREF_PREFIX):
        return value[len(SYMREF_PREFIX) :]
    return None


def diff_refs(before: Mapping[str, str], after: Mapping[str, str]) -> list[dict[str, Any]]:
    """The ref changes from ``before`` to ``after`` (pure), sorted by ref name.

    Each: ``{ref, old, new, created, deleted}`` (oids, symbolic refs resolved
    within the same snapshot), plus ``symref_from``/``symref_to`` when a
    symbolic ref (HEAD) changed target or detached. A ref whose file now holds
    no valid value (INVALID) is left out: its old value stands.
    """
    changes: list[dict[str, Any]] = []
    for ref in sorted(set(before) | set(after)):
        old_value, new_value = before.get(ref), after.get(ref)
        if new_value in (INVALID, old_value):
            continue
        if old_value == INVALID:
            old_value = None
        old = resolve(before, ref) if old_value is not None else None
        new = resolve(after, ref) if new_value is not None else None
        change: dict[str, Any] = {
            "ref": ref, "old": old, "new": new,
            "created": old_value is None, "deleted": new_value is None,
        }  # fmt: skip
        if _target(old_value) or _target(new_value):
            change["symref_from"] = _target(old_value)
            change["symref_to"] = _target(new_value)
        changes.append(change)
    return changes


def settle(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, str]:
    """The snapshot to keep after reading ``after``: INVALID entries keep their old value."""
    kept = dict(after)
    for ref, value in after.items():
        if value == INVALID:
            if before.get(ref) not in (None, INVALID):
                kept[ref] = before[ref]
            else:
                del kept[ref]
    return kept


# --- git's own activity ---------------------------------------------------------------------


def epoch_of(value: object) -> float | None:
    """Epoch seconds of an RFC 3339 text (an event's ``occurred_at``), None if unreadable."""
    if isinstance(value, datetime):
        return value.timestamp()
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def may_write_refs(subcommand: str | None) -> bool:
    """False for git subcommands that only read (status, log, ...): they account for nothing."""
    return subcommand not in catalog.READ_SUBCOMMANDS


def counts_as_git(event: Mapping[str, Any]) -> bool:
    """Whether an event shows git itself working on a repository (so its ref changes are git's)."""
    if event.get("source") == SOURCE:
        return False
    operation = str(event.get("operation", ""))
    if operation in WRITES_REFS_DESPITE_READ or operation == OPERATION:
        return True
    if not operation.startswith(("git.", "conflict.")):
        return False
    if event.get("category") == "read":
        return False
    found = event.get("details")
    subcommand = found.get("subcommand") if isinstance(found, dict) else None
    return operation != "git.other" or may_write_refs(subcommand)


def touched_refs(event: Mapping[str, Any]) -> frozenset[str] | None:
    """The refs a git event says its command moved; None when it does not say (any ref).

    Hooks run at one point of a command, so their events carry no run time;
    the ones that know which refs changed name them, so that another tool's
    write a moment before or after a commit is not taken for the commit's:
    ``reference-transaction`` (its refs), ``post-commit`` and ``post-checkout``
    (HEAD and the branch it names, created or moved).
    """
    if event.get("source") != "hook":
        return None
    operation = event.get("operation")
    found = event.get("details")
    found = found if isinstance(found, dict) else {}
    if operation == OPERATION:
        listed = [item.get("ref") for item in found.get("refs") or () if isinstance(item, dict)]
        refs = frozenset(ref for ref in (*listed, found.get("ref")) if isinstance(ref, str))
        return refs or None
    if operation in {"git.commit", "git.checkout"}:
        repo = event.get("repo")
        branch = repo.get("branch") if isinstance(repo, dict) else None
        if not isinstance(branch, str) or branch in {"", "HEAD"}:
            return frozenset({"HEAD"})  # detached: HEAD itself moved
        return frozenset({"HEAD", branch if branch.startswith("refs/") else f"refs/heads/{branch}"})
    return None


def _names(ref: str | None, refs: frozenset[str] | None) -> bool:
    """Whether a span that moved ``refs`` (None: any) explains a change of ``ref``."""
    if refs is None or ref is None or ref in refs:
        return True
    return "HEAD" in refs and ref.endswith("/HEAD")  # a linked worktree's HEAD


class ActivityLog:
    """When git itself worked in which repository: finished commands and live processes.

    ``note`` takes any event (wrapper, hook, trace2); its ``repo.path`` and
    run time (``occurred_at`` to ``+ duration_ms``) become an interval.
    ``begin``/``end`` track git processes known to be running (trace2
    connections). ``accounts_for(paths, when)`` says whether git explains a
    ref change seen at ``when`` (epoch seconds) in one of ``paths``.
    Bounded: ``per_path`` intervals per path, ``max_paths`` paths (least
    recently noted forgotten first), intervals older than ``horizon`` expire.
    """

    def __init__(self, tolerance: float = TOLERANCE, horizon: float = MAX_HOLD + 60.0,
                 per_path: int = 256, max_paths: int = 20_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.tolerance = tolerance
        self.horizon = horizon
        self.per_path = per_path
        self.max_paths = max_paths
        self.clock = clock
        self._spans: OrderedDict[str, deque[Span]] = OrderedDict()
        self._live: dict[object, tuple[str, float]] = {}
        self._real: dict[str, str] = {}  # realpath per path as events spell it (they repeat)
        self.noted = 0

    def _canonical(self, path: str) -> str:
        """``os.path.realpath(path)``, remembered: every event names its repository."""
        real = self._real.get(path)
        if real is None:
            if len(self._real) >= REALPATH_CACHE:
                self._real.clear()  # bounded; a burst of new paths just starts it over
            real = self._real[path] = os.path.realpath(path)
        return real

    def note(self, event: Mapping[str, Any]) -> bool:
        """Remember a git event's run in its repository; False if it says nothing about refs."""
        if not counts_as_git(event):
            return False
        repo = event.get("repo")
        path = repo.get("path") if isinstance(repo, dict) else None
        start = epoch_of(event.get("occurred_at"))
        if not isinstance(path, str) or not path or start is None:
            return False
        duration = event.get("duration_ms")
        seconds = duration / 1000 if isinstance(duration, int | float) and duration > 0 else 0.0
        self.add(path, start, start + seconds, touched_refs(event))
        self.noted += 1
        return True

    def add(self, path: str, start: float, end: float,
            refs: frozenset[str] | None = None) -> None:
        """Remember that git ran in ``path`` from ``start`` to ``end`` (epoch seconds),
        moving ``refs`` (None: it may have moved any)."""
        key = self._canonical(path)
        spans = self._spans.pop(key, None) or deque(maxlen=self.per_path)
        spans.append((start, end, refs))
        self._spans[key] = spans
        while len(self._spans) > self.max_paths:
            self._spans.popitem(last=False)

    def begin(self, key: object, path: str, when: float | None = None) -> None:
        """A git process (``key``) is running in ``path`` since ``when`` (default: now)."""
        self._live[key] = (self._canonical(path), self.clock() if when is None else when)

    def end(self, key: object, when: float | None = None) -> None:
        """The process ended: its run becomes an interval like a finished command's."""
        live = self._live.pop(key, None)
        if live is not None:
            self.add(live[0], live[1], self.clock() if when is None else when)

    def forget(self, key: object) -> None:
        """Drop a live process without an interval (it turned out to be a read-only command)."""
        self._live.pop(key, None)

    def covered(self, paths: Iterable[str], when: float, ref: str | None = None) -> bool:
        """True if a finished git command ran in one of ``paths`` at ``when`` (± tolerance)
        and may have moved ``ref`` (None: any ref)."""
        self._expire()
        tol = self.tolerance
        for path in paths:
            for start, end, refs in self._spans.get(path, ()):
                if start - tol <= when <= end + tol and _names(ref, refs):
                    return True
        return False

    def live(self, paths: Iterable[str], when: float) -> bool:
        """True if a git process that began by ``when`` (± tolerance) still runs in ``paths``."""
        wanted = set(paths)
        return any(path in wanted and start - self.tolerance <= when
                   for path, start in self._live.values())

    def accounts_for(self, paths: Iterable[str], when: float, ref: str | None = None) -> bool:
        """True if git explains a change of ``ref`` at ``when`` in ``paths`` (finished or
        still running)."""
        paths = tuple(paths)
        return self.covered(paths, when, ref) or self.live(paths, when)

    def explains(self, event: Mapping[str, Any]) -> bool:
        """True for a watcher ``ref.update`` event that git's own activity accounts for.

        The intake calls this for events a standalone ``gitaudit watch``
        delivers, whose dedupe could not see the daemon's traffic.
        """
        if event.get("source") != SOURCE or event.get("operation") != OPERATION:
            return False
        found = event.get("details")
        repo = event.get("repo")
        if not isinstance(found, dict):
            return False
        paths = [p for p in found.get("repo_paths") or () if isinstance(p, str)]
        if isinstance(repo, dict) and isinstance(repo.get("path"), str):
            paths.append(repo["path"])
        when = epoch_of(found.get("observed_at")) or epoch_of(event.get("occurred_at"))
        ref = found.get("ref") if isinstance(found.get("ref"), str) else None
        return bool(paths) and when is not None and self.accounts_for(paths, when, ref)

    def _expire(self) -> None:
        oldest = self.clock() - self.horizon
        for key in [key for key, spans in self._spans.items() if spans[-1][1] < oldest]:
            del self._spans[key]

    def stats(self) -> dict[str, int]:
        """Sizes, for diagnostics."""
        return {"paths": len(self._spans), "live": len(self._live), "noted": self.noted}


# --- the event ------------------------------------------------------------------------------


def parse_reflog_line(line: str) -> dict[str, Any] | None:
    """One reflog line (``old new Name <email> time tz\\tmessage``) to a dict (pure)."""
    head, _, message = line.partition("\t")
    words = head.split(" ")
    if len(words) < 4 or not gitstate.is_oid(words[0]) or not gitstate.is_oid(words[1]):
        return None
    identity = " ".join(words[2:])
    name, lt, rest = identity.partition(" <")
    email, gt, stamp = rest.partition("> ")
    if not lt or not gt:
        return None
    parts = stamp.split()
    return {
        "old": None if set(words[0]) == {"0"} else words[0],
        "new": None if set(words[1]) == {"0"} else words[1],
        "name": name, "email": email,
        "time": int(parts[0]) if parts and parts[0].lstrip("-").isdigit() else None,
        "tz": parts[1] if len(parts) > 1 else None,
        "message": message.rstrip("\n"),
    }  # fmt: skip


def _ref_file(repo: WatchedRepo, ref: str, logs: bool = False) -> str:
    base = repo.common_dir
    if ref.startswith("worktrees/") and ref.endswith("/HEAD"):
        name = ref[len("worktrees/") : -len("/HEAD")]
        base = repo.worktrees.get(name, (repo.common_dir, ""))[0]
        ref = "HEAD"
    return os.path.join(base, "logs", ref) if logs else os.path.join(base, ref)


def last_reflog(repo: WatchedRepo, ref: str, new: str | None) -> dict[str, Any] | None:
    """The ref's last reflog entry, if it records this change (``new`` matches)."""
    path = _ref_file(repo, ref, logs=True)
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - 8192))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return None
    lines = [line for line in tail.splitlines() if line.strip()]
    entry = parse_reflog_line(lines[-1]) if lines else None
    if entry is None or entry["new"] != new:
        return None
    return entry


def file_owner(repo: WatchedRepo, ref: str) -> tuple[int | None, str | None]:
    """uid and login of whoever owns the ref's file (or, once deleted, its directory)."""
    path = _ref_file(repo, ref)
    for candidate in (path, os.path.join(repo.common_dir, "packed-refs"), os.path.dirname(path)):
        try:
            uid = os.stat(candidate).st_uid
        except OSError:
            continue
        try:
            return uid, pwd.getpwuid(uid).pw_name
        except KeyError:
            return uid, None
    return None, None


def observed_time(repo: WatchedRepo, change: Mapping[str, Any]) -> float:
    """When the change happened: the ref file's mtime if it still exists, else now."""
    if not change["deleted"]:
        try:
            return os.stat(_ref_file(repo, change["ref"])).st_mtime
        except OSError:
            pass  # packed, or gone again
    return time.time()


def forced(repository: Any, change: Mapping[str, Any]) -> bool | None:
    """True when the new value does not contain the old one (history rewritten); None: n/a."""
    old, new = change.get("old"), change.get("new")
    if not old or not new:
        return None  # created or deleted: nothing to compare
    if old == new:
        return False
    if repository is None:
        return None
    from gitaudit.capture import history

    try:
        ahead = history.is_fast_forward(repository, old, new)
    except Exception:  # noqa: BLE001 - a damaged object store must not stop the record
        return None
    return None if ahead is None else not ahead


def remote_params(repository: Any) -> dict[str, str]:
    """``remote.<name>.url`` of the repository (for ``repo.remote``/``name``)."""
    params: dict[str, str] = {}
    if repository is None:
        return params
    try:
        for remote in repository.remotes:
            if remote.url:
                params[f"remote.{remote.name}.url"] = remote.url
    except Exception:  # noqa: BLE001 - odd config: the event simply has no remote
        return {}
    return params


def open_repository(repo: WatchedRepo) -> Any:
    """A pygit2 repository for ancestry and remotes (None if pygit2 cannot open it)."""
    try:
        from gitaudit.capture import history

        return history.open_repository(repo.common_dir)
    except Exception:  # noqa: BLE001 - pygit2 errors vary; the event is recorded regardless
        return None


def build_event(
    repo: WatchedRepo,
    change: Mapping[str, Any],
    *,
    observed: float,
    before: Mapping[str, str],
    after: Mapping[str, str],
    repository: Any = None,
    host: str | None = None,
) -> dict[str, Any]:
    """The ``ref.update`` event of one unexplained change (same shape as the hook's)."""
    ref = str(change["ref"])
    found: dict[str, Any] = {
        "ref": ref, "old": change["old"], "new": change["new"],
        "created": change["created"], "deleted": change["deleted"],
        "forced": forced(repository, change),
    }  # fmt: skip
    for key in ("symref_from", "symref_to"):
        if key in change:
            found[key] = change[key]
    found["observed_at"] = catalog.now_rfc3339(observed)
    reflog = last_reflog(repo, ref, change["new"]) if not change["deleted"] else None
    if reflog is not None:  # its identity is the actor's (pseudonymized with hash_user_ids)
        found["reflog"] = {k: v for k, v in reflog.items() if k not in {"name", "email"}}
    found["actor_is"] = "file_owner"  # the watcher cannot see which process wrote the ref
    found["repo_paths"] = list(repo.aliases)
    uid, user = file_owner(repo, ref)
    head = "HEAD" if not ref.startswith("worktrees/") else ref
    actor = context.build_actor(
        uid=uid, user=user, host=host or os.uname().nodename,
        git_name=reflog["name"] if reflog else None,
        git_email=reflog["email"] if reflog else None, ci=None,
    )  # fmt: skip
    return {
        "id": catalog.uuid7(),
        "schema_version": catalog.SCHEMA_VERSION,
        "occurred_at": catalog.now_rfc3339(observed),
        "duration_ms": None,
        "operation": OPERATION,
        "category": catalog.category_for(OPERATION, found),
        "outcome": "success",
        "severity": catalog.severity_for(OPERATION, found, "success"),
        "source": SOURCE,
        "correlation_id": catalog.uuid7(),
        "parent_id": None,
        "actor": actor,
        "repo": record.repo_object(
            repo.path_of(ref), remote_params(repository),
            branch=_target(after.get(head)) or _target(before.get(head)),
            head_before=resolve(before, head), head_after=resolve(after, head),
        ),
        "result": {"exit_code": None, "error": None},
        "details": found,
    }


# --- a standalone watcher's view of git activity: the user's spool -----------------------


class SpoolTail:
    """Feeds an :class:`ActivityLog` from spool directories the wrapper and hooks append to.

    Used by ``gitaudit watch`` when no daemon runs: it reads only lines
    appended since it last looked (complete lines; offsets kept per file
    inode, so a segment sealed by renaming is followed), and never writes or
    locks anything. Segments drained or removed meanwhile are simply gone.
    """

    def __init__(self, directories: Iterable[str], activity: ActivityLog) -> None:
        self.directories = list(directories)
        self.activity = activity
        self._offsets: dict[tuple[int, int], int] = {}

    def _files(self) -> list[tuple[tuple[int, int], str, int]]:
        found: list[tuple[tuple[int, int], str, int]] = []
        for folder in self.directories:
            try:
                names = os.listdir(folder)
            except OSError:
                continue  # not created yet, or unreadable
            for name in names:
                if not name.endswith(".jsonl"):
                    continue
                path = os.path.join(folder, name)
                try:
                    info = os.stat(path)
                except OSError:
                    continue
                found.append(((info.st_dev, info.st_ino), path, info.st_size))
        return found

    def prime(self) -> None:
        """Skip what the spool holds already (git activity from before the watcher started)."""
        self._offsets = {key: size for key, _, size in self._files()}

    def poll(self) -> int:
        """Read newly appended complete lines; returns how many events were noted."""
        import json

        noted = 0
        current = self._files()
        offsets: dict[tuple[int, int], int] = {}
        for key, path, size in current:
            offset = self._offsets.get(key, 0)
            if size < offset:
                offset = 0  # a new file on a reused inode
            offsets[key] = offset
            if size == offset:
                continue
            try:
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    data = handle.read(size - offset)
            except OSError:
                continue
            end = data.rfind(b"\n") + 1
            offsets[key] = offset + end
            for line in data[:end].splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and self.activity.note(event):
                    noted += 1
        self._offsets = offsets
        return noted


# --- the watcher ----------------------------------------------------------------------------


class Pending:
    """A change held until the window is over (or the git process in its repository ends)."""

    __slots__ = ("after", "before", "change", "due", "observed", "repo", "since")

    def __init__(self, repo: WatchedRepo, change: dict[str, Any], observed: float,
                 before: dict[str, str], after: dict[str, str], since: float,
                 due: float) -> None:
        self.repo = repo
        self.change = change
        self.observed = observed  # epoch seconds (file mtime or detection)
        self.before = before
        self.after = after
        self.since = since  # monotonic: detected
        self.due = due  # monotonic: decide then


Deliver = Callable[[list[dict[str, Any]]], Awaitable[None]]
Log = Callable[..., None]


def _no_log(_event: str, **_fields: Any) -> None:
    return None


class Watcher:
    """Watches repositories' ref storage and delivers unexplained changes as events.

    ``deliver`` gets lists of events (it must not raise); ``activity`` is
    consulted when a change's window is over; ``refresh`` (optional) runs
    first, so a standalone watcher can read the spool the wrapper just wrote.
    """

    def __init__(
        self,
        repos: Sequence[WatchedRepo],
        deliver: Deliver,
        *,
        activity: ActivityLog | None = None,
        window: float = DEFAULT_WINDOW,
        max_hold: float = MAX_HOLD,
        refresh: Callable[[], object] | None = None,
        git: str | None = None,
        log: Log = _no_log,
    ) -> None:
        self.repos = list(repos)
        self.deliver = deliver
        self.activity = activity or ActivityLog()
        self.window = window
        self.max_hold = max_hold
        self.refresh = refresh
        self.git = git
        self.log = log
        self.snapshots: dict[str, dict[str, str]] = {}
        self.pending: list[Pending] = []
        self.recorded = 0
        self.explained = 0  # changes git's own commands made: dropped
        self._kick = asyncio.Event()
        self.ready = asyncio.Event()  # set once the watches exist (changes from then on are seen)
        self._scan_lock = threading.Lock()  # the two watch tasks rescan in worker threads
        self._host = os.uname().nodename
        self._by_dir: dict[str, tuple[WatchedRepo, bool]] = {}
        for repo in self.repos:
            for folder in repo.recursive_dirs():
                self._by_dir[folder] = (repo, True)
            for folder in repo.top_dirs():
                self._by_dir.setdefault(folder, (repo, False))

    # -- snapshot and changes --

    def start(self) -> None:
        """Take the initial snapshot of every repository (and load pygit2 off the loop)."""
        for repo in self.repos:
            self.snapshots[repo.common_dir] = read_refs(repo, self.git)
        import pygit2  # noqa: F401 - imported once here so that deciding never waits for it

    def repo_for(self, path: str) -> WatchedRepo | None:
        """The watched repository a changed path belongs to (None: not ref storage)."""
        if path.endswith(".lock"):
            return None
        name = os.path.basename(path)
        folder = os.path.dirname(path)
        hit = self._by_dir.get(folder)
        if hit is not None and not hit[1]:
            return hit[0] if name in TOP_FILES else None
        if path in self._by_dir and self._by_dir[path][1]:
            return self._by_dir[path][0]  # refs/ itself (created or removed)
        while folder and folder != "/":
            hit = self._by_dir.get(folder)
            if hit is not None and hit[1]:
                return hit[0]
            folder = os.path.dirname(folder)
        return None

    def changed(self, paths: Iterable[str], now: float | None = None) -> list[Pending]:
        """Re-read the repositories ``paths`` belong to; their changes, to hold (thread-safe)."""
        now = time.monotonic() if now is None else now
        repos = {id(repo): repo for repo in map(self.repo_for, paths) if repo is not None}
        found: list[Pending] = []
        with self._scan_lock:
            for repo in repos.values():
                found += self.rescan(repo, now)
        return found

    def rescan_all(self) -> list[Pending]:
        """Re-read every repository (thread-safe); the changes, to hold."""
        now = time.monotonic()
        with self._scan_lock:
            return [item for repo in self.repos for item in self.rescan(repo, now)]

    def hold(self, items: Sequence[Pending]) -> None:
        """Hold changes until their window is over (event loop side)."""
        if items:
            self.pending.extend(items)
            self._kick.set()

    def rescan(self, repo: WatchedRepo, now: float) -> list[Pending]:
        """Compare one repository's refs with its snapshot; the changes, to hold."""
        if repo.gone:
            return []
        if not os.path.isfile(os.path.join(repo.common_dir, "HEAD")):
            repo.gone = True
            self.log("watched_repo_gone", repo=repo.given)
            return []
        before = self.snapshots.get(repo.common_dir, {})
        try:
            after = read_refs(repo, self.git)
        except GitauditError as exc:
            self.log("watch_read_failed", repo=repo.given, error=exc.message)
            return []
        changes = diff_refs(before, after)
        for ref, value in after.items():
            if value == INVALID and before.get(ref) != INVALID:
                self.log("ref_file_invalid", repo=repo.given, ref=ref)
        settled = settle(before, after)
        self.snapshots[repo.common_dir] = settled
        return [
            Pending(repo, change, observed_time(repo, change), dict(before), settled, now,
                    now + self.window)
            for change in changes
        ]

    # -- deciding --

    def decide(self, now: float | None = None, *, final: bool = False) -> list[dict[str, Any]]:
        """Events for the held changes whose time is up (all of them with ``final``)."""
        now = time.monotonic() if now is None else now
        due = [item for item in self.pending if final or item.due <= now]
        if not due:
            return []
        if self.refresh is not None:
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - a spool read problem must not stop us
                self.log("activity_refresh_failed", error=str(exc))
        events: list[dict[str, Any]] = []
        keep = [item for item in self.pending if item not in due]
        opened: dict[str, Any] = {}
        for item in due:
            paths = item.repo.aliases
            if self.activity.covered(paths, item.observed, item.change.get("ref")):
                self.explained += 1
                continue
            if (not final and self.activity.live(paths, item.observed)
                    and now - item.since < self.max_hold):
                item.due = now + min(self.window, 1.0)
                keep.append(item)
                continue
            if item.repo.common_dir not in opened:
                opened[item.repo.common_dir] = open_repository(item.repo)
            events.append(build_event(
                item.repo, item.change, observed=item.observed, before=item.before,
                after=item.after, repository=opened[item.repo.common_dir], host=self._host,
            ))  # fmt: skip
        self.pending = keep
        self.recorded += len(events)
        return events

    def next_due(self) -> float | None:
        """Monotonic time of the next decision, if anything is held."""
        return min((item.due for item in self.pending), default=None)

    # -- running --

    async def run(self, stop: asyncio.Event) -> None:
        """Snapshot, then watch until ``stop`` is set; held changes are decided before returning."""
        await asyncio.to_thread(self.start)
        recursive = sorted({d for repo in self.repos for d in repo.recursive_dirs()})
        top = sorted({d for repo in self.repos for d in repo.top_dirs() if os.path.isdir(d)})
        tasks = [asyncio.create_task(self._timer(stop))]
        if recursive:
            tasks.append(asyncio.create_task(self._watch(recursive, True, stop)))
        if top:
            tasks.append(asyncio.create_task(self._watch(top, False, stop)))
        for _ in range(3):  # let each awatch register its inotify watches (synchronous in it)
            await asyncio.sleep(0)
        # what changed between the snapshot and the watches
        self.hold(await asyncio.to_thread(self.rescan_all))
        self.ready.set()
        self.log("watching", repositories=len(self.repos), window=self.window,
                 directories=len(recursive) + len(top))
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            events = self.decide(final=True)
            if events:
                await self.deliver(events)

    async def _watch(self, dirs: list[str], recursive: bool, stop: asyncio.Event) -> None:
        from watchfiles import awatch

        async for changes in awatch(
            *dirs, watch_filter=None, debounce=DEBOUNCE_MS, step=STEP_MS, stop_event=stop,
            rust_timeout=RUST_TIMEOUT_MS, recursive=recursive, ignore_permission_denied=True,
        ):  # fmt: skip
            paths = [path for _, path in changes]
            try:
                self.hold(await asyncio.to_thread(self.changed, paths))
            except Exception as exc:  # noqa: BLE001 - one odd repository must not stop the rest
                self.log("watch_rescan_failed", error=repr(exc))

    async def _timer(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            when = self.next_due()
            timeout = None if when is None else max(0.0, when - time.monotonic())
            self._kick.clear()
            with contextlib.suppress(TimeoutError):  # timed out: something is due
                await asyncio.wait_for(self._kick.wait(), timeout)
            events = self.decide()  # on the loop: the activity log is fed there too
            if events:
                await self.deliver(events)
