"""What an installed gitaudit hook runs: record the hook, chain to the user's own hook.

The hook script (``hooks/hook-template.sh``) execs the interpreter recorded at
install time, ``python -I``, straight into :func:`main` with the hook's name
(from the script's content: a hook manager may have renamed the file), the
script's path and git's arguments. (Chain-only scripts, and gates whose
chained hook succeeded, never start Python: the script chains by itself; a
gate whose chained hook refused starts it with ``GITAUDIT_HOOK_REFUSED``, see
:func:`record_refusal`.) Then:

1. settings (a broken config warns once and falls back to defaults);
2. stdin is read once, for the hooks git feeds (pre-push, post-rewrite,
   reference-transaction);
3. the chained hook is found: ``<name>.gitaudit-legacy`` next to the script
   (a per-repository install kept the user's hook there), or, in the global
   hooks directory, the hook the repository would have run without gitaudit
   (the previous global ``core.hooksPath`` or the repository's own
   ``hooks/`` directory). A chained hook that is itself a gitaudit hook is
   exec'd without recording here, so nothing is recorded twice. A kept hook
   runs with ``$0`` the path this script runs as (the place it had); a hook
   chained from elsewhere runs as itself, as git would have run it;
4. the chained hook starts first, with the same arguments and byte-identical
   stdin, while the event is built (the git queries a handler needs start at
   once too, overlapping the imports);
5. the event goes through :class:`gitaudit.pipeline.Pipeline`; the exit
   status is the chained hook's, or 0.

Detaching (setting ``hook_detach``, default ``auto``; :func:`detach_wanted`):
git waits for its hook, so what need not happen before git goes on happens
in a detached process (:func:`detach`: own session, stdio on /dev/null, no
inherited descriptor, niced, after git exited) once every fact git may
change afterwards has been captured: arguments, stdin, environment, HEAD,
the chained hook's exit status, the time, and the repository reads a
handler declares as its
``facts`` (:class:`gitaudit.capture.hooks.Handler`). For such a handler
without a chained hook (post-commit, pre-push) the git queries, the build,
the sanitizer and the delivery are all detached; otherwise the event is
built here and only sanitizing and delivery are. A process that cannot be
detached means an inline delivery, as with ``never``.

Where the time goes (``bench/bench_hooks.py``; ``python -X importtime``): the
interpreter start (``-I -S``, ~0.7 of a bare ``python -I`` start) and the
imports (~3 ms: settings, git state, the handlers) are the floor; then HEAD,
config and the handler's facts are read from files (no git process), and the
hook forks. Not on this path: the pipeline (policy, sanitizer, JSON, spool
``fsync``: ~1.5 ms), the git queries (~2 ms each, post-commit and pre-push),
the socket client (imported only when a daemon socket exists) and :mod:`re`
(the sanitizer's gates keep commit ids, UUIDs and timestamps from compiling
any pattern).

An audit failure never changes what git does: whatever goes wrong here, at
most one ``gitaudit: ...`` line goes to stderr and the exit status is still
the chained hook's (a detached process has no stderr: it still delivers to
the spool, or the emergency spool, but cannot warn). Nothing is printed on
success. Stdlib only; no pydantic, Typer or pygit2 (except for pushes
updating many refs, see :mod:`.hooks`).
"""

from __future__ import annotations

import errno
import os
import sys
import time

from gitaudit import config, paths
from gitaudit.capture import gitstate
from gitaudit.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms to import; annotations are strings at runtime
    import signal as _signal
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from gitaudit import pipeline
    from gitaudit.capture import gitcmd, hooks
else:
    # The C half of `signal`: the same functions and numbers without the enums that
    # `import signal` builds (~1 ms), as in the wrapper.
    import _signal

