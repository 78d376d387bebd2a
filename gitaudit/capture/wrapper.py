"""``gitaudit git ARGS...``: run the real git unchanged and record one event per command.

Three phases:

1. **Before git** (best effort, never fatal): settings, the real git, argv
   parsing, cheap repository reads (HEAD, rebase state, ref snapshots where a
   command needs them), an anonymous trace2 file on a free fd in 3..9.
2. **Git** runs with :func:`os.posix_spawn`, inheriting stdin/stdout/stderr
   (same TTY, same process group). The wrapper ignores SIGINT/SIGQUIT while it
   waits (the terminal delivers them to git) and forwards SIGTERM/SIGHUP.
   Meanwhile it imports what recording needs (sanitizer, spool writer, trace
   parser): that work overlaps git's run instead of adding to it. git's exit
   is timed by a SIGCHLD handler, so ``duration_ms`` stays git's own.
3. **After git** everything is guarded: events are built from the trace2
   summary and repository state and handed to :func:`gitaudit.pipeline.emit`.
   Whatever fails, git's output and exit status are untouched; at most one
   ``gitaudit: ...`` line goes to stderr and a minimal event is still recorded.
   If git died of a signal, the wrapper then dies of the same signal.

Stdlib only on the common path. What is imported before git starts must be
cheap: no ``typing``, ``dataclasses``, ``pathlib``, ``contextlib``, ``json``
or ``re`` there (``python -X importtime``: each costs milliseconds, against a
~12 ms interpreter start). pygit2 is imported only for conflicts, push
ancestry and rebase pairing (see :mod:`gitaudit.capture.history`).
"""

from __future__ import annotations

import os
import sys
import time

from gitaudit import catalog, config, paths
from gitaudit.capture import context, details, gitcmd, gitstate, record
from gitaudit.errors import ConfigError, GitauditError, GitNotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms to import; annotations are strings at runtime
    import signal as _signal
    from collections.abc import Callable, Mapping
    from types import FrameType
    from typing import Any

    from gitaudit.capture import trace2

    Handler = Callable[[int, FrameType | None], Any] | int | _signal.Handlers | None
else:
    # The C half of `signal`: the same functions and numbers without the three enums
    # that `import signal` builds (~1 ms, plus `enum`), unneeded on the common path.
    import _signal

SHIM_MARKER = b"# gitaudit-shim"
SOURCE = "wrapper"
TRACE2_FD_ENV = "GITAUDIT_TRACE2_FD"
TRACE2_PARENT_SID = "GIT_TRACE2_PARENT_SID"  # git prefixes its trace2 session id with it
PACKET_FD_ENV = "GITAUDIT_TRACE_PACKET_FD"
TRACE2_PARAMS = "user.name,user.email,remote.*.url"
_TRACE_FDS = range(9, 2, -1)  # highest first: the least likely to be reused by a child
_CONFLICT_SUBCOMMANDS = frozenset({"rebase", "merge", "pull", "cherry-pick", "revert"})
_TALKING_SUBCOMMANDS = frozenset({"fetch", "pull", "push"})
# Commands that can conclude (or abort) a conflict a wrapped command stopped on.
_SEQUENCER_SUBCOMMANDS = frozenset({"rebase", "merge", "cherry-pick", "revert"})
# Builtins that never push: anything else (an alias, a script) may, so it gets a packet trace.
_NEVER_PUSH = (
    frozenset(catalog.SUBCOMMAND_OPERATIONS) | catalog.READ_SUBCOMMANDS
) - {"push"} | frozenset(
    {"add", "rm", "mv", "restore", "stash", "init", "gc", "notes", "am", "apply", "revert",
     "bisect", "clean", "maintenance", "sparse-checkout", "worktree", "update-index",
     "update-ref", "symbolic-ref", "hash-object", "read-tree", "write-tree", "commit-tree",
     "mktag", "pack-refs", "prune", "repack", "rerere", "version", "help"}
)


# --- finding the real git ----------------------------------------------------------------


def is_shim(path: str) -> bool:
    """True if ``path`` is a gitaudit shim (marker in its first 512 bytes)."""
    try:
        with open(path, "rb") as handle:
            return SHIM_MARKER in handle.read(512)
    except OSError:
        return False


def _same_file(first: str, second: str) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def find_real_git(configured: str | None, environ: Mapping[str, str], running: str | None) -> str:
    """The git to run: ``configured`` (GITAUDIT_GIT) or the first non-shim ``git`` on PATH.

    ``running`` is the script being executed (a shim), skipped as well.
    Raises :class:`GitNotFoundError` (exit code 127).
    """
    if configured:
        path = os.path.abspath(configured)
        if is_shim(path):
            raise GitNotFoundError(
                f"GITAUDIT_GIT={path} is a gitaudit shim, not git",
                "set GITAUDIT_GIT to the real git, e.g. /usr/bin/git",
            )
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise GitNotFoundError(
                f"GITAUDIT_GIT={path} is not an executable file",
                "set GITAUDIT_GIT to the real git, e.g. /usr/bin/git",
            )
        return path
    for folder in environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or ".", "git")
        if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        if (running and _same_file(candidate, running)) or is_shim(candidate):
            continue
        return os.path.abspath(candidate)
    raise GitNotFoundError(
        "cannot find the real git on PATH (found only gitaudit shims or nothing)",
        "install git, or set GITAUDIT_GIT to the path of the real git",
    )


