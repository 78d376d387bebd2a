"""The trace2 receiver: every git process on the host, heard through git's own event stream.

git writes trace2 events (``trace2.eventTarget=af_unix:stream:<runtime>/trace2.sock``)
with plain blocking writes and no timeout, one connection per git process. So
the receiver reads every connection continuously whatever happens downstream:

- **Reading** (:meth:`Trace2Receiver.handle`) feeds bytes into a bounded
  :class:`gitaudit.capture.trace2.Trace2Stream` and never awaits anything but
  the socket. Past ``trace2_max_bytes`` a process's detail is dropped (and
  counted in ``metrics.trace2_dropped``); reading goes on.
- **Assembly** (:class:`Assembler`, pure, clock passed in) folds nested git
  processes (sid ``<root>/<child>``) into their top-level command and says
  when a command is complete: its top-level process exited (``atexit``) or
  its connection closed, every known nested process too, and nothing was
  heard from the group for a short grace period (a nested process's
  connection may still be queued); or ``max_wait`` after the top-level
  process ended, whatever is still open (background helpers).
- **Records** (:func:`build_event`) have the wrapper's event shape, built with
  the same functions (:mod:`gitaudit.capture.record`).
- **Delivery** runs in its own task with a bounded backlog: a stalled intake
  delays records, never git.

:class:`Deduper` lets the intake keep one ``git.*`` event per git command
when the wrapper, hooks and trace2 all saw it, and one ending per conflict.

**Conflicts** (:class:`ConflictTracker`): after a ``merge``, ``rebase``,
``cherry-pick``, ``revert``, ``pull`` or ``am`` that failed with unmerged
index entries, the daemon records ``conflict.detected`` (parent: that
command's event, same correlation id) and keeps the conflict's stages in
memory; a later command in that repository that concludes it (``commit``,
``--continue``) records ``conflict.resolved``, one that ends it without a
commit (``--abort``, ``--skip``) ``conflict.aborted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import structlog

from gitaudit import catalog
from gitaudit.capture import context, details, gitstate, record
from gitaudit.capture.trace2 import ProcessTrace, Trace2Stream, fold
from gitaudit.capture.watcher import ActivityLog, epoch_of, may_write_refs
from gitaudit.config import Settings
from gitaudit.daemon.api import Intake, Peer
from gitaudit.daemon.metrics import Metrics

SOURCE = "trace2"
READ_CHUNK = 64 * 1024
COALESCE_SECONDS = 0.002  # far below what fills a socket buffer: git never waits on it
MAX_LISTED = 50  # children and nested processes listed in details
_TALKING = frozenset({"fetch", "pull", "push"})

log = structlog.get_logger("gitaudit.trace2")


# --- one connection = one git process --------------------------------------------------


class Connection:
    """One trace2 connection: the process it describes, its stream, who is on the other end."""

    __slots__ = ("absorbed", "closed", "done_at", "ended_wall", "peer", "process", "registered",
                 "started_wall", "stream")

    def __init__(self, peer: Peer | None, max_bytes: int, wall: float) -> None:
        self.peer = peer
        self.process = ProcessTrace()
        self.stream = Trace2Stream(self.process, max_bytes)
        self.started_wall = wall  # when the first bytes came (fallback start time)
        self.ended_wall: float | None = None
        self.closed = False
        self.done_at: float | None = None  # monotonic: atexit seen or connection closed
        self.registered = False
        self.absorbed = False  # part of a command already recorded

    @property
    def sid(self) -> str | None:
        """The process's trace2 session id, once its first event arrived."""
        return self.process.sid

    @property
    def done(self) -> bool:
        """The process ended (atexit/signal seen) or its connection closed."""
        return self.done_at is not None

    @property
    def killed(self) -> bool:
        """The connection closed without the process saying how it ended."""
        return self.closed and not self.process.exited and self.process.exit_code is None


def _ancestors(sid: str) -> list[str]:
    """``a/b/c`` -> ``["a/b", "a"]`` (nearest first)."""
    parts = sid.split("/")
    return ["/".join(parts[:depth]) for depth in range(len(parts) - 1, 0, -1)]