HOOK_MARKER = b"# gitaudit-hook"
LEGACY_SUFFIX = ".gitaudit-legacy"
GLOBAL_STATE = "gitaudit-global"  # in the global hooks directory: where to chain to
# Set by the hook script for the interpreter alone: "<status> <path>" of a chained hook that
# refused (a hook installed as a gate runs the chained hook itself, Python only then).
REFUSED_VARIABLE = "GITAUDIT_HOOK_REFUSED"
# "<hook> <pid of the git running it>", exported to the chained hook: a gitaudit hook further
# down the same chain (global hooks -> pre-commit -> a per-repository gitaudit hook kept as
# pre-push.legacy) then knows this run of the hook is recorded already.
RECORDING_VARIABLE = "GITAUDIT_HOOK_RECORDING"
SHIM_MARKER = b"# gitaudit-shim"  # == wrapper.SHIM_MARKER (wrapper costs 2 ms to import)
_SHELLS = frozenset({"sh", "bash", "dash", "ash"})  # keep a sourced script's $0 as ours
# Sources the kept hook with $0 set to the path git ran, so a script that finds its
# helpers or its own name from $0 (husky 4: `basename "$0"`) still works after the rename.
_SOURCE_AS = '__gitaudit_hook=$1; shift; . "$__gitaudit_hook"'
_QUIET_SIGNALS = (_signal.SIGINT, _signal.SIGQUIT)
_MAX_FD = 1 << 20  # os.closerange: one close_range system call on Linux
_DETACHED_NICENESS = 19
_GIT_EXIT_WAIT = 1.0  # seconds a detached hook waits for git to finish before its own work
_PUSH_WAIT = 600.0  # seconds a detached pre-push waits for the push to end (hooks.settle_push)
_CHILD_DEFAULT_SIGNALS = {
    _signal.SIGINT, _signal.SIGQUIT, *(
        sig for sig in (getattr(_signal, "SIGPIPE", None), getattr(_signal, "SIGXFSZ", None))
        if sig is not None
    ),
}


# --- finding the chained hook ------------------------------------------------------------


def is_gitaudit_hook(path: str) -> bool:
    """True if ``path`` is a gitaudit hook script (marker in its first 512 bytes)."""
    try:
        with open(path, "rb") as handle:
            return HOOK_MARKER in handle.read(512)
    except OSError:
        return False


def runnable(path: str) -> bool:
    """A hook git would run: a regular file (or link to one) that is executable."""
    return os.path.isfile(path) and os.access(path, os.X_OK)