# --- settings ----------------------------------------------------------------------------


def _env_value_invalid(name: str, value: str) -> bool:
    field = next((item for item in config.FIELDS if item.env == name), None)
    if field is None or value == "":
        return False
    try:
        field.parse(value)
    except (ValueError, TypeError):
        return True
    return False


def load_settings(environ: Mapping[str, str]) -> tuple[config.Settings, str | None]:
    """Settings, tolerating bad values: invalid ones fall back to defaults, with a warning."""
    try:
        return config.load(environ), None
    except ConfigError as exc:
        problem = f"{exc.message}; using defaults for it ({exc.hint})" if exc.hint else (
            f"{exc.message}; using defaults for it"
        )
    valid_env = {
        key: value for key, value in environ.items() if not _env_value_invalid(key, value)
    }
    no_files: list[str] = []
    for files in (None, no_files):
        try:
            return config.load(valid_env, files), problem
        except ConfigError:
            continue
    return config.Settings(), problem


# --- tracing -----------------------------------------------------------------------------


def _free_fd() -> int | None:
    for number in _TRACE_FDS:
        try:
            os.fstat(number)
        except OSError:
            return number
    return None


def _trace_file(name: str) -> int | None:
    """An anonymous file placed on a free fd in 3..9 (inheritable), or None."""
    target = _free_fd()
    if target is None:
        return None
    fd = gitcmd.anonymous_fd(name)
    try:
        import fcntl

        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_APPEND)  # children never overwrite
        os.dup2(fd, target, inheritable=True)
    finally:
        os.close(fd)
    return target


def _theirs(environ: Mapping[str, str], variable: str, marker: str) -> bool:
    """True if ``variable`` was set by the user (not off, not left by an outer gitaudit)."""
    value = environ.get(variable, "")
    if value.lower() in {"", "0", "false", "no", "off"}:
        return False
    return value != environ.get(marker)


def trace2_target(environ: Mapping[str, str]) -> str | None:
    """The ``trace2.eventTarget`` a system/global git config sets (a cheap line scan: the
    last ``eventTarget = ...`` line of the last file that has one), None if none does."""
    found: str | None = None
    for path in gitstate.user_config_files(environ):
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        if b"eventtarget" not in data.lower():
            continue
        for line in data.decode("utf-8", "replace").splitlines():
            name, equals, value = line.partition("=")
            if equals and name.strip().lower() in {"eventtarget", "trace2.eventtarget"}:
                found = value.strip().strip('"')
    return found


def daemon_target(target: str | None) -> bool:
    """Whether an event target is the gitaudit daemon's trace2 socket (``trace2 enable``)."""
    return target is not None and target.endswith("/" + paths.TRACE2_SOCKET)


class Tracing:
    """The trace files the wrapper owns for one git run, and the environment naming them."""

    def __init__(self) -> None:
        self.event_fd: int | None = None
        self.packet_fd: int | None = None
        self.env: dict[str, str] = {}
        self.unset: list[str] = []
        self.link_sid = False  # name the event in git's trace2 session id (no one else's trace)

    def close(self) -> None:
        """Empty, seal and close the trace files (their content must have been read before)."""
        for fd in (self.event_fd, self.packet_fd):
            if fd is not None:
                gitcmd.retire_fd(fd)
        self.event_fd = self.packet_fd = None


def remote_params(branch: str | None) -> list[str]:
    """Config keys naming the remote a push/fetch/pull on ``branch`` talks to by default."""
    keys = ["remote.pushdefault"]
    if branch and "," not in branch:
        keys += [f"branch.{branch}.remote", f"branch.{branch}.pushremote"]
    return keys


def setup_tracing(
    environ: Mapping[str, str], want_packets: bool, extra_params: list[str] | None = None
) -> Tracing:
    """Own git's trace2 event target (and packet trace for pushes) unless the user has theirs.

    ``extra_params`` are config keys, beyond identity and remote URLs, that git
    should report (``def_param`` events).
    """
    tracing = Tracing()
    target = trace2_target(environ)
    # gitaudit's own daemon target (`gitaudit trace2 enable`) is replaced for this git: the
    # wrapper records it, so the daemon gets the wrapper's event instead of the stream
    replaceable = target is None or daemon_target(target)
    if not _theirs(environ, "GIT_TRACE2_EVENT", TRACE2_FD_ENV) and replaceable:
        tracing.link_sid = True  # git's trace2 goes to us, or to the daemon: no one else's
        tracing.event_fd = _trace_file("gitaudit-trace2")
        if tracing.event_fd is not None:
            ours = ",".join([TRACE2_PARAMS, *(extra_params or [])])
            theirs = environ.get("GIT_TRACE2_CONFIG_PARAMS", "")
            tracing.env.update(
                GIT_TRACE2_EVENT=str(tracing.event_fd),
                GIT_TRACE2_EVENT_BRIEF="1",
                GIT_TRACE2_CONFIG_PARAMS=f"{theirs},{ours}" if theirs else ours,
                **{TRACE2_FD_ENV: str(tracing.event_fd)},
            )
        elif environ.get(TRACE2_FD_ENV):
            tracing.unset.append("GIT_TRACE2_EVENT")  # an outer gitaudit's fd: not ours to fill
    if want_packets and not _theirs(environ, "GIT_TRACE_PACKET", PACKET_FD_ENV):
        tracing.packet_fd = _trace_file("gitaudit-packets")
        if tracing.packet_fd is not None:
            tracing.env["GIT_TRACE_PACKET"] = str(tracing.packet_fd)
            tracing.env[PACKET_FD_ENV] = str(tracing.packet_fd)
    elif environ.get(PACKET_FD_ENV) and not _theirs(environ, "GIT_TRACE_PACKET", PACKET_FD_ENV):
        tracing.unset.append("GIT_TRACE_PACKET")
    return tracing