class Group:
    """A complete top-level git command: its process and the nested git processes under it."""

    __slots__ = ("nested", "top")

    def __init__(self, top: Connection, nested: list[Connection]) -> None:
        self.top = top
        self.nested = nested


class Assembler:
    """Folds processes into commands and says when each is complete (pure; time passed in).

    ``now`` values are monotonic seconds. A process is top-level if no
    ancestor sid belongs to a process heard of; this is decided when the
    command is emitted, so a parent whose first line arrives after its
    child's still adopts it.
    """

    def __init__(self, grace: float = 0.25, max_wait: float = 30.0,
                 remembered: int = 10_000) -> None:
        self.grace = grace
        self.max_wait = max_wait
        self.by_sid: dict[str, Connection] = {}
        self.buckets: dict[str, list[Connection]] = {}  # by root sid (first component)
        self.activity: dict[str, float] = {}  # bucket -> last time something happened in it
        self.emitted: dict[str, None] = {}  # top-level sids recorded (insertion-ordered LRU)
        self.remembered = remembered

    # -- what the connections report --

    def heard(self, conn: Connection, now: float) -> None:
        """``conn`` got bytes: register it once its sid is known; note a finished process."""
        sid = conn.sid
        if sid is None or conn.absorbed:
            return
        if not conn.registered:
            self._register(conn, sid)
            if conn.absorbed:
                return
        self.activity[_root(sid)] = now
        if conn.process.exited and conn.done_at is None:
            conn.done_at = now

    def closed(self, conn: Connection, now: float, wall: float) -> None:
        """``conn``'s connection closed (the process exited, or was killed)."""
        conn.closed = True
        conn.ended_wall = wall
        if conn.done_at is None:
            conn.done_at = now
        if conn.registered and conn.sid is not None:
            self.activity[_root(conn.sid)] = now

    def _register(self, conn: Connection, sid: str) -> None:
        if sid in self.emitted or any(parent in self.emitted for parent in _ancestors(sid)):
            conn.absorbed = True  # a late helper of a command already recorded
            return
        conn.registered = True
        self.by_sid.setdefault(sid, conn)
        self.buckets.setdefault(_root(sid), []).append(conn)

    # -- what is complete --

    def _is_top(self, conn: Connection) -> bool:
        sid = conn.sid or ""
        return not any(parent in self.by_sid for parent in _ancestors(sid))

    def _ready(self, top: Connection, members: list[Connection], quiet_since: float,
               now: float) -> bool:
        if top.done_at is None:
            return False
        if now - top.done_at >= self.max_wait:
            return True
        return all(member.done for member in members) and now - quiet_since >= self.grace

    def due(self, now: float, *, everything: bool = False) -> list[Group]:
        """Commands complete at ``now`` (all of them with ``everything``: shutdown)."""
        groups: list[Group] = []
        for root in list(self.buckets):
            groups += self._due_in(root, now, everything)
        return groups

    def _due_in(self, root: str, now: float, everything: bool) -> list[Group]:
        members = self.buckets[root]
        found: list[Group] = []
        for top in [conn for conn in members if self._is_top(conn)]:
            prefix = (top.sid or "") + "/"
            nested = [conn for conn in members if (conn.sid or "").startswith(prefix)]
            if everything or self._ready(top, nested, self.activity.get(root, now), now):
                found.append(Group(top, nested))
        for group in found:
            self._forget(group)
        return found

    def _forget(self, group: Group) -> None:
        top_sid = group.top.sid or ""
        self.emitted[top_sid] = None
        while len(self.emitted) > self.remembered:
            del self.emitted[next(iter(self.emitted))]
        root = _root(top_sid)
        gone = {id(group.top), *(id(conn) for conn in group.nested)}
        for conn in (group.top, *group.nested):
            conn.absorbed = True
            if self.by_sid.get(conn.sid or "") is conn:
                del self.by_sid[conn.sid or ""]
        left = [conn for conn in self.buckets[root] if id(conn) not in gone]
        if left:
            self.buckets[root] = left
        else:
            del self.buckets[root]
            self.activity.pop(root, None)

    def next_check(self) -> float | None:
        """The earliest monotonic time at which :meth:`due` may find something, or None."""
        times: list[float] = []
        for root, members in self.buckets.items():
            for top in members:
                if top.done_at is None or not self._is_top(top):
                    continue
                prefix = (top.sid or "") + "/"
                deadline = top.done_at + self.max_wait
                if all(conn.done for conn in members if (conn.sid or "").startswith(prefix)):
                    deadline = min(deadline, self.activity.get(root, top.done_at) + self.grace)
                times.append(deadline)
        return min(times) if times else None

    def pending(self) -> int:
        """Processes heard of and not yet recorded."""
        return len(self.by_sid)