def read_global_state(hook_dir: str) -> dict[str, str] | None:
    """``key=value`` lines of the global hooks directory's state file; None elsewhere."""
    try:
        with open(os.path.join(hook_dir, GLOBAL_STATE), encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return None
    state: dict[str, str] = {}
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq and not key.startswith("#"):
            state[key.strip()] = value.strip()
    return state


def repository_hooks_dir(environ: Mapping[str, str], cwd: str) -> str | None:
    """The hooks directory git would use for this repository without any core.hooksPath."""
    layout = gitstate.discover(cwd, environ)
    return None if layout is None else os.path.join(layout.common_dir, "hooks")


def find_chained(hook_dir: str, name: str, environ: Mapping[str, str], cwd: str) -> str | None:
    """The hook git would have run here had gitaudit not been installed (None: no hook)."""
    legacy = os.path.join(hook_dir, name + LEGACY_SUFFIX)
    if runnable(legacy):
        return legacy
    state = read_global_state(hook_dir)
    if state is None:
        return None
    previous = state.get("chain")
    folder = (
        os.path.join(cwd, os.path.expanduser(previous)) if previous
        else repository_hooks_dir(environ, cwd)
    )
    if folder is None or _same_dir(folder, hook_dir):
        return None
    candidate = os.path.join(folder, name)
    return candidate if runnable(candidate) else None


def running_git() -> int:
    """The pid of the nearest git above this hook: its parent, unless a hook manager (or a
    gitaudit hook) runs in between. Read from /proc; without it, the parent."""
    parent = pid = os.getppid()
    for _ in range(16):
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            return parent
        end = stat.rfind(b")")
        if stat[stat.find(b"(") + 1:end] == b"git":
            return pid
        pid = int(stat[end + 2:].split()[1])  # "pid (comm) state ppid ..."
        if pid <= 1:
            break
    return parent


def _same_dir(first: str, second: str) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


# --- running the chained hook ------------------------------------------------------------


def _shebang(path: str) -> list[str] | None:
    """The ``#!`` line of a script as [interpreter, optional argument]; None if it has none."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "surrogateescape").strip().split(None, 1)
    return words or None


def chained_argv(chained: str, script: str, args: Sequence[str]) -> list[str]:
    """How to run the chained hook so it sees what it saw before gitaudit came.

    ``script`` is the path it was run as before: for a hook kept as
    ``<hook>.gitaudit-legacy``, the path this gitaudit hook runs as (the place
    it took); for a hook chained from elsewhere (global installs), its own
    path, and then it simply runs. A kept POSIX shell script is sourced by its
    own shell with ``$0`` set to ``script``: scripts that derive their name or
    their helpers' location from ``$0`` (husky, pre-commit) keep working.
    Anything else runs as is.
    """
    if chained == script:
        return [chained, *args]
    shebang = _shebang(chained)
    interpreter = shebang or ["/bin/sh"]
    program = os.path.basename(interpreter[0])
    flags = interpreter[1:]
    if program == "env" and flags and not flags[0].startswith("-"):
        program = os.path.basename(flags[0].split()[0])
        flags = flags[0].split()[1:]
    if program not in _SHELLS or any(not flag.startswith("-") for flag in flags):
        return [chained, *args]
    return [*interpreter, "-c", _SOURCE_AS, script, chained, *args]


def spawn_chained(argv: list[str], stdin: bytes | None) -> int:
    """Start the chained hook (same environment; stdin = ``stdin`` bytes if given); its pid."""
    from gitaudit.capture import gitcmd

    actions: list[tuple[int, ...]] = []
    fd = None
    if stdin is not None:
        fd = gitcmd.anonymous_fd("gitaudit-hook-stdin")
        _write_all(fd, stdin)
        os.lseek(fd, 0, os.SEEK_SET)
        actions.append((os.POSIX_SPAWN_DUP2, fd, 0))
    try:
        return os.posix_spawn(argv[0], argv, os.environ, file_actions=actions,
                              setsigdef=_CHILD_DEFAULT_SIGNALS)
    finally:
        if fd is not None:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def wait_status(pid: int) -> int:
    """Wait for the chained hook; its exit code (128 + signal if a signal killed it)."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            return 1
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


def read_stdin() -> bytes:
    """Everything on fd 0 (git closes the pipe when it has written all lines)."""
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(0, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


# --- reporting ---------------------------------------------------------------------------


def one_line(exc: BaseException) -> str:
    """An exception as one line: our message and hint, or its type and text."""
    message = getattr(exc, "message", None)
    if isinstance(message, str):
        hint = getattr(exc, "hint", "")
        text = f"{message} ({hint})" if hint else message
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def warn(problems: list[str]) -> None:
    """At most one ``gitaudit: ...`` line on stderr (nothing when all went well)."""
    if not problems:
        return
    line = "gitaudit: " + "; ".join(" ".join(problem.split()) for problem in problems)
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr closed: nowhere left to report to, and git must go on


def load_settings(environ: Mapping[str, str]) -> tuple[config.Settings, str | None]:
    """Settings; a bad value or file falls back to defaults with one warning."""
    try:
        return config.load(environ), None
    except ConfigError:
        pass  # the tolerant loader below retries without the bad parts and says what they were
    try:
        from gitaudit.capture.wrapper import load_settings as tolerant

        return tolerant(environ)
    except Exception as exc:  # noqa: BLE001 - broken settings must not stop the user's hook
        return config.Settings(), f"settings could not be loaded ({one_line(exc)}); using defaults"


# --- recording ---------------------------------------------------------------------------


def find_git(settings: config.Settings, environ: Mapping[str, str]) -> str | None:
    """The real git: settings, else the first ``git`` on PATH that is not a gitaudit shim.

    git puts its own exec-path first on a hook's PATH, so this is normally
    the very git that runs the hook.
    """
    if settings.git:
        return str(settings.git)
    for folder in environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or ".", "git")
        if runnable(candidate):
            try:
                with open(candidate, "rb") as handle:
                    if SHIM_MARKER in handle.read(512):
                        continue
            except OSError:
                continue
            return candidate
    return None


class Recorder:
    """One hook invocation's event: queries started early, built and delivered later."""

    def __init__(self, name: str, args: Sequence[str], stdin: bytes,
                 settings: config.Settings, environ: Mapping[str, str]) -> None:
        self.settings = settings
        self.environ = environ
        self.problems: list[str] = []
        self.handler: hooks.Handler | None = None
        self.input: hooks.HookInput | None = None
        self.running: dict[str, gitcmd.Running] = {}
        self.pipeline: pipeline.Pipeline | None = None
        self.params: dict[str, str] | None = None
        self.name, self.args, self.stdin = name, args, stdin
        self.detach = detach_wanted(settings, environ)
        self.started = time.time()
        self.queries: dict[str, list[str]] = {}
        self.git: str | None = None

    def prepare(self) -> None:
        """Read what git may change once the hook returns: repository, HEAD, the handler's
        facts; work out the git queries (config, and the handler's)."""
        from gitaudit.capture import hooks

        self.handler = hooks.HANDLERS.get(self.name)
        if self.handler is None:
            return
        layout = gitstate.discover(os.getcwd(), self.environ)
        head = gitstate.Head(None, None)
        git = self.git = find_git(self.settings, self.environ)
        if layout is not None:
            head = gitstate.read_head(layout, git, self.environ)
        self.input = hooks.HookInput(self.name, self.args, self.stdin, self.environ, layout, head)
        if layout is None:
            return
        self.params = hooks.read_config_params(layout, self.environ)
        if self.handler.facts is not None:
            self.handler.facts(self.input)
        hooks.conflict_pending(self.input)  # a fact too: a detached build must see the same
        if git is None:
            return
        self.queries = {} if self.params is not None else {"config": list(hooks.CONFIG_QUERY)}
        if self.handler.queries is not None:
            self.queries.update(self.handler.queries(self.input))

    def launch(self) -> None:
        """Start the git queries (they run while this process goes on)."""
        from gitaudit.capture import gitcmd

        queries, self.queries = self.queries, {}
        if self.git is None or self.input is None or self.input.layout is None:
            return
        for key, query in queries.items():
            self.running[key] = gitcmd.start(self.git, query, git_dir=self.input.layout.git_dir,
                                             environ=self.environ)

    def start(self) -> None:
        """:meth:`prepare`, then :meth:`launch`."""
        self.prepare()
        self.launch()

    def built_later(self, chained_pid: int | None) -> bool:
        """Whether the event may be built in a detached process (after git went on).

        Not with a chained hook (its exit status is part of the event), not
        for a handler without ``facts``, and not when there is a conflict to
        follow up (that reads and writes state git changes as it goes on).
        """
        from gitaudit.capture import hooks

        return (self.detach and chained_pid is None and self.handler is not None
                and self.handler.facts is not None and self.input is not None
                and not hooks.conflict_pending(self.input))

    def warm(self) -> pipeline.Pipeline:
        """Import and configure the pipeline while git answers the queries (another core)."""
        from gitaudit import pipeline

        if self.pipeline is None:
            self.pipeline = pipeline.Pipeline(self.settings)
        return self.pipeline

    def collect(self) -> None:
        """Wait for every started query (also when building failed: no zombies)."""
        from gitaudit.capture.gitcmd import GitCommandError

        running, self.running = self.running, {}
        for key, query in running.items():
            try:
                result = query.wait(check=False)
            except (GitCommandError, OSError):
                result = None
            if self.input is not None:
                self.input.results[key] = result

    def events(self, chained: tuple[str, int] | None) -> list[dict[str, Any]]:
        """The hook's event (if it records one) and any ``conflict.*`` events it saw."""
        from gitaudit import catalog
        from gitaudit.capture import context, gitstate, hooks

        if self.handler is None or self.input is None:
            return []
        record = self.handler.build(self.input)
        if record is None and self.input.name not in hooks.CONFLICT_HOOKS:
            return []
        params = self.params
        if params is None:
            params = gitstate.parse_config_z(self.input.output("config") or b"")
        environ = self.environ
        name, email = context.git_identity(environ, params)
        uid = os.getuid()
        actor = context.build_actor(
            uid=uid, user=context.os_user(environ, uid), host=os.uname().nodename,
            git_name=name, git_email=email, ci=context.ci_info(environ),
        )
        correlation_id = context.correlation_id(environ, catalog.uuid7)
        parent_id = context.parent_id(environ)
        found = [] if record is None else [hooks.hook_event(
            self.input, record, event_id=catalog.uuid7(), correlation_id=correlation_id,
            parent_id=parent_id, actor=actor, params=params, chained=chained,
        )]
        if found:
            found[0]["occurred_at"] = catalog.now_rfc3339(self.started)  # when the hook ran
        try:
            found += hooks.conflict_events(
                self.input, source_event=found[0] if found else None, actor=actor,
                params=params, correlation_id=correlation_id,
                parent_id=found[0]["id"] if found else parent_id,
            )
        except Exception as exc:  # noqa: BLE001 - the hook's own event is still delivered
            self.problems.append(f"conflict not recorded ({one_line(exc)})")
        return found

    def after_git(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """In a detached process: wait for the pushing git to end, then let the pre-push
        event say what the remote took (:func:`gitaudit.capture.hooks.settle_push`)."""
        pushing = self.input.facts.get("git_pid") if self.input is not None else None
        if pushing and events and self.input is not None:
            from gitaudit.capture import hooks

            wait_for_exit(pushing, _PUSH_WAIT)
            try:  # noqa: SIM105 - contextlib costs ~3 ms to import: not on the hot path
                hooks.settle_push(self.input, events[0])
            except Exception:  # noqa: BLE001, S110 - the event as built is still delivered
                pass
        return events

    def deliver(self, events: list[dict[str, Any]]) -> None:
        """Policy, sanitizer and transport; a problem becomes a warning, never an error."""
        delivery = self.warm().emit(events)
        if delivery is not None and delivery.warning:
            self.problems.append(delivery.warning)


def _record(recorder: Recorder, pid: int | None, chained: str | None,
            status: int | None = None) -> int:
    """Build and deliver the event while the chained hook runs; the chained hook's status.

    With :func:`detach_wanted` the work after the last read of anything git
    may change (arguments, stdin, environment, HEAD, the handler's facts, the
    chained hook's status, the time) goes to a detached process
    (:func:`detach`) and this one exits at once: for a handler with facts
    and no chained hook, right after :meth:`Recorder.prepare` (the git
    queries, build, sanitizing and delivery happen detached); otherwise once
    the event is built (sanitizing and delivery happen detached).
    """
    try:
        recorder.prepare()
        if recorder.built_later(pid):
            _record_detached(recorder)
            return 0  # the parent: git goes on (_record_detached returned: could not detach)
        recorder.launch()
        if not recorder.detach:
            recorder.warm()
    except Exception as exc:  # noqa: BLE001 - the audit must never change the hook's result
        recorder.problems.append(f"hook not recorded ({one_line(exc)})")
    finally:
        recorder.collect()
        if pid is not None:
            status = wait_status(pid)
    try:
        events = recorder.events((chained, status) if chained and status is not None else None)
        if events and not (recorder.detach
                           and detach(lambda: recorder.deliver(recorder.after_git(events)))):
            recorder.deliver(events)
    except Exception as exc:  # noqa: BLE001 - the audit must never change the hook's result
        recorder.problems.append(f"hook not recorded ({one_line(exc)})")
    return status or 0


def _record_detached(recorder: Recorder) -> None:
    """Queries, build and delivery in a detached process; inline if none can be started."""

    def work() -> None:
        recorder.launch()
        recorder.collect()
        events = recorder.events(None)
        if events:
            recorder.deliver(recorder.after_git(events))

    if not detach(work):
        try:
            work()
        finally:
            recorder.collect()


# --- detaching -----------------------------------------------------------------------------


def detach_wanted(settings: config.Settings, environ: Mapping[str, str]) -> bool:
    """Whether this hook hands its event to a detached child (setting ``hook_detach``).

    ``auto`` detaches except in CI jobs (a runner that kills the job's process
    group or cgroup when the job ends could kill the child before it delivered)
    and except when no daemon socket and no writable spool directory exist yet
    (delivery could fail, and only this process can still say so on stderr).
    """
    mode = settings.hook_detach
    if mode == "never" or not hasattr(os, "fork") or not hasattr(os, "setsid"):
        return False
    if mode == "always":
        return True
    from gitaudit.capture import context

    if context.ci_info(environ) is not None:
        return False
    if paths.events_socket(settings.runtime_dir) is not None:
        return True
    return os.access(settings.effective_spool_dir, os.W_OK | os.X_OK)


def detach(work: Callable[[], object]) -> bool:
    """Run ``work`` in a detached process; False (nothing started) if that cannot be done.

    Fork; the child starts a new session (``setsid``: no controlling terminal,
    none of the terminal's signals, not in git's process group), puts stdin,
    stdout and stderr on ``/dev/null``, closes every other descriptor (git's
    pipes, the user's terminal), lowers its priority, waits (a second at most)
    for git to exit so that it does not compete with the rest of the git
    command, runs ``work`` and exits; once this process has exited it belongs
    to init. (No second fork: it opens no terminal, so as a session leader it
    never gets a controlling one.) This process returns once the child has
    let go of the descriptors (the fork and a few system calls), so git goes
    on at once and a caller waiting for EOF on git's output is not held up.
    The same pipeline runs as inline (policy, sanitizer, daemon or spool, the
    emergency spool if the spool cannot be written); what the detached
    process cannot report (no stderr left) is lost, the event is not.
    """
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - contextlib costs ~3 ms to import: not on the hot path
            stream.flush()  # nothing buffered may be written twice
        except (OSError, ValueError):
            pass
    git = os.getppid()  # the process that runs this hook and waits for it
    released, release = os.pipe()  # EOF once the child holds none of our descriptors
    try:
        pid = os.fork()
    except OSError:
        os.close(released)
        os.close(release)
        return False
    if pid:
        os.close(release)
        try:
            os.read(released, 1)  # returns at EOF
        finally:
            os.close(released)
        return True  # init reaps the child once we are gone
    try:
        os.setsid()
        _quiet_stdio()  # also closes `release`
        try:  # noqa: SIM105 - contextlib costs ~3 ms to import: not on the hot path
            os.nice(_DETACHED_NICENESS)  # git, still running, comes first for the CPU
        except OSError:
            pass  # cannot lower the priority: run at git's
        wait_for_exit(git, _GIT_EXIT_WAIT)
        work()
    finally:
        os._exit(0)


def wait_for_exit(pid: int, timeout: float) -> None:
    """Wait until process ``pid`` has exited, at most ``timeout`` seconds.

    A detached hook waits for git this way: its queries and its pipeline then
    do not compete with the rest of the git command (a push's transfer) for
    the CPU. A pidfd where the kernel has them (Linux 5.3), else a poll.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # gone already
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        try:
            import select

            select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.005)


def _quiet_stdio() -> None:
    """stdin, stdout and stderr on /dev/null; every other descriptor closed."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if null != fd:
            os.dup2(null, fd)
    os.closerange(3, _MAX_FD)


def _start_chained(chained: str | None, script: str, args: Sequence[str],
                   stdin: bytes | None, problems: list[str]) -> int | None:
    if chained is None:
        return None
    argv = chained_argv(chained, script, args)
    try:
        return spawn_chained(argv, stdin)
    except OSError as exc:
        if argv[0] == chained and exc.errno == errno.ENOEXEC:  # git would run it with sh
            return spawn_chained(["/bin/sh", chained, *args], stdin)
        problems.append(f"cannot run {chained}: {exc.strerror or exc}")
        raise


def main(argv: Sequence[str], name: str | None = None) -> int:
    """``argv`` is [path of the hook script as git ran it, git's arguments...]; ``name`` the
    hook it is (from the script's content: a hook manager may have renamed the file)."""
    script, args = argv[0], list(argv[1:])
    name = name or os.path.basename(script)
    environ = os.environ
    settings, problem = load_settings(environ)
    problems = [problem] if problem else []
    refused = environ.pop(REFUSED_VARIABLE, None)
    if refused is not None:
        return record_refusal(name, args, refused, settings, problems)
    cwd = os.getcwd()
    try:
        chained = find_chained(os.path.dirname(os.path.abspath(script)), name, environ, cwd)
        if chained is not None and not chained.endswith(LEGACY_SUFFIX):
            script = chained  # chained from elsewhere: it runs as itself, as git would run it
    except Exception as exc:  # noqa: BLE001 - cannot look for the user's hook: report it
        problems.append(f"cannot look for the hook gitaudit chains to ({one_line(exc)})")
        chained = None
    this_run = f"{name} {running_git()}"
    recorded = environ.get(RECORDING_VARIABLE) == this_run  # by a gitaudit hook further up
    if chained is not None and (recorded or not settings.enabled or is_gitaudit_hook(chained)):
        # Nothing to record here: become the chained hook (a gitaudit one records itself).
        warn(problems)
        exec_argv = [chained, *args] if is_gitaudit_hook(chained) else chained_argv(
            chained, script, args
        )
        os.execv(exec_argv[0], exec_argv)  # noqa: S606 - the user's hook, argv as git gave it
    if recorded or not settings.enabled:
        warn(problems)
        return 0
    environ[RECORDING_VARIABLE] = this_run  # the chained hook's environment
    for signum in _QUIET_SIGNALS:  # the terminal signals git and the chained hook as well
        _signal.signal(signum, _signal.SIG_IGN)
    from gitaudit.capture.hooks import STDIN_HOOKS

    stdin = read_stdin() if name in STDIN_HOOKS else None
    try:
        pid = _start_chained(chained, script, args, stdin, problems)
    except OSError:
        warn(problems)
        return 126  # git itself would have failed to run the hook the same way
    recorder = Recorder(name, args, stdin or b"", settings, environ)
    status = _record(recorder, pid, chained)
    warn(problems + recorder.problems)
    return status


def record_refusal(name: str, args: Sequence[str], refused: str, settings: config.Settings,
                   problems: list[str]) -> int:
    """The hook script ran the chained ``name`` hook and it refused (``refused``: its exit
    status and path): record the operation it stopped; the status to exit with."""
    status_text, _, chained = refused.partition(" ")
    status = int(status_text) if status_text.isdigit() else 1
    if settings.enabled:
        recorder = Recorder(name, args, b"", settings, os.environ)
        _record(recorder, None, chained, status)
    else:
        recorder = None
    warn(problems + (recorder.problems if recorder else []))
    return status


def run(argv: Sequence[str], name: str | None = None) -> None:
    """The hook script's entry: :func:`main`, then exit at once with its status.

    Skipping the interpreter's shutdown (module teardown, final garbage
    collections: a few milliseconds) is safe here: every file this process
    wrote is closed and synced, and the standard streams are flushed first.
    """
    status = main(argv, name)
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - contextlib costs ~3 ms to import: not on the hot path
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed stream: nothing left to flush
    os._exit(status)