# --- running git -------------------------------------------------------------------------


class _Forwarder:
    """Signal handler: pass SIGTERM/SIGHUP on to git (or hold them until git exists)."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.pending: list[int] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        del frame
        if self.pid is None:
            self.pending.append(signum)
            return
        try:  # noqa: SIM105 - contextlib costs ~3 ms to import: not on the hot path
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass  # git exited; waitpid says how

    def started(self, pid: int) -> None:
        self.pid = pid
        for signum in self.pending:
            self.__call__(signum, None)


class _ExitClock:
    """SIGCHLD handler: notes when git exited, even if the wrapper was busy at that moment.

    The wrapper does its own imports while git runs (two cores: they overlap);
    this keeps ``duration_ms`` git's wall time rather than "until we looked".
    ``waitid(WNOWAIT)`` checks that git really exited (not stopped or continued)
    without reaping it: ``waitpid`` still collects the status afterwards.
    """

    def __init__(self) -> None:
        self.pid: int | None = None
        self.exited_at: float | None = None

    @staticmethod
    def supported() -> bool:
        """``waitid`` with ``WNOWAIT`` exists here (Linux, the BSDs)."""
        return hasattr(os, "waitid") and hasattr(os, "WNOWAIT")

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        del signum, frame
        if self.pid is None or self.exited_at is not None:
            return
        try:
            done = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except OSError:
            return  # already reaped (or never ours): waitpid decides
        if done is not None:
            self.exited_at = time.monotonic()

    def started(self, pid: int) -> None:
        self.pid = pid
        self(_signal.SIGCHLD, None)  # git may have exited before its pid was known

    def reaped(self) -> float:
        """git was reaped: when it exited (monotonic clock)."""
        self.pid = None
        return time.monotonic() if self.exited_at is None else self.exited_at


def _divert_signals(
    previous: dict[int, Handler], forwarder: _Forwarder, clock: _ExitClock | None
) -> set[int]:
    """Set the wrapper's signal handling for git's run; returns the signals git resets.

    SIGINT/SIGQUIT are ignored (the terminal sends them to git as well),
    SIGTERM/SIGHUP forwarded to git, SIGCHLD watched by ``clock``. The old
    handlers are kept in ``previous``.
    """
    reset: set[int] = set(gitcmd.RESET_SIGNALS)
    for quiet in (_signal.SIGINT, _signal.SIGQUIT):
        previous[quiet] = _signal.signal(quiet, _signal.SIG_IGN)
        if previous[quiet] != _signal.SIG_IGN:
            reset.add(quiet)
    for passed_on in (_signal.SIGTERM, _signal.SIGHUP):
        if _signal.getsignal(passed_on) != _signal.SIG_IGN:
            previous[passed_on] = _signal.signal(passed_on, forwarder)
    if clock is not None:
        previous[_signal.SIGCHLD] = _signal.signal(_signal.SIGCHLD, clock)
    return reset


def _overlap(work: Callable[[], object]) -> None:
    """Run optional work while git runs; whatever it raises, git is still waited for."""
    try:  # noqa: SIM105 - contextlib costs ~3 ms to import: not on the hot path
        work()
    except Exception:  # noqa: BLE001, S110 - optional work; git's exit status comes first
        pass


def run_git(
    git: str,
    argv: list[str],
    env: Mapping[str, str],
    while_running: Callable[[], object] | None = None,
) -> tuple[int, float]:
    """Run git with our stdio and process group; returns (raw wait status, monotonic end).

    ``while_running`` is called once git has started: work that overlaps git's
    run (git runs on another core). Its errors are ignored. The end time is
    when git exited, noted by a SIGCHLD handler, so work done meanwhile does
    not count as git's. Where that handler cannot be had, nothing overlaps.
    """
    previous: dict[int, Handler] = {}
    forwarder = _Forwarder()
    clock = _ExitClock() if _ExitClock.supported() else None
    try:
        reset = _divert_signals(previous, forwarder, clock)
        pid = os.posix_spawn(git, [git, *argv], env, setsigdef=reset)
        forwarder.started(pid)
        if clock is not None:
            clock.started(pid)
            if while_running is not None:
                _overlap(while_running)
        _, status = os.waitpid(pid, 0)
        forwarder.pid = None  # reaped: its pid may be reused, never signal it again
        return status, (time.monotonic() if clock is None else clock.reaped())
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: set outside Python, cannot be put back from here
                _signal.signal(signum, handler)


def exit_like(status: int) -> int:
    """Exit the way git did: its exit code, or die of the signal that killed it."""
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # git may dump core; we must not
        except (ImportError, ValueError, OSError):
            pass  # no core limit to set: the signal is still delivered below
        sys.stderr.flush()
        _signal.signal(signum, _signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return 128 + signum  # only reached for signals whose default action is not fatal
    return 1


def _signal_name(signum: int) -> str:
    """``SIGTERM`` for 15 (the enum-building :mod:`signal` is imported only here, rarely)."""
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


def _exit_code(status: int) -> tuple[int, int | None]:
    """(exit code as a shell reports it, killing signal or None)."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        return 128 + signum, signum
    return (os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1), None