def _root(sid: str) -> str:
    return sid.split("/", 1)[0]


# --- the record ----------------------------------------------------------------------------


def _timing(conn: Connection) -> tuple[float, float | None]:
    """(start as epoch seconds, duration in ms) of a process, from git's clocks where it said."""
    proc = conn.process
    end = epoch_of(proc.end_time)
    if end is not None and proc.t_abs_end is not None:
        return end - proc.t_abs_end, round(proc.t_abs_end * 1000, 3)
    start = epoch_of(proc.start_time) or conn.started_wall
    if proc.t_abs_end is not None:
        return start, round(proc.t_abs_end * 1000, 3)
    if conn.ended_wall is not None:
        return start, round(max(conn.ended_wall - start, 0.0) * 1000, 3)
    return start, None


def _environment(processes: Iterable[ProcessTrace]) -> dict[str, str]:
    """Environment variables git reported (``trace2.envVars``: def_param keys without a dot)."""
    env: dict[str, str] = {}
    for proc in processes:
        for key, value in proc.params.items():
            if "." not in key:
                env.setdefault(key, value)
    return env


def _child_list(processes: Sequence[ProcessTrace]) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    for proc in processes:
        for child in proc.children.values():
            listed.append({"class": child.child_class, "hook": child.hook_name,
                           "argv": child.argv, "exit_code": child.exit_code})
    return listed[:MAX_LISTED]


def _nested_list(nested: Sequence[Connection]) -> list[dict[str, Any]]:
    return [
        {"sid": conn.sid, "command": conn.process.command, "argv": conn.process.argv,
         "exit_code": conn.process.exit_code, "killed": conn.killed}
        for conn in nested[:MAX_LISTED]
    ]


def _outcome(conn: Connection) -> tuple[str, int | None, str | None]:
    """(outcome, exit code, signal name) of the top-level process."""
    proc = conn.process
    if proc.signal is not None:
        return "failure", 128 + proc.signal, _signal_name(proc.signal)
    if conn.killed or proc.exit_code is None:
        return "failure", None, None
    return ("success" if proc.exit_code == 0 else "failure"), proc.exit_code, None


def _signal_name(signum: int) -> str:
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


def _resolve_remote(found: dict[str, Any], params: dict[str, str]) -> None:
    """Name the remote a fetch/pull/push without one talked to (origin), and its URL."""
    remote = found.get("remote")
    if remote is None and not found.get("all") and "remote.origin.url" in params:
        remote = found["remote"] = "origin"
    url = params.get(f"remote.{remote}.url") if remote else None
    found["url"] = details.strip_credentials(url) if url else (
        remote if remote and ("/" in remote or ":" in remote) else None
    )


