"""The one helper through which gitaudit runs git for its own queries.

Every query gitaudit makes of a repository that it cannot answer by reading
files (an alias, a revision expression, the identity when trace2 is not ours)
goes through :func:`run`. It:

- runs the *real* git found by the wrapper (never a shim: no recursion, no
  audit record of our own queries),
- drops inherited ``GIT_*`` variables that would point git somewhere else
  (``GIT_DIR``, ``GIT_WORK_TREE``, ``GIT_INDEX_FILE``, traces, ...) and keeps
  the ones that only configure it (config, identity, ssh, TLS); a repository
  is named deliberately with ``git_dir=`` / ``cwd=`` instead,
- never prompts (``GIT_TERMINAL_PROMPT=0``) and never takes optional locks
  (``GIT_OPTIONAL_LOCKS=0``), so it cannot disturb the user's own git,
- turns trace2 off (``GIT_TRACE2_EVENT=0``), so a ``trace2.eventTarget`` in the
  system or global config (``gitaudit trace2 enable``) never records it,
- raises :class:`GitCommandError` showing the command, stdout and stderr.

It spawns with :func:`os.posix_spawn` and collects output in anonymous
memory files, so it needs neither :mod:`subprocess` (5-10 ms to import) nor
threads. :func:`anonymous_fd` is also how the wrapper makes its trace2 file.
"""

from __future__ import annotations

import fcntl
import os

from gitaudit.errors import GitauditError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms to import; annotations are strings at runtime
    import signal as _signal
    from collections.abc import Mapping, Sequence
else:
    # The C half of `signal`: the same numbers and functions without the three enums
    # that `import signal` builds (~1 ms, plus `enum`), unneeded on the wrapper's hot path.
    import _signal

# GIT_* variables that configure git without redirecting it to another repository.
_KEEP_GIT_VARS = frozenset(
    {
        "GIT_EXEC_PATH",
        "GIT_CONFIG_NOSYSTEM",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_SYSTEM",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_ASKPASS",
        "GIT_ALLOW_PROTOCOL",
        "GIT_PROTOCOL_FROM_USER",
        "GIT_HTTP_PROXY_AUTHMETHOD",
        "GIT_HTTP_USER_AGENT",
        "GIT_DEFAULT_HASH",
    }
)
_KEEP_GIT_PREFIXES = (
    "GIT_CONFIG_KEY_",
    "GIT_CONFIG_VALUE_",
    "GIT_AUTHOR_",
    "GIT_COMMITTER_",
    "GIT_SSH",
    "GIT_SSL_",
)

# Signals Python changes at startup (SIGPIPE ignored) that a child must get back
# at their defaults, as subprocess's restore_signals does.
RESET_SIGNALS = frozenset(
    sig
    for sig in (getattr(_signal, "SIGPIPE", None), getattr(_signal, "SIGXFSZ", None))
    if sig is not None
)

_FIRST_FREE_FD = 3


class GitOutput:
    """What one git query returned."""

    __slots__ = ("returncode", "stderr", "stdout")

    def __init__(self, returncode: int, stdout: bytes, stderr: bytes) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class GitCommandError(GitauditError):
    """A git query failed; the message shows the command, exit code, stdout and stderr."""

    def __init__(self, command: Sequence[str], output: GitOutput) -> None:
        shown = " ".join(command)
        out = output.stdout.decode("utf-8", "replace").strip() or "(empty)"
        err = output.stderr.decode("utf-8", "replace").strip() or "(empty)"
        super().__init__(
            f"command failed with exit code {output.returncode}: {shown}\n"
            f"  stdout: {out}\n  stderr: {err}",
            "check that the repository is readable and git works outside gitaudit",
        )
        self.command = list(command)
        self.output = output