# --- the record --------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, GitauditError):
        text = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def warn(messages: list[str]) -> None:
    """Print the collected problems as ONE stderr line starting with ``gitaudit: ``."""
    if not messages:
        return
    line = "gitaudit: " + "; ".join(" ".join(message.split()) for message in messages)
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr closed or broken: nowhere left to report to


class Capture:
    """One wrapped git command: facts gathered before git ran, and the events built after."""

    def __init__(self, argv: list[str], environ: Mapping[str, str],
                 settings: config.Settings, git: str) -> None:
        self.argv = argv
        self.environ = environ
        self.settings = settings
        self.git = git
        self.warnings: list[str] = []
        self.event_id = catalog.uuid7()
        self.correlation_id = context.correlation_id(environ, catalog.uuid7)
        self.parent_id = context.parent_id(environ)
        self.inv = details.parse_invocation(argv)
        self.cwd = ""
        self.start = ""
        self.layout: gitstate.Layout | None = None
        self.head_before = gitstate.Head(None, None)
        self.rebase_before: gitstate.RebaseState | None = None
        self.remote_refs_before: dict[str, str] | None = None
        self.onto_before: str | None = None
        self.upstream_before: str | None = None
        self.conflict_state: str | None = None  # path of a saved conflict this may conclude
        self.operations_before: list[str] = []
        self.tracing = Tracing()
        self.started = time.time()
        self.duration_ms: float | None = None
        self._host_user: tuple[str, str | None] | None = None

    # -- before git --

    def prepare(self) -> None:
        """Cheap reads before git runs, then the trace files. Never raises: problems warn."""
        try:
            self._read_state()
        except Exception as exc:  # noqa: BLE001 - pre-run facts are optional; git must run
            self.warnings.append(f"could not read the repository before git ran ({_one_line(exc)})")
        sub = self.inv.subcommand
        want_packets = sub == "push" or (sub is not None and sub not in _NEVER_PUSH)
        extra = None
        if sub in _TALKING_SUBCOMMANDS:
            extra = remote_params(record.short_branch(self.head_before.ref))
        try:
            self.tracing = setup_tracing(self.environ, want_packets, extra)
        except OSError as exc:
            self.warnings.append(f"could not set up git tracing ({_one_line(exc)})")

    def _read_state(self) -> None:
        self.cwd = os.getcwd()
        self.start = gitstate.start_dir(self.cwd, self.inv.chdirs)
        sub = self.inv.subcommand
        if sub not in {"clone", "init"}:
            self.layout = gitstate.discover(
                self.start, self.environ, self.inv.git_dir, self.inv.work_tree
            )
        if self.layout is None:
            return
        self.head_before = gitstate.read_head(self.layout, self.git, self.environ)
        self.rebase_before = gitstate.read_rebase_state(self.layout)
        if sub in _TALKING_SUBCOMMANDS:
            self.remote_refs_before = gitstate.RefReader(self.layout).refs("refs/remotes/")
        if sub == "rebase":
            self._prepare_rebase()
        if self.concludes() or sub in _CONFLICT_SUBCOMMANDS:
            self._find_conflict_state()

    def concludes(self) -> bool:
        """True for commands that may conclude or abort a stopped conflict."""
        sub, args = self.inv.subcommand, self.inv.args
        return sub == "commit" or (
            sub in _SEQUENCER_SUBCOMMANDS
            and any(action in args for action in ("--continue", "--abort", "--skip"))
        )

    def _find_conflict_state(self) -> None:
        """One ``os.stat``: is there a saved conflict in this worktree?"""
        if self.layout is None:
            return
        path = gitstate.conflict_state_path(self.layout)
        try:
            os.stat(path)
        except OSError:
            return
        self.conflict_state = path
        self.operations_before = gitstate.operations_in_progress(self.layout)

    def _prepare_rebase(self) -> None:
        if self.layout is None:
            return
        request = details.rebase_request(self.inv.args)
        if request["action"] != "start":
            return
        name = request["onto_name"] or request["upstream"]
        if request["upstream"] is None and not request["root"]:
            upstream = gitcmd.run(self.git, ["rev-parse", "-q", "--symbolic-full-name",
                                             "@{upstream}"], git_dir=self.layout.git_dir,
                                  environ=self.environ, check=False)
            self.upstream_before = upstream.stdout.decode().strip() or None
            name = name or self.upstream_before
        if name:
            self.onto_before = gitstate.rev_parse(self.git, self.layout, name, self.environ)

    def git_env(self) -> dict[str, str]:
        """The environment git runs with: ours plus correlation, parent id and trace targets."""
        env = dict(self.environ)
        for name in self.tracing.unset:
            env.pop(name, None)
        env.update(self.tracing.env)
        env[context.CORRELATION_ENV] = self.correlation_id
        env[context.PARENT_ENV] = self.event_id
        if self.tracing.link_sid and not env.get(TRACE2_PARENT_SID):  # set: git runs us
            env[TRACE2_PARENT_SID] = self.event_id  # a trace2 record of this git names us
        return env

    # -- while git runs --

    def while_git_runs(self) -> None:
        """Load what recording needs while git runs (it runs on another core). Never raises.

        Only imports and facts that do not depend on git's outcome: the event
        itself is built after git exited, exactly as without this step. A
        failure here is ignored; the same import is retried after git, where
        problems are reported.
        """
        try:
            from gitaudit import pipeline  # noqa: F401 - sanitizer, policy, transport
            from gitaudit.capture import trace2

            trace2.json_decoder()
            self.host_user()
        except Exception:  # noqa: BLE001, S110 - best effort; record() redoes and reports
            pass

    def host_user(self) -> tuple[str, str | None]:
        """(host name, login name) of this process, looked up once."""
        if self._host_user is None:
            uid = os.getuid()
            self._host_user = (os.uname().nodename, context.os_user(self.environ, uid))
        return self._host_user

    # -- after git --

    def events(self, status: int) -> list[dict[str, Any]]:
        """The operation event (and a conflict event if the command stopped on conflicts)."""
        return _Builder(self, status).build()

    def minimal_event(self, status: int, problem: str) -> dict[str, Any]:
        """A bare record (operation, outcome, exit code) for when details could not be built."""
        exit_code, signum = _exit_code(status)
        outcome = "success" if exit_code == 0 else "failure"
        subcommand = self.inv.subcommand
        operation = catalog.operation_for(subcommand)
        event_details: dict[str, Any] = {
            "subcommand": subcommand, "argv": list(self.argv), "capture_error": problem,
        }
        if signum is not None:
            event_details["signal"] = _signal_name(signum)
        return {
            "id": self.event_id,
            "schema_version": catalog.SCHEMA_VERSION,
            "occurred_at": catalog.now_rfc3339(self.started),
            "duration_ms": self.duration_ms,
            "operation": operation,
            "category": catalog.category_for(operation, event_details, self.inv.args),
            "outcome": outcome,
            "severity": "low",
            "source": SOURCE,
            "correlation_id": self.correlation_id,
            "parent_id": self.parent_id,
            "actor": context.build_actor(
                uid=os.getuid(), user=None, host=None, git_name=None, git_email=None, ci=None
            ),
            "repo": None,
            "result": {"exit_code": exit_code, "error": None},
            "details": event_details,
        }

    def record(self, status: int) -> None:
        """Build and deliver the events. Never raises; problems end up in one stderr line."""
        try:
            events = self.events(status)
        except Exception as exc:  # noqa: BLE001 - any capture bug must leave git's result alone
            problem = _one_line(exc)
            self.warnings.append(
                f"could not collect event details ({problem}); recorded a minimal event"
            )
            events = [self.minimal_event(status, problem)]
        finally:
            self.tracing.close()
        self._deliver(events, status)
        warn(self.warnings)

    def _deliver(self, events: list[dict[str, Any]], status: int) -> None:
        try:
            from gitaudit import pipeline

            delivery = pipeline.emit(events, self.settings)
        except GitauditError as exc:
            self.warnings.append(f"event not recorded: {_one_line(exc)}")
            return
        except Exception as exc:  # noqa: BLE001 - e.g. a sanitizer bug: retry with less data
            self.warnings.append(f"event delivery failed ({_one_line(exc)})")
            self._deliver_minimal(status, _one_line(exc))
            return
        if delivery is not None and delivery.warning:
            spool = self.settings.effective_spool_dir
            self.warnings.append(
                f"{delivery.warning} (make {spool} writable or set GITAUDIT_SPOOL_DIR)"
            )

    def _deliver_minimal(self, status: int, problem: str) -> None:
        try:
            from gitaudit import pipeline

            pipeline.emit([self.minimal_event(status, problem)], self.settings)
        except Exception as exc:  # noqa: BLE001 - last resort; reported, never raised
            self.warnings.append(f"minimal event not recorded either ({_one_line(exc)})")
        else:
            self.warnings.append("recorded a minimal event instead")