def build_event(group: Group, *, host: str | None, error_max_chars: int) -> dict[str, Any]:
    """The ``git.*`` event of one complete top-level command (pure but for new ids/clock).

    Same shape as the wrapper's. ``repo.head_before`` stays null (trace2 does
    not say); ``head_after``/``branch`` are filled later by
    :func:`read_repo_state` when that is safe.
    """
    top = group.top.process
    processes = [top, *(conn.process for conn in group.nested)]
    summary = fold(processes, top.sid)
    argv = top.argv[1:] if top.argv else ([summary.command] if summary.command else [])
    inv, found = record.command_details(argv, summary.alias, summary.alias_argv)
    subcommand = inv.subcommand or summary.command
    found["subcommand"] = subcommand
    found.update(record.trace_details(summary))
    outcome, exit_code, signal = _outcome(group.top)
    _operation_details(found, subcommand, summary.params)
    found.update(_trace2_extras(group, processes, signal))
    env = _environment(processes)
    started, duration_ms = _timing(group.top)
    operation = catalog.operation_for(subcommand)
    return record.git_event(
        event_id=catalog.uuid7(),
        started=started,
        duration_ms=duration_ms,
        operation=operation,
        event_details=found,
        args=inv.args,
        outcome=outcome,
        source=SOURCE,
        correlation_id=context.correlation_id(env, lambda: _root(top.sid or catalog.uuid7())),
        parent_id=context.parent_id(env),
        actor=_actor(group.top.peer, host, env, summary.params),
        repo=_repo(summary.worktree, summary.params, subcommand, found),
        exit_code=exit_code,
        error=record.error_text(summary.errors, error_max_chars) if outcome != "success" else None,
    )


def _operation_details(found: dict[str, Any], subcommand: str | None,
                       params: dict[str, str]) -> None:
    if subcommand in _TALKING:
        _resolve_remote(found, params)
    if subcommand == "push":
        found.update(refs=[], refs_source="unavailable", commit_count=None)


def _trace2_extras(group: Group, processes: Sequence[ProcessTrace],
                   signal: str | None) -> dict[str, Any]:
    top = group.top.process
    extras: dict[str, Any] = {
        "git_version": top.version,
        "ancestry": top.ancestry,
        "children": _child_list(processes),
        "nested": _nested_list(group.nested),
    }
    if group.top.killed:
        extras["killed"] = True
    elif not group.top.done:
        extras["incomplete"] = True  # still running when the daemon stopped
    if signal is not None:
        extras["signal"] = signal
    if any(proc.dropped for proc in processes):
        extras["detail_dropped"] = True
    return extras


def _actor(peer: Peer | None, host: str | None, env: dict[str, str],
           params: dict[str, str]) -> dict[str, Any]:
    name, email = context.git_identity(env, params)
    actor = context.build_actor(
        uid=peer.uid if peer is not None else None,
        user=peer.user if peer is not None else None,
        host=host,
        git_name=name,
        git_email=email,
        ci=context.ci_info(env),
    )
    actor["verified"] = peer is not None  # uid from SO_PEERCRED
    return actor


def _repo(worktree: str | None, params: dict[str, str], subcommand: str | None,
          found: dict[str, Any]) -> dict[str, Any] | None:
    url = found.get("url") if subcommand == "clone" else None
    if worktree is None and url is None:
        return None
    return record.repo_object(worktree, params, url=url)


def read_repo_state(event: dict[str, Any], uid: int | None) -> None:
    """Fill ``repo.head_after``/``branch`` (and a commit's id) from the repository's files.

    Only when the repository belongs to the git process's own user (``uid``
    from SO_PEERCRED): the daemon never reads paths a client merely named.
    Plain file reads (no git process); read shortly after the command ended,
    so a later command may already have moved HEAD: best effort, documented.
    """
    repo = event.get("repo")
    path = repo.get("path") if isinstance(repo, dict) else None
    if not path or uid is None or not isinstance(repo, dict):
        return
    try:
        if os.stat(path).st_uid != uid:
            return
        layout = gitstate.discover(path, {})
        if layout is None:
            return
        head = gitstate.read_head(layout)
    except (OSError, gitstate.UnusualLayout, ValueError):
        return
    repo["head_after"] = head.oid
    repo["branch"] = record.short_branch(head.ref)
    if event["operation"] == "git.commit" and event["outcome"] == "success":
        event["details"]["commit"] = head.oid


# --- the receiver --------------------------------------------------------------------------


def _peer_of(writer: asyncio.StreamWriter) -> Peer | None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return None
    try:
        return Peer.of(sock)
    except (OSError, ValueError, AttributeError):
        return None


