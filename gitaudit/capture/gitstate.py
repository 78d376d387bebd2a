"""Cheap reads of repository state from the files git keeps (no git process, no pygit2).

The wrapper calls these before and after every git command, so they read
only what they need: discovery walks up from the working directory like git
does (honouring ``-C``, ``--git-dir``, ``--work-tree``, ``GIT_DIR``,
``GIT_WORK_TREE``, ``GIT_COMMON_DIR``, ``GIT_CEILING_DIRECTORIES``, ``.git``
files of linked worktrees and submodules, and ``commondir``); refs resolve
through loose ref files, then ``packed-refs``. Layouts these readers do not
understand (reftable) raise :class:`UnusualLayout`; the caller then asks git
once through :mod:`gitaudit.capture.gitcmd` (see :func:`head_via_git`).
"""

from __future__ import annotations

import os

from gitaudit.capture import gitcmd

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms to import; annotations are strings at runtime
    from collections.abc import Container, Mapping, Sequence

_HEX = frozenset("0123456789abcdef")
_PER_WORKTREE_PREFIXES = ("refs/bisect/", "refs/worktree/", "refs/rewritten/")
_REFTABLE_HEAD = "refs/heads/.invalid"
_MAX_SYMREF_DEPTH = 5


class UnusualLayout(Exception):  # noqa: N818 - a signal to fall back, not an operator error
    """The repository stores refs in a way these cheap readers do not handle."""


class _Record:
    """A small value object: equality, hash and repr from its ``__slots__``, in order.

    What :class:`typing.NamedTuple` would give, without importing :mod:`typing`
    (~10 ms) or building a class per tuple type at import time.
    """

    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class Layout(_Record):
    """Where a repository's files are."""

    __slots__ = ("common_dir", "git_dir", "worktree")

    def __init__(self, git_dir: str, common_dir: str, worktree: str | None) -> None:
        self.git_dir = git_dir  # per-worktree git directory (HEAD, index, rebase state)
        self.common_dir = common_dir  # shared directory (refs, objects, config)
        self.worktree = worktree  # top-level of the working tree; None for a bare repository


class Head(_Record):
    """What HEAD points at."""

    __slots__ = ("oid", "ref")

    def __init__(self, ref: str | None, oid: str | None) -> None:
        self.ref = ref  # e.g. "refs/heads/main"; None when detached
        self.oid = oid  # None on an unborn branch