class _Builder:
    """Builds the events of one finished git command from trace2 and repository state."""

    def __init__(self, capture: Capture, status: int) -> None:
        self.cap = capture
        self.exit_code, self.signum = _exit_code(status)
        self.outcome = "success" if self.exit_code == 0 else "failure"
        self.summary: trace2.Trace2Summary | None = None
        if capture.tracing.event_fd is not None:
            from gitaudit.capture import trace2

            self.summary = trace2.summarize_bytes(gitcmd.read_fd(capture.tracing.event_fd))
        summary = self.summary
        self.inv, self.details = record.command_details(
            capture.argv,
            summary.alias if summary is not None else None,
            summary.alias_argv if summary is not None else None,
        )
        self.subcommand = self.inv.subcommand
        self.operation = catalog.operation_for(self.subcommand)
        self.layout = self._layout_after()
        self.head_after = self._head_after()
        self.rebase_after = (
            gitstate.read_rebase_state(self.layout) if self.layout is not None else None
        )
        self.params = self._config_params()
        self._repo_handle: Any = None

    # -- repository --

    def _head_after(self) -> gitstate.Head:
        if self.layout is None:
            return gitstate.Head(None, None)
        try:
            return gitstate.read_head(self.layout, self.cap.git, self.cap.environ)
        except (gitstate.UnusualLayout, GitauditError, OSError) as exc:
            self.cap.warnings.append(f"could not read HEAD after git ran ({_one_line(exc)})")
            return gitstate.Head(None, None)

    def _layout_after(self) -> gitstate.Layout | None:
        cap = self.cap
        if self.subcommand == "init":
            return self._new_repository(self._init_target())
        if self.subcommand != "clone":
            return cap.layout
        target = self.summary.worktree if self.summary and self.summary.worktree else None
        if target is None and self.details.get("target"):
            target = os.path.join(cap.start, self.details["target"])
        if target is None:
            return None
        self.details["target"] = os.path.abspath(target)
        return self._new_repository(target)

    def _init_target(self) -> str:
        positionals = details.split_options(
            self.inv.args, frozenset({"--template", "--separate-git-dir", "-b",
                                      "--initial-branch", "--object-format"})
        ).positionals
        return os.path.join(self.cap.start, positionals[0]) if positionals else self.cap.start

    @staticmethod
    def _new_repository(target: str) -> gitstate.Layout | None:
        """The repository created at ``target`` (clone, init), never an enclosing one."""
        if not os.path.isdir(target):
            return None
        found = gitstate.discover(target, {})
        if found is None or os.path.realpath(found.worktree or found.git_dir) != os.path.realpath(
            target
        ):
            return None  # nothing was created there
        return found

    def _config_params(self) -> dict[str, str]:
        if self.summary is not None:
            return self.summary.params
        if context.identity_complete(self.cap.environ) and self.layout is None:
            return {}
        return gitstate.config_params(
            self.cap.git, self.layout, self.cap.start or self.cap.cwd, self.cap.environ
        )

    def repo(self) -> Any:
        """A pygit2 repository (opened on first use: pygit2 costs ~100 ms to import)."""
        if self._repo_handle is None and self.layout is not None:
            from gitaudit.capture import history

            self._repo_handle = history.open_repository(self.layout.git_dir)
        return self._repo_handle

    def repo_info(self) -> dict[str, Any] | None:
        layout = self.layout
        if layout is None:
            return None
        path = (
            self.summary.worktree
            if self.summary is not None and self.summary.worktree and self.subcommand != "clone"
            else os.path.realpath(layout.worktree or layout.git_dir)
        )
        url = None
        if self.subcommand == "clone" and self.details.get("url"):
            url = self.details["url"]
        branch = self.head_after.ref
        if branch is None and self.rebase_after is not None:
            branch = self.rebase_after.head_name
        return record.repo_object(
            path,
            self.params,
            url=url,
            branch=branch,
            head_before=self.cap.head_before.oid,
            head_after=self.head_after.oid,
        )

    def actor(self) -> dict[str, Any]:
        environ = self.cap.environ
        name, email = context.git_identity(environ, self.params)
        host, user = self.cap.host_user()
        return context.build_actor(
            uid=os.getuid(),
            user=user,
            host=host,
            git_name=name,
            git_email=email,
            ci=context.ci_info(environ),
        )

    # -- details --

    def _trace_details(self) -> None:
        if self.summary is not None:
            self.details.update(record.trace_details(self.summary))

    def _resolve_remote(self) -> None:
        """Fill ``remote`` (and ``url``) the way git chose them when argv named none."""
        params, branch = self.params, record.short_branch(self.cap.head_before.ref)
        remote = self.details.get("remote")
        if remote is None and not self.details.get("all"):
            keys = [f"branch.{branch}.remote"]
            if self.subcommand == "push":
                keys = [f"branch.{branch}.pushremote", "remote.pushdefault", *keys]
            remote = next((params[key] for key in keys if params.get(key)), None)
            if remote is None and "remote.origin.url" in params:
                remote = "origin"
            self.details["remote"] = remote
        url = params.get(f"remote.{remote}.url") if remote else None
        self.details["url"] = details.strip_credentials(url) if url else (
            remote if remote and ("/" in remote or ":" in remote) else None
        )

    def _push_details(self) -> None:
        self._resolve_remote()
        tracing = self.cap.tracing
        if tracing.packet_fd is not None:
            from gitaudit.capture import trace2

            packets = trace2.parse_push_packets(gitcmd.read_fd(tracing.packet_fd))
            refs, tips = details.push_refs_from_packets(packets.commands, packets.advertised)
            source = "packet-trace"
        elif self.cap.remote_refs_before is not None and self.layout is not None:
            after = gitstate.RefReader(self.layout).refs("refs/remotes/")
            refs, tips = details.push_refs_from_tracking(self.cap.remote_refs_before, after)
            source = "tracking-refs"
        else:
            refs, tips, source = [], [], "unavailable"
        self.details["refs_source"] = source
        self.details["refs"] = refs
        self.details["commit_count"] = 0
        if refs and self.repo() is not None:
            from gitaudit.capture import history

            self.details["commit_count"] = history.classify_push(self.repo(), refs, tips)

    def _fetch_details(self) -> None:
        self._resolve_remote()
        before = self.cap.remote_refs_before
        if before is None or self.layout is None:
            return
        after = gitstate.RefReader(self.layout).refs("refs/remotes/")
        self.details["updated_refs"] = [
            {"ref": ref, "old": before.get(ref), "new": after.get(ref)}
            for ref in sorted(set(before) | set(after))
            if before.get(ref) != after.get(ref)
        ]

    def _child_argv(self, name: str) -> list[str] | None:
        if self.summary is None:
            return None
        for child in self.summary.children:
            if len(child.argv) > 1 and child.argv[0] == "git" and child.argv[1] == name:
                return child.argv
        return None

    def _pull_details(self) -> None:
        self._fetch_details()
        rebase_argv = self._child_argv("rebase")
        merge_argv = self._child_argv("merge")
        integration = "rebase" if rebase_argv else ("merge" if merge_argv else None)
        self.details["integration"] = integration
        fork_point = self._child_argv("merge-base")
        upstream = fork_point[3] if fork_point and len(fork_point) > 3 else None
        if upstream is None and self.layout is not None:
            branches = gitstate.fetch_head_branches(self.layout)
            remote = self.details.get("remote") or "origin"
            upstream = f"{remote}/{branches[0]}" if branches else None
        self.details["upstream"] = upstream
        if integration == "rebase":
            onto = None
            if rebase_argv and "--onto" in rebase_argv[:-1]:
                onto = rebase_argv[rebase_argv.index("--onto") + 1]
            self._rebase_outcome(upstream, onto)

    def _rebase_details(self) -> None:
        upstream = self.details.get("upstream") or self.cap.upstream_before
        self.details.pop("upstream", None)
        self._rebase_outcome(upstream, self.cap.onto_before)

    def _rebase_outcome(self, upstream: str | None, onto: str | None) -> None:
        """upstream, onto, rewritten and the sidecar that carries them across a stop."""
        before, after = self.cap.rebase_before, self.rebase_after
        saved = None
        if before is not None and self.layout is not None:
            saved = gitstate.load_rebase_note(self.layout, before)
        if saved is not None:
            upstream = upstream or saved.get("upstream")
            onto = onto or saved.get("onto")
        orig_head = (before.orig_head if before else None) or (
            after.orig_head if after else None
        ) or self.cap.head_before.oid
        onto = (after.onto if after else None) or (before.onto if before else None) or onto
        self.details["upstream"] = upstream
        self.details["onto"] = onto
        self.details["rewritten"] = self._rewritten(orig_head, after)
        if self.layout is not None:
            if after is not None:
                gitstate.save_rebase_note(self.layout, after, {"upstream": upstream, "onto": onto})
            else:
                gitstate.clear_rebase_note(self.layout)

    def _rewritten(
        self, orig_head: str | None, after: gitstate.RebaseState | None
    ) -> list[list[str]]:
        if after is not None and after.rewritten:
            return [list(pair) for pair in after.rewritten]
        new_head = self.head_after.oid
        if not orig_head or not new_head or orig_head == new_head or self.repo() is None:
            return []
        from gitaudit.capture import history

        return history.rewritten_pairs(self.repo(), orig_head, new_head)

    def _conflict_files(self) -> list[dict[str, Any]]:
        if (
            self.subcommand not in _CONFLICT_SUBCOMMANDS
            or self.exit_code == 0
            or self.layout is None
            or not gitstate.operations_in_progress(self.layout)
        ):
            return []
        from gitaudit.capture import conflicts

        return conflicts.read_conflicts(self.layout)

    def _operation_details(self) -> None:
        builders: dict[str, Callable[[], None]] = {
            "push": self._push_details,
            "fetch": self._fetch_details,
            "pull": self._pull_details,
            "rebase": self._rebase_details,
        }
        builder = builders.get(self.subcommand or "")
        if builder is not None:
            builder()
        if self.subcommand == "commit" and self.outcome == "success":
            self.details["commit"] = self.head_after.oid
        if self.subcommand in {"checkout", "switch"}:
            self.details["branch_before"] = record.short_branch(self.cap.head_before.ref)

    # -- events --

    def _error(self) -> str | None:
        if self.outcome == "success" or self.summary is None:
            return None
        return record.error_text(self.summary.errors, self.cap.settings.error_max_chars)

    def build(self) -> list[dict[str, Any]]:
        self._trace_details()
        if self.signum is not None:
            self.details["signal"] = _signal_name(self.signum)
        self._operation_details()
        files = self._conflict_files()
        if self.subcommand in _CONFLICT_SUBCOMMANDS:
            self.details["stopped_on_conflict"] = bool(files)
        cap = self.cap
        actor, repo = self.actor(), self.repo_info()
        event = record.git_event(
            event_id=cap.event_id,
            started=cap.started,
            duration_ms=cap.duration_ms,
            operation=self.operation,
            event_details=self.details,
            args=self.inv.args,
            outcome=self.outcome,
            source=SOURCE,
            correlation_id=cap.correlation_id,
            parent_id=cap.parent_id,
            actor=actor,
            repo=repo,
            exit_code=self.exit_code,
            error=self._error(),
        )
        events = [event]
        state = self._saved_conflict()
        if state is not None:
            concluded = self._conclusion(event, state, files)
            if concluded is not None:
                events.append(concluded)
            elif files and self._stopped_at() == state.get("stopped_at"):
                return events  # the same stop, still unresolved: detected already
        if files:
            events.append(self._conflict_event(event, files))
        return events

    # -- the conflict lifecycle --

    def _stopped_at(self) -> str | None:
        """The commit the stopped operation was applying (REBASE_HEAD, MERGE_HEAD, ...)."""
        layout = self.layout
        stop = gitstate.current_stop(layout, gitstate.ended_stops(layout)) if layout else None
        return stop[1] if stop is not None else None

    def _conflict_event(
        self, parent: dict[str, Any], files: list[dict[str, Any]]
    ) -> dict[str, Any]:
        from gitaudit.capture import conflicts

        layout = self.layout
        in_progress = gitstate.operations_in_progress(layout) if layout else []
        stop = gitstate.current_stop(layout, gitstate.ended_stops(layout)) if layout else None
        state = conflicts.new_state(
            detected_id=conflicts.conflict_id(layout, stop) if layout and stop else catalog.uuid7(),
            correlation_id=parent["correlation_id"], operation=self.operation, stop=stop,
            stopped_in=stop[0] if stop else in_progress[0] if in_progress else None,
            head=self.head_after.oid, files=files,
        )
        event = conflicts.lifecycle_event(
            "conflict.detected", conflicts.detected_details(state), source=SOURCE, state=state,
            actor=parent["actor"], repo=parent["repo"], exit_code=self.exit_code,
            event_id=state["detected_id"], parent_id=parent["id"],
        )
        if layout is not None:
            gitstate.save_conflict_state(layout, state)
        return event

    def _saved_conflict(self) -> dict[str, Any] | None:
        """The conflict state saved when a wrapped command stopped (checked before git ran)."""
        path = self.cap.conflict_state
        if path is None:
            return None
        state = gitstate.load_conflict_state(path)
        if state is None or not self.cap.operations_before:
            gitstate.clear_conflict_state(path)  # unreadable, or ended outside the wrapper
            return None
        return state

    def _conclusion(
        self, parent: dict[str, Any], state: dict[str, Any], files: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """``conflict.resolved`` or ``conflict.aborted`` if this command ended the saved
        conflict (the state file is then deleted); None if the conflict still stands."""
        if not self.cap.concludes():
            return None
        from gitaudit.capture import conflicts

        action = next(
            (flag[2:] for flag in ("--abort", "--skip") if flag in self.inv.args), "continue"
        ) if self.subcommand != "commit" else "commit"
        moved_on = bool(files) and self._stopped_at() != state.get("stopped_at")
        if self.exit_code != 0 and (action == "abort" or not moved_on):
            return None
        if action in {"abort", "skip"}:
            verdict: tuple[str, str | None] = ("aborted", action)
        else:
            stopped_at = state.get("stopped_at")
            result = dict(map(tuple, self.details.get("rewritten") or [])).get(stopped_at)
            verdict = ("resolved", result or self.head_after.oid)
        operation, found = conflicts.concluded_details(
            self.repo(), state, verdict, self.operation, action=action
        )
        state["correlation_id"] = state.get("correlation_id") or parent["correlation_id"]
        state["detected_id"] = state.get("detected_id") or parent["id"]
        event = conflicts.lifecycle_event(
            operation, found, source=SOURCE, state=state, actor=parent["actor"],
            repo=parent["repo"], exit_code=self.exit_code,
        )
        if self.cap.conflict_state is not None:
            gitstate.end_conflict_state(self.cap.conflict_state, state)
        return event


# --- entry point -------------------------------------------------------------------------


def _exec_git(git: str, argv: list[str]) -> int:
    """Recording is off: become git (no wrapper left in between)."""
    try:
        os.execv(git, [git, *argv])  # noqa: S606 - exec the real git, argv as given, no shell
    except OSError as exc:
        warn([f"cannot run {git}: {exc.strerror or exc}"])
        return 126
    return 0  # not reached: execv does not return on success


def _settings(environ: Mapping[str, str]) -> tuple[config.Settings, str | None]:
    try:
        return load_settings(environ)
    except Exception as exc:  # noqa: BLE001 - broken settings must not stop git: use defaults
        return config.Settings(), f"settings could not be loaded ({_one_line(exc)}); using defaults"


def main(argv: list[str]) -> int:
    """Run ``git argv...`` and record it; returns git's exit code (or dies of git's signal)."""
    environ = os.environ
    settings, problem = _settings(environ)
    try:
        git = find_real_git(
            str(settings.git) if settings.git else None, environ, sys.argv[0] or None
        )
    except GitNotFoundError as exc:
        warn([_one_line(exc)])
        return exc.exit_code
    if not settings.enabled:
        return _exec_git(git, argv)
    try:
        capture = Capture(argv, environ, settings, git)
    except Exception as exc:  # noqa: BLE001 - cannot even start recording: still run git
        warn([f"not recording this command ({_one_line(exc)})"])
        return _exec_git(git, argv)
    if problem:
        capture.warnings.append(problem)
    capture.prepare()
    env = capture.git_env()
    capture.started = time.time()
    began = time.monotonic()
    try:
        status, ended = run_git(git, argv, env, capture.while_git_runs)
    except OSError as exc:
        capture.tracing.close()
        warn([f"cannot run {git}: {exc.strerror or exc}"])
        return 126
    capture.duration_ms = round((ended - began) * 1000, 3)
    capture.record(status)
    _before_exit()
    return exit_like(status)


def _before_exit() -> None:
    """The process exits next: spare the interpreter's shutdown a full garbage collection.

    Freezing moves every object to the permanent generation, so the collections
    run during finalization skip them (~2.5 ms of the ~12 ms a bare interpreter
    start costs, with the modules recording loaded). Nothing the wrapper leaves
    behind needs the collector: files are closed, the spool is written with
    ``os.write``. Objects are still freed by reference counting as usual.
    """
    import gc

    gc.freeze()