class Trace2Receiver:
    """Serves ``trace2.sock`` connections (one per git process) and delivers their records.

    The daemon core calls :meth:`handle` per connection and :meth:`shutdown`
    when stopping. Reading never waits for the intake: records queue in a
    bounded backlog (``settings.sink_backlog`` items at most; beyond that
    they are dropped and counted as rejected, reason ``backlog``) drained by
    one delivery task.
    """

    def __init__(self, intake: Intake, settings: Settings, metrics: Metrics, *,
                 grace: float = 0.25, max_wait: float = 30.0, batch: int = 100,
                 activity: ActivityLog | None = None) -> None:
        self.intake = intake
        self.activity = activity  # told which git processes run where (the repo watcher)
        self._tracked: dict[Connection, bool] = {}  # connection -> begun in the activity log
        self.settings = settings
        self.metrics = metrics
        self.assembler = Assembler(grace, max_wait)
        self.conflicts = ConflictTracker()
        self.batch = batch
        self.backlog: deque[tuple[dict[str, Any], Peer | None]] = deque()
        self.max_line_buffer = 0  # largest unfinished line held by any connection, in bytes
        self.delivered = 0
        self._host = os.uname().nodename
        self._connections: set[Connection] = set()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    # -- per connection --

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Drain one git process's trace2 connection until it closes (or the task is cancelled)."""
        self._start()
        loop = asyncio.get_running_loop()
        conn = Connection(_peer_of(writer), self.settings.trace2_max_bytes, time.time())
        self._connections.add(conn)
        try:
            while chunk := await reader.read(READ_CHUNK):
                self._feed(conn, chunk, loop.time())
                if len(chunk) < READ_CHUNK:
                    # drained: let git's next lines pile up a little instead of waking for
                    # each one (fewer wakeups on git's side); a full read never waits
                    await asyncio.sleep(COALESCE_SECONDS)
        except (ConnectionError, OSError):
            pass  # the process died mid-write: handled as a close
        except asyncio.CancelledError:
            # the daemon is stopping while git still runs: not a kill; shutdown()
            # records what was heard, marked incomplete
            self._connections.discard(conn)
            self._untrack(conn)
            writer.close()
            raise
        self._connections.discard(conn)
        conn.stream.close()
        self._feed(conn, b"", loop.time())
        self._untrack(conn)
        if not conn.absorbed:
            self.assembler.closed(conn, loop.time(), time.time())
        self._schedule()
        writer.close()

    def _feed(self, conn: Connection, chunk: bytes, now: float) -> None:
        was_dropped = conn.process.dropped
        if chunk:
            conn.stream.feed(chunk)
            self.max_line_buffer = max(self.max_line_buffer, conn.stream.buffered())
        if conn.process.dropped and not was_dropped:
            self.metrics.trace2_dropped.inc()
        was_done = conn.done
        self.assembler.heard(conn, now)
        if self.activity is not None and self._tracked.get(conn) is not False:
            self._track(conn, self.activity)
        if conn.done and not was_done:
            self._schedule()

    # -- git processes the repo watcher should know about --

    def _track(self, conn: Connection, activity: ActivityLog) -> None:
        """Tell the activity log a git process runs in its worktree (reads excepted)."""
        proc = conn.process
        reads = proc.command is not None and not may_write_refs(proc.command)
        begun = self._tracked.get(conn)
        if begun is None and proc.worktree:
            if reads:
                self._tracked[conn] = False
            else:
                activity.begin(conn, proc.worktree)
                self._tracked[conn] = True
        elif begun and reads:
            activity.forget(conn)
            self._tracked[conn] = False

    def _untrack(self, conn: Connection) -> None:
        """The process ended: its run becomes an interval in the activity log."""
        if self._tracked.pop(conn, False) and self.activity is not None:
            self.activity.end(conn)

    # -- assembly timing --

    def _schedule(self) -> None:
        when = self.assembler.next_check()
        if when is None or (self._timer_at is not None and self._timer_at <= when):
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = when
        self._timer = loop.call_at(max(when, loop.time()) + 0.001, self._sweep)

    def _sweep(self) -> None:
        self._timer = self._timer_at = None
        self._emit(self.assembler.due(asyncio.get_running_loop().time()))
        self._schedule()

    def _emit(self, groups: list[Group]) -> None:
        for group in groups:
            try:
                event = build_event(group, host=self._host,
                                    error_max_chars=self.settings.error_max_chars)
            except Exception:  # one odd trace must not stop the receiver (logged)
                log.exception("trace2_record_failed", sid=group.top.sid)
                continue
            if len(self.backlog) >= self.settings.sink_backlog:
                self.metrics.rejected.labels(source=SOURCE, reason="backlog").inc()
                continue
            self.backlog.append((event, group.top.peer))
        if groups and self._wakeup is not None:
            self._wakeup.set()

    # -- delivery --

    def _start(self) -> None:
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._deliver_forever())

    async def _deliver_forever(self) -> None:
        assert self._wakeup is not None  # noqa: S101 - set together with the task
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await self._deliver_backlog()

    async def _deliver_backlog(self) -> None:
        while self.backlog:
            peer = self.backlog[0][1]
            batch: list[dict[str, Any]] = []
            while self.backlog and self.backlog[0][1] == peer and len(batch) < self.batch:
                batch.append(self.backlog.popleft()[0])
            uid = peer.uid if peer is not None else None
            await asyncio.to_thread(_enrich, batch, uid, self.conflicts)
            try:
                await self.intake.accept(batch, peer=peer, source=SOURCE)
            except Exception:  # an intake failure loses this batch (logged), not the daemon
                log.exception("trace2_delivery_failed", events=len(batch))
                self.metrics.rejected.labels(source=SOURCE, reason="intake_error").inc(len(batch))
                continue
            self.delivered += len(batch)

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Record every command still pending (as far as heard), deliver, stop the task."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        self._emit(self.assembler.due(0.0, everything=True))
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._deliver_backlog(), timeout)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def stats(self) -> dict[str, int]:
        """Numbers for tests and diagnostics (open connections, buffers, backlog)."""
        return {
            "connections": len(self._connections),
            "pending_processes": self.assembler.pending(),
            "backlog": len(self.backlog),
            "delivered": self.delivered,
            "max_line_buffer": self.max_line_buffer,
        }