class RebaseState(_Record):
    """A rebase in progress, read from ``rebase-merge/`` or ``rebase-apply/``."""

    __slots__ = ("backend", "head_name", "onto", "orig_head", "rewritten")

    def __init__(self, backend: str, head_name: str | None, onto: str | None,
                 orig_head: str | None, rewritten: list[tuple[str, str]]) -> None:
        self.backend = backend  # "merge" or "apply"
        self.head_name = head_name  # the branch being rebased; None when detached
        self.onto = onto
        self.orig_head = orig_head
        self.rewritten = rewritten  # (old, new) pairs git recorded so far

    def _replace(self, **changes: object) -> RebaseState:
        """A copy with some fields changed (as :meth:`typing.NamedTuple._replace`)."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return RebaseState(**values)


def is_oid(text: str | None) -> bool:
    """True for a full hexadecimal object id (SHA-1 or SHA-256)."""
    return text is not None and len(text) in (40, 64) and set(text) <= _HEX


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
        return None


def _first_line(path: str) -> str | None:
    text = _read_text(path)
    if text is None:
        return None
    return text.split("\n", 1)[0].strip()


def _gitfile_target(path: str) -> str | None:
    """The directory a ``.git`` file (``gitdir: <path>``) points to."""
    line = _first_line(path)
    if not line or not line.startswith("gitdir:"):
        return None
    target = line[len("gitdir:") :].strip()
    return os.path.normpath(os.path.join(os.path.dirname(path), target))


def _is_git_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "HEAD")) and (
        os.path.isdir(os.path.join(path, "objects"))
        or os.path.isfile(os.path.join(path, "commondir"))
    )


def _common_dir(git_dir: str, environ: Mapping[str, str]) -> str:
    explicit = environ.get("GIT_COMMON_DIR")
    if explicit:
        return os.path.abspath(explicit)
    pointer = _first_line(os.path.join(git_dir, "commondir"))
    if pointer:
        return os.path.normpath(os.path.join(git_dir, pointer))
    return git_dir


def read_core_config(common_dir: str) -> dict[str, str]:
    """``core.bare``, ``core.worktree`` and ``extensions.*`` from the repository config file.

    A deliberately small reader (no includes, no multi-line values): it is only
    used when ``GIT_DIR`` is set explicitly and for the ref storage check.
    """
    text = _read_text(os.path.join(common_dir, "config")) or ""
    section = ""
    found: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line[1:].split("]", 1)[0].strip().lower()
            continue
        key, eq, value = line.partition("=")
        if section in {"core", "extensions"}:
            value = value.split(" #", 1)[0].split(" ;", 1)[0].strip().strip('"')
            found[f"{section}.{key.strip().lower()}"] = value if eq else "true"
    return found


def _explicit_layout(start: str, git_dir: str, work_tree: str | None,
                     environ: Mapping[str, str]) -> Layout | None:
    path = os.path.normpath(os.path.join(start, git_dir))
    if os.path.isfile(path):
        path = _gitfile_target(path) or path
    if not _is_git_dir(path):
        return None
    common = _common_dir(path, environ)
    if work_tree:
        return Layout(path, common, os.path.normpath(os.path.join(start, work_tree)))
    core = read_core_config(common)
    if core.get("core.worktree"):
        return Layout(path, common, os.path.normpath(os.path.join(path, core["core.worktree"])))
    if core.get("core.bare", "false").lower() in {"true", "yes", "on", "1"}:
        return Layout(path, common, None)
    return Layout(path, common, start)


def _ceilings(environ: Mapping[str, str]) -> set[str]:
    raw = environ.get("GIT_CEILING_DIRECTORIES", "")
    return {os.path.normpath(item) for item in raw.split(":") if os.path.isabs(item)}


def _walk_up(start: str, environ: Mapping[str, str]) -> Layout | None:
    ceilings = _ceilings(environ)
    here = start
    while True:
        dotgit = os.path.join(here, ".git")
        if os.path.isdir(dotgit) and _is_git_dir(dotgit):
            return Layout(dotgit, _common_dir(dotgit, environ), here)
        if os.path.isfile(dotgit):
            target = _gitfile_target(dotgit)
            if target and _is_git_dir(target):
                return Layout(target, _common_dir(target, environ), here)
        if _is_git_dir(here):
            return Layout(here, _common_dir(here, environ), None)
        parent = os.path.dirname(here)
        if parent == here or parent in ceilings:
            return None
        here = parent


def start_dir(cwd: str, chdirs: Sequence[str]) -> str:
    """The directory git starts in after applying ``-C`` options in order."""
    here = cwd
    for step in chdirs:
        if step:
            here = os.path.normpath(os.path.join(here, step))
    return here


def discover(
    start: str,
    environ: Mapping[str, str],
    git_dir: str | None = None,
    work_tree: str | None = None,
) -> Layout | None:
    """Find the repository git would use from ``start`` (an absolute directory), or None."""
    git_dir = git_dir or environ.get("GIT_DIR") or None
    work_tree = work_tree or environ.get("GIT_WORK_TREE") or None
    if git_dir:
        return _explicit_layout(start, git_dir, work_tree, environ)
    found = _walk_up(os.path.normpath(start), environ)
    if found is not None and work_tree:
        found = Layout(found.git_dir, found.common_dir,
                       os.path.normpath(os.path.join(start, work_tree)))
    return found


def _ref_path(layout: Layout, name: str) -> str:
    if not name.startswith("refs/") or name.startswith(_PER_WORKTREE_PREFIXES):
        return os.path.join(layout.git_dir, name)
    return os.path.join(layout.common_dir, name)


def _packed_lookup(data: bytes, name: str) -> str | None:
    """The oid of ``name`` in packed-refs content (a byte search, not a full parse)."""
    needle = b" " + name.encode("utf-8", "surrogateescape") + b"\n"
    index = data.find(needle)
    while index != -1:
        line_start = data.rfind(b"\n", 0, index) + 1
        oid = data[line_start:index].decode("ascii", "replace")
        if is_oid(oid):
            return oid
        index = data.find(needle, index + 1)
    return None


class RefReader:
    """Resolves refs of one repository from loose files and ``packed-refs`` (read once)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._packed: bytes | None = None

    def packed(self) -> bytes:
        """Raw ``packed-refs`` content (empty if there is none)."""
        if self._packed is None:
            try:
                with open(os.path.join(self.layout.common_dir, "packed-refs"), "rb") as handle:
                    self._packed = handle.read()
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                self._packed = b""
        return self._packed

    def resolve(self, name: str) -> tuple[str, str | None]:
        """(final ref name, oid) following symbolic refs; oid None if the ref does not exist."""
        for _ in range(_MAX_SYMREF_DEPTH):
            line = _first_line(_ref_path(self.layout, name))
            if line is not None and line.startswith("ref:"):
                target = line[len("ref:") :].strip()
                if target == _REFTABLE_HEAD:
                    raise UnusualLayout("reftable ref storage")
                name = target
                continue
            if line is not None and is_oid(line):
                return name, line
            if name.startswith("refs/"):
                return name, _packed_lookup(self.packed(), name)
            return name, None
        raise UnusualLayout(f"symbolic ref chain too deep at {name}")

    def oid(self, name: str) -> str | None:
        """The oid a ref (or pseudo-ref such as ``ORIG_HEAD``) points to, if it exists."""
        return self.resolve(name)[1]

    def head(self) -> Head:
        """HEAD: its branch (None when detached) and commit (None when unborn)."""
        line = _first_line(os.path.join(self.layout.git_dir, "HEAD"))
        if line is None:
            raise UnusualLayout("HEAD is missing")
        if line.startswith("ref:"):
            ref, oid = self.resolve("HEAD")
            return Head(ref, oid)
        if is_oid(line):
            return Head(None, line)
        raise UnusualLayout(f"HEAD has unexpected content {line[:40]!r}")

    def refs(self, prefix: str) -> dict[str, str]:
        """Every ref under ``prefix`` (``refs/remotes/``) with its oid; symbolic refs skipped."""
        found: dict[str, str] = {}
        for raw in self.packed().splitlines():
            if raw.startswith((b"#", b"^")):
                continue
            oid, _, name = raw.decode("utf-8", "surrogateescape").partition(" ")
            if name.startswith(prefix) and is_oid(oid):
                found[name] = oid
        base = _ref_path(self.layout, prefix.rstrip("/"))
        for path, name in _loose_files(base, prefix.rstrip("/")):
            line = _first_line(path)
            if line is not None and is_oid(line):
                found[name] = line
        return found