def clean_env(
    environ: Mapping[str, str], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A copy of ``environ`` without the ``GIT_*`` variables that would redirect git.

    ``extra`` is applied last: that is how a caller passes ``GIT_DIR`` deliberately.
    """
    env = {
        key: value
        for key, value in environ.items()
        if not key.startswith("GIT_")
        or key in _KEEP_GIT_VARS
        or key.startswith(_KEEP_GIT_PREFIXES)
    }
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_OPTIONAL_LOCKS"] = "0"
    env["GIT_TRACE2_EVENT"] = "0"  # our own queries never reach a trace2.eventTarget (daemon)
    if extra:
        env.update(extra)
    return env


def anonymous_fd(name: str, *, inheritable: bool = False) -> int:
    """An open, unnamed, readable and writable file (memfd, else O_TMPFILE, else unlinked).

    The descriptor is never 0, 1 or 2 (so it cannot stand in for a closed
    standard stream) and is close-on-exec unless ``inheritable``. Nobody else
    can open it: it has no name in any directory. A memfd allows sealing
    (see :func:`retire_fd`).
    """
    fd = _raw_anonymous_fd(name)
    if fd < _FIRST_FREE_FD:
        moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _FIRST_FREE_FD)
        os.close(fd)
        fd = moved
    os.set_inheritable(fd, inheritable)
    return fd


def _raw_anonymous_fd(name: str) -> int:
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        try:
            fd: int = memfd_create(name, os.MFD_CLOEXEC | getattr(os, "MFD_ALLOW_SEALING", 0))
        except OSError:
            pass  # seccomp or an old kernel refuses memfd: try a temp file below
        else:
            return fd
    folder = os.environ.get("TMPDIR") or "/tmp"  # noqa: S108 - unnamed file, mode 0600
    o_tmpfile = getattr(os, "O_TMPFILE", 0)
    if o_tmpfile:
        try:
            return os.open(folder, o_tmpfile | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except OSError:
            pass  # file system without O_TMPFILE support: create and unlink below
    path = os.path.join(folder, f".{name}-{os.getpid()}-{os.urandom(8).hex()}")
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    os.unlink(path)
    return fd


def read_fd(fd: int, limit: int = 64 * 1024 * 1024) -> bytes:
    """Everything written to ``fd`` so far (up to ``limit`` bytes), without moving its offset."""
    size = min(os.fstat(fd).st_size, limit)
    chunks: list[bytes] = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def retire_fd(fd: int) -> None:
    """Empty a trace file and close it; a memfd is also sealed against any further write.

    Processes git started in the background (a credential cache, fsmonitor)
    inherit the trace descriptor and may outlive the command; once sealed,
    their writes fail and git's trace2 quietly turns that target off, so the
    file cannot grow in memory for the life of such a daemon.
    """
    try:
        os.ftruncate(fd, 0)
        seals = getattr(fcntl, "F_SEAL_WRITE", 0) | getattr(fcntl, "F_SEAL_GROW", 0)
        add_seals = getattr(fcntl, "F_ADD_SEALS", None)
        if add_seals is not None and seals:
            fcntl.fcntl(fd, add_seals, seals)
    except OSError:
        pass  # not a memfd (or sealing not allowed): emptied at least, or left as it is
    finally:
        os.close(fd)


def run(
    git: str,
    args: Sequence[str],
    *,
    cwd: str | None = None,
    git_dir: str | None = None,
    environ: Mapping[str, str] | None = None,
    check: bool = True,
) -> GitOutput:
    """Run ``git args`` quietly and return its output.

    ``git`` is the absolute path of the real git. ``cwd`` is passed as ``-C``;
    ``git_dir`` as ``GIT_DIR``. Raises :class:`GitCommandError` on a non-zero
    exit when ``check`` is true, or when git cannot be started at all.
    """
    return start(git, args, cwd=cwd, git_dir=git_dir, environ=environ).wait(check=check)


class Running:
    """A git query started by :func:`start`; :meth:`wait` collects it like :func:`run`."""

    __slots__ = ("command", "err_fd", "out_fd", "pid")

    def __init__(self, command: list[str], pid: int, out_fd: int, err_fd: int) -> None:
        self.command = command
        self.pid = pid
        self.out_fd = out_fd
        self.err_fd = err_fd

    def wait(self, *, check: bool = True) -> GitOutput:
        """Wait for git and return its output; raises :class:`GitCommandError` as :func:`run`."""
        try:
            _, status = os.waitpid(self.pid, 0)
            output = GitOutput(
                os.waitstatus_to_exitcode(status), read_fd(self.out_fd), read_fd(self.err_fd)
            )
        finally:
            os.close(self.out_fd)
            os.close(self.err_fd)
        if check and output.returncode != 0:
            raise GitCommandError(self.command, output)
        return output


def start(
    git: str,
    args: Sequence[str],
    *,
    cwd: str | None = None,
    git_dir: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Running:
    """Start ``git args`` as :func:`run` would, without waiting: several queries overlap.

    The hook handlers start the few queries they need at once and collect them
    after their own imports, so git's work runs on another core meanwhile.
    Every started query must be collected with :meth:`Running.wait`.
    """
    command = [git]
    if cwd:
        command += ["-C", cwd]
    command += list(args)
    extra = {"GIT_DIR": git_dir} if git_dir else None
    env = clean_env(os.environ if environ is None else environ, extra)
    out_fd = anonymous_fd("gitaudit-out")
    err_fd = anonymous_fd("gitaudit-err")
    try:
        pid = os.posix_spawn(
            git,
            command,
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, out_fd, 1),
                (os.POSIX_SPAWN_DUP2, err_fd, 2),
            ],
            setsigdef=RESET_SIGNALS,
        )
    except OSError as exc:
        os.close(out_fd)
        os.close(err_fd)
        raise GitCommandError(command, GitOutput(127, b"", str(exc).encode())) from exc
    return Running(command, pid, out_fd, err_fd)