def _enrich(events: list[dict[str, Any]], uid: int | None,
            tracker: ConflictTracker | None = None) -> None:
    """Repository state for each record, and the conflict events they lead to (appended)."""
    for event in list(events):
        read_repo_state(event, uid)
        if tracker is not None:
            try:
                events.extend(tracker.after(event, uid))
            except Exception:  # a conflict we cannot follow must not cost the command's record
                log.exception("trace2_conflict_failed", id=event.get("id"))


# --- conflicts -----------------------------------------------------------------------------

_STOPPING = frozenset({"merge", "rebase", "cherry-pick", "revert", "pull", "am"})


class ConflictTracker:
    """Conflicts seen through trace2, one state per repository (in memory, bounded).

    Same lifecycle and state as the wrapper and hooks (:mod:`gitaudit.capture.conflicts`);
    the daemon keeps its states to itself (never in users' homes). Only
    repositories owned by the git process's user are read, as in
    :func:`read_repo_state`.
    """

    def __init__(self, max_repos: int = 10_000) -> None:
        self.max_repos = max_repos
        self.states: dict[str, dict[str, Any]] = {}
        # per repository, the stops whose conflict has ended (newest last): a marker git
        # leaves behind for one of them is never taken for a new stop
        self.ended: dict[str, list[tuple[str, str, int]]] = {}

    def after(self, event: dict[str, Any], uid: int | None) -> list[dict[str, Any]]:
        """The ``conflict.*`` events one assembled git command leads to (usually none)."""
        found = event.get("details") or {}
        subcommand = found.get("subcommand")
        repo_info = event.get("repo")
        path = repo_info.get("path") if isinstance(repo_info, dict) else None
        if not path or uid is None or not subcommand:
            return []
        stopped = subcommand in _STOPPING and event.get("outcome") == "failure"
        try:
            if os.stat(path).st_uid != uid:
                return []
            layout = gitstate.discover(path, {})
        except (OSError, ValueError):
            return []
        if layout is None:
            return []
        key = os.path.realpath(layout.git_dir)
        previous = self.states.get(key)
        if previous is None and not stopped:
            return []
        return self._observe(event, layout, key, previous, stopped)

    def _observe(self, event: dict[str, Any], layout: gitstate.Layout, key: str,
                 previous: dict[str, Any] | None, stopped: bool) -> list[dict[str, Any]]:
        from gitaudit.capture import conflicts, history

        repo = history.open_repository(layout.git_dir)
        head = gitstate.read_head(layout).oid
        argv = [str(arg) for arg in (event.get("details") or {}).get("argv") or []]
        action = next((flag[2:] for flag in ("--abort", "--skip") if flag in argv), None)
        if event.get("outcome") != "success":
            action = None

        def detect(stop: tuple[str, str, int]) -> list[dict[str, Any]]:
            # replayed in memory: the user may have resolved files by the time the record is
            # assembled (the index then no longer shows them); the index is the fallback
            return conflicts.replay(repo, stop[0], head, stop[1]) or conflicts.read_conflicts(
                layout)

        verdict, new = conflicts.observe(repo, layout, previous, head=head, action=action,
                                         detect=detect if stopped else None,
                                         ended=self.ended.get(key, ()))
        exit_code = (event.get("result") or {}).get("exit_code")
        made: list[dict[str, Any]] = []
        if verdict is not None and previous is not None:
            done = action or ("commit" if event.get("operation") == "git.commit" else "continue")
            operation, found = conflicts.concluded_details(
                repo, previous, verdict, str(event.get("operation")), action=done
            )
            made.append(conflicts.lifecycle_event(
                operation, found, source=SOURCE, state=previous, actor=event["actor"],
                repo=event.get("repo"), exit_code=exit_code,
            ))
            self._end(key, previous)
        if new is not None:
            stop, files = new
            state = conflicts.new_state(
                detected_id=conflicts.conflict_id(layout, stop),
                correlation_id=str(event.get("correlation_id")),
                operation=str(event.get("operation")), stop=stop, stopped_in=stop[0],
                head=head, files=files,
            )
            made.append(conflicts.lifecycle_event(
                "conflict.detected", conflicts.detected_details(state), source=SOURCE,
                state=state, actor=event["actor"], repo=event.get("repo"), exit_code=exit_code,
                event_id=state["detected_id"], parent_id=str(event.get("id")),
            ))
            self.states[key] = state
            while len(self.states) > self.max_repos:
                del self.states[next(iter(self.states))]
        return made

    def _end(self, key: str, state: dict[str, Any]) -> None:
        """Forget a conflict whose ending was recorded; remember its stop as ended."""
        self.states.pop(key, None)
        stop = gitstate.stop_key(state.get("stop"))
        if stop is None:
            return
        ended = [*self.ended.pop(key, []), stop][-gitstate.MAX_ENDED:]
        self.ended[key] = ended  # re-inserted: the least recently ended repository goes first
        while len(self.ended) > self.max_repos:
            del self.ended[next(iter(self.ended))]