def _loose_files(folder: str, name: str) -> list[tuple[str, str]]:
    """(path, ref name) of loose ref files under ``folder``, recursively."""
    found: list[tuple[str, str]] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return found
    for entry in entries:
        child = f"{name}/{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            found.extend(_loose_files(entry.path, child))
        elif not entry.name.endswith(".lock"):
            found.append((entry.path, child))
    return found


def read_rebase_state(layout: Layout) -> RebaseState | None:
    """The rebase in progress in this worktree, if any (``git am`` sessions are not rebases)."""
    for backend, folder in (("merge", "rebase-merge"), ("apply", "rebase-apply")):
        base = os.path.join(layout.git_dir, folder)
        if not os.path.isdir(base):
            continue
        if backend == "apply" and os.path.exists(os.path.join(base, "applying")):
            return None
        head_name = _first_line(os.path.join(base, "head-name"))
        return RebaseState(
            backend=backend,
            head_name=head_name if head_name and head_name.startswith("refs/") else None,
            onto=_first_line(os.path.join(base, "onto")) or None,
            orig_head=_first_line(os.path.join(base, "orig-head")) or None,
            rewritten=_rewritten_list(os.path.join(base, "rewritten-list")),
        )
    return None


def _rewritten_list(path: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for line in (_read_text(path) or "").splitlines():
        words = line.split()
        if len(words) >= 2 and is_oid(words[0]) and is_oid(words[1]):
            pairs.append((words[0], words[1]))
    return pairs


_SEQUENCER_FILES = (
    ("merge", "MERGE_HEAD"),
    ("cherry-pick", "CHERRY_PICK_HEAD"),
    ("revert", "REVERT_HEAD"),
    ("rebase", "rebase-merge"),
    ("rebase", "rebase-apply"),
)


def operations_in_progress(layout: Layout) -> list[str]:
    """Which multi-step operations have stopped in this worktree (merge, rebase, ...)."""
    found: list[str] = []
    for name, marker in _SEQUENCER_FILES:
        if name not in found and os.path.exists(os.path.join(layout.git_dir, marker)):
            found.append(name)
    return found


# The commit a stopped operation was applying, rebase first (a rebase may merge).
_STOP_MARKERS = (
    ("rebase", "REBASE_HEAD"),
    ("cherry-pick", "CHERRY_PICK_HEAD"),
    ("revert", "REVERT_HEAD"),
    ("merge", "MERGE_HEAD"),
)


def rebasing(layout: Layout) -> bool:
    """True while a rebase is in progress (``rebase-merge/`` or ``rebase-apply/`` is there)."""
    return any(os.path.isdir(os.path.join(layout.git_dir, folder))
               for folder in ("rebase-merge", "rebase-apply"))


def current_stop(layout: Layout, ended: Container[tuple[str, str, int]] = ()
                 ) -> tuple[str, str, int] | None:
    """(operation, commit it was applying, marker mtime in ns) while one is stopped; else None.

    A few ``stat`` calls: cheap enough for every hook. The marker's mtime is
    when git stopped (it writes the file then and leaves it alone). While a
    rebase is in progress only ``REBASE_HEAD`` counts: its sequencer leaves a
    ``CHERRY_PICK_HEAD`` behind for a moment at each step it commits. Without
    a rebase in progress ``REBASE_HEAD`` does not count: git 2.39 leaves it
    behind when ``rebase --continue`` finishes on the step that stopped, and
    after ``rebase --quit``. A marker in ``ended`` (stops whose conflict has
    ended, :func:`ended_stops`) was left behind: it is passed over.
    """
    markers = _STOP_MARKERS[:1] if rebasing(layout) else _STOP_MARKERS[1:]
    for name, marker in markers:
        path = os.path.join(layout.git_dir, marker)
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            continue
        oid = _first_line(path)
        if is_oid(oid) and (name, str(oid), mtime) not in ended:
            return name, str(oid), mtime
    return None


def fetch_head_branches(layout: Layout) -> list[str]:
    """Branch names ``FETCH_HEAD`` marks for merging (what a pull integrates)."""
    names: list[str] = []
    for line in (_read_text(os.path.join(layout.git_dir, "FETCH_HEAD")) or "").splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or parts[1] == "not-for-merge":
            continue
        description = parts[2]
        if description.startswith("branch '") and "' of " in description:
            names.append(description[len("branch '") : description.index("' of ")])
    return names


def head_via_git(git: str, layout: Layout, environ: Mapping[str, str] | None = None) -> Head:
    """HEAD asked of git itself, for layouts the file readers do not handle."""
    env_dir = layout.git_dir
    symbolic = gitcmd.run(git, ["symbolic-ref", "-q", "HEAD"], git_dir=env_dir,
                          environ=environ, check=False)
    oid = gitcmd.run(git, ["rev-parse", "-q", "--verify", "HEAD"], git_dir=env_dir,
                     environ=environ, check=False)
    ref = symbolic.stdout.decode().strip() if symbolic.returncode == 0 else None
    commit = oid.stdout.decode().strip() if oid.returncode == 0 else None
    return Head(ref or None, commit or None)


def read_head(layout: Layout, git: str | None = None,
              environ: Mapping[str, str] | None = None) -> Head:
    """HEAD from files, falling back to one git query (when ``git`` is given) for odd layouts."""
    try:
        return RefReader(layout).head()
    except UnusualLayout:
        if git is None:
            raise
        return head_via_git(git, layout, environ)


def config_params(git: str, layout: Layout | None, cwd: str,
                  environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``user.name``, ``user.email`` and ``remote.*.url`` in one git call (no trace2 case)."""
    pattern = r"^(user\.(name|email)|remote\..*\.url)$"
    output = gitcmd.run(
        git,
        ["config", "-z", "--get-regexp", pattern],
        cwd=None if layout else cwd,
        git_dir=layout.git_dir if layout else None,
        environ=environ,
        check=False,
    )
    return parse_config_z(output.stdout)


def parse_config_z(data: bytes) -> dict[str, str]:
    """Parse ``git config -z --get-regexp`` output (``key\\nvalue\\0``...); the last value wins."""
    found: dict[str, str] = {}
    for record in data.split(b"\0"):
        if not record:
            continue
        key, _, value = record.decode("utf-8", "surrogateescape").partition("\n")
        found[key] = value
    return found


def rev_parse(git: str, layout: Layout, expression: str,
              environ: Mapping[str, str] | None = None) -> str | None:
    """The commit an expression names (``main``, ``HEAD~2``, ``origin/x``), asked of git."""
    output = gitcmd.run(
        git,
        ["rev-parse", "-q", "--verify", "--end-of-options", f"{expression}^{{commit}}"],
        git_dir=layout.git_dir,
        environ=environ,
        check=False,
    )
    text = output.stdout.decode("ascii", "replace").strip()
    return text if output.returncode == 0 and is_oid(text) else None


def write_private(path: str, data: bytes) -> None:
    """Replace ``path`` atomically with ``data`` (file mode 0600, directory 0700)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(temporary, path)


# --- gitaudit's note about a stopped rebase ----------------------------------------------
#
# git does not store a rebase's upstream, and deletes rebase-merge/ when the
# rebase ends. So when a wrapped rebase (or pull --rebase) stops, the wrapper
# keeps {upstream, onto, orig_head} in its own state directory, keyed by the
# worktree's git dir; `rebase --continue` reads it back if orig_head matches.


def _note_path(layout: Layout) -> str:
    import hashlib

    from gitaudit import paths

    key = hashlib.sha256(os.path.realpath(layout.git_dir).encode()).hexdigest()[:32]
    return os.path.join(str(paths.state_home()), "gitaudit", "rebase-notes", f"{key}.json")


def load_rebase_note(layout: Layout, state: RebaseState) -> dict[str, str | None] | None:
    """The note saved when this rebase stopped, if it belongs to the same rebase."""
    import json

    text = _read_text(_note_path(layout))
    if text is None:
        return None
    try:
        note = json.loads(text)
    except ValueError:
        return None
    if not isinstance(note, dict) or note.get("orig_head") != state.orig_head:
        return None
    return {key: value for key, value in note.items() if isinstance(value, str) or value is None}


def save_rebase_note(layout: Layout, state: RebaseState, data: Mapping[str, str | None]) -> None:
    """Remember ``data`` (upstream, onto) for the rebase in progress (file mode 0600)."""
    import json

    payload = json.dumps({**data, "orig_head": state.orig_head}).encode()
    write_private(_note_path(layout), payload)


def clear_rebase_note(layout: Layout) -> None:
    """Forget the note once no rebase is in progress."""
    try:  # noqa: SIM105 - contextlib costs ~3 ms to import, more than this whole call
        os.unlink(_note_path(layout))
    except FileNotFoundError:
        pass  # nothing saved: the common case


# --- the state of a conflict the user is resolving --------------------------------------
#
# When a wrapped command stops on conflicts, the wrapper saves what the
# conflict looked like (the detected event id, when, and each file's index
# stage blobs) so that the command that concludes it can tell how each file
# was resolved. The file is keyed by the worktree's git dir; the wrapper only
# stats it on conclude-type commands, so the key must be cheap: FNV-1a (no
# hashlib, whose OpenSSL import costs ~30 ms).


def _fnv1a64(data: bytes) -> str:
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def conflict_state_path(layout: Layout) -> str:
    """``$XDG_STATE_HOME/gitaudit/conflicts/<hash of the git dir>.json``."""
    from gitaudit import paths

    key = _fnv1a64(os.path.realpath(layout.git_dir).encode())
    return os.path.join(paths.state_home(), "gitaudit", "conflicts", f"{key}.json")


def load_conflict_state(path: str) -> dict[str, object] | None:
    """The saved conflict state at ``path`` (None if missing or unreadable)."""
    import json

    text = _read_text(path)
    if text is None:
        return None
    try:
        state = json.loads(text)
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


def save_conflict_state(layout: Layout, state: Mapping[str, object]) -> str:
    """Write the conflict state (file mode 0600, replaced atomically); returns its path."""
    import json

    path = conflict_state_path(layout)
    write_private(path, json.dumps(state).encode())
    return path


def clear_conflict_state(path: str) -> None:
    """Forget a saved conflict (unreadable, or ended where nobody could record how)."""
    try:  # noqa: SIM105 - contextlib costs ~3 ms to import
        os.unlink(path)
    except FileNotFoundError:
        pass  # already gone


# A conflict that has ended is kept in a short list next to the state file
# (``<hash>.ended``, one ``operation oid mtime_ns`` line per stop, newest last):
# a marker git leaves behind after the stop ended (or one we do not know to be
# stale) is then never taken for a stop again, so a conflict ends exactly once.
MAX_ENDED = 16


def _ended_path(state_path: str) -> str:
    return f"{state_path.removesuffix('.json')}.ended"


def ended_stops(layout: Layout) -> set[tuple[str, str, int]]:
    """The stops of this worktree whose conflict has ended (see :func:`end_conflict_state`)."""
    return _read_ended(_ended_path(conflict_state_path(layout)))


def _read_ended(path: str) -> set[tuple[str, str, int]]:
    found: set[tuple[str, str, int]] = set()
    for line in (_read_text(path) or "").splitlines():
        words = line.split()
        if len(words) == 3 and is_oid(words[1]) and words[2].isdigit():
            found.add((words[0], words[1], int(words[2])))
    return found


def stop_key(stop: object) -> tuple[str, str, int] | None:
    """A stop as :func:`current_stop` gives it, from its JSON form in a saved state."""
    if not isinstance(stop, list | tuple) or len(stop) != 3:
        return None
    name, oid, mtime = stop
    if not isinstance(name, str) or not isinstance(oid, str) or not is_oid(oid) or (
        type(mtime) is not int
    ):
        return None
    return name, oid, mtime


def end_conflict_state(path: str, state: Mapping[str, object]) -> None:
    """Forget a conflict whose ending was recorded, and remember that its stop has ended."""
    key = stop_key(state.get("stop"))
    if key is not None:
        ended = _ended_path(path)
        lines = [line for line in (_read_text(ended) or "").splitlines() if line.strip()]
        lines = [*lines, " ".join(str(part) for part in key)][-MAX_ENDED:]
        write_private(ended, ("\n".join(lines) + "\n").encode())
    clear_conflict_state(path)


def user_config_files(environ: Mapping[str, str]) -> list[str]:
    """The system and global git config files git reads, lowest precedence first.

    Honours ``GIT_CONFIG_NOSYSTEM``, ``GIT_CONFIG_SYSTEM``, ``GIT_CONFIG_GLOBAL``,
    ``XDG_CONFIG_HOME`` and ``HOME`` as git does.
    """
    files: list[str] = []
    if not environ.get("GIT_CONFIG_NOSYSTEM"):
        files.append(environ.get("GIT_CONFIG_SYSTEM") or "/etc/gitconfig")
    if environ.get("GIT_CONFIG_GLOBAL"):
        files.append(environ["GIT_CONFIG_GLOBAL"])
    else:
        home = environ.get("HOME", "")
        xdg = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
        files += [os.path.join(xdg, "git", "config"), os.path.join(home, ".gitconfig")]
    return files