# --- de-duplication across capture paths -------------------------------------------------


class _Seen:
    __slots__ = ("end", "expires", "source", "start")

    def __init__(self, source: str, start: float, end: float, expires: float) -> None:
        self.source = source
        self.start = start
        self.end = end
        self.expires = expires


def _interval(event: dict[str, Any]) -> tuple[float, float] | None:
    start = epoch_of(event.get("occurred_at"))
    if start is None:
        return None
    duration = event.get("duration_ms")
    seconds = duration / 1000 if isinstance(duration, int | float) and duration > 0 else 0.0
    return start, start + seconds


class Deduper:
    """One ``git.*`` event per git command, whichever capture paths (wrapper, hook, trace2) saw it.

    Two events are the same command when they come from different sources and
    share the trace2 session id (``details.trace2_sid``; a hook's is that of the git
    running it, from ``GIT_TRACE2_PARENT_SID``, and matches only an event of the
    same operation), or a trace2 record's
    session id starts with a wrapper event's id (the wrapper runs git with
    ``GIT_TRACE2_PARENT_SID`` set to it), or the repository
    path, argv and correlation id with overlapping run times (± ``tolerance``
    seconds); a hook's event (no argv) matches on repository path, operation
    and correlation id with its time inside the command's run. Entries live
    ``window`` seconds (and at most ``max_entries``). The intake calls
    :meth:`seen` before accepting a ``git.*`` event and :meth:`remember` after
    (or :meth:`is_duplicate`, which does both).
    """

    def __init__(self, window: float = 600.0, tolerance: float = 2.0,
                 max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.tolerance = tolerance
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[tuple[Any, ...], list[_Seen]] = {}
        self._order: deque[tuple[float, tuple[Any, ...]]] = deque()

    @staticmethod
    def _keys(event: dict[str, Any]) -> list[tuple[Any, ...]]:
        operation = str(event.get("operation", ""))
        if operation in {"conflict.resolved", "conflict.aborted"} and event.get("parent_id"):
            # every capture path names a stop's detected event the same way (its id is
            # derived from the stop): one ending per detected conflict, whoever saw it
            return [("conflict", event.get("parent_id"))]
        if not operation.startswith("git."):
            return []
        found = event.get("details") or {}
        repo = event.get("repo") or {}
        path, corr = repo.get("path"), event.get("correlation_id")
        keys: list[tuple[Any, ...]] = [("op", path, event.get("operation"), corr)]
        argv = found.get("argv")
        if isinstance(argv, list):
            keys.append(("argv", path, tuple(str(arg) for arg in argv), corr))
        sid = found.get("trace2_sid")
        if isinstance(sid, str) and sid:
            # a hook names the git that ran it, which may be doing something else
            # (post-checkout inside a rebase): a hook matches that sid's same operation only
            if event.get("source") != "hook":
                keys.append(("sid", sid))
            keys.append(("sid-op", sid, operation))
        # the wrapper runs git under GIT_TRACE2_PARENT_SID=<its event id>: the trace2
        # record of that git names the wrapper's event as the root of its session id
        if event.get("source") == "wrapper" and isinstance(event.get("id"), str):
            keys.append(("run", event["id"]))
        elif event.get("source") == "trace2" and isinstance(sid, str) and "/" in sid:
            keys.append(("run", _root(sid)))
        return keys

    def _matches(self, kind: str, entry: _Seen, event: dict[str, Any],
                 span: tuple[float, float]) -> bool:
        source = event.get("source")
        if kind == "conflict":
            return True
        if entry.source == source:
            return False
        if kind in {"sid", "sid-op", "run"}:
            return True
        if kind == "op" and "hook" not in {entry.source, source}:
            return False
        tol = self.tolerance
        return span[0] <= entry.end + tol and entry.start <= span[1] + tol

    def seen(self, event: dict[str, Any]) -> bool:
        """True if another source already delivered this git command within the window."""
        self._expire()
        span = _interval(event) or (0.0, 0.0)
        for key in self._keys(event):
            for entry in self._entries.get(key, ()):
                if self._matches(key[0], entry, event, span):
                    return True
        return False

    def is_duplicate(self, event: dict[str, Any]) -> bool:
        """:meth:`seen`, and :meth:`remember` the event when it is not a duplicate."""
        if self.seen(event):
            return True
        self.remember(event)
        return False

    def remember(self, event: dict[str, Any]) -> None:
        """Note an accepted event so that its twins from other sources are recognized."""
        keys = self._keys(event)
        if not keys:
            return
        start, end = _interval(event) or (0.0, 0.0)
        expires = self.clock() + self.window
        entry = _Seen(str(event.get("source")), start, end, expires)
        for key in keys:
            self._entries.setdefault(key, []).append(entry)
            self._order.append((expires, key))
        while len(self._order) > self.max_entries:
            self._drop_oldest()
        self._expire()

    def _expire(self) -> None:
        now = self.clock()
        while self._order and self._order[0][0] <= now:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, key = self._order.popleft()
        entries = self._entries.get(key)
        if entries:
            entries.pop(0)
            if not entries:
                del self._entries[key]
