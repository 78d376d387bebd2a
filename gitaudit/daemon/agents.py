"""Which git operations an AI agent ran: claims proven by the process tree, joined by id.

A git process started by Claude Code *claims* the session in its environment
(:mod:`gitaudit.capture.agent`: the wrapper, the hooks and trace2's
``envVars`` carry ``actor.agent`` with ``verified: false, proof: "env"``). The
daemon proves or refuses the claim from what the kernel says, never from time
alone:

- **Ancestry.** Every client of the event socket and every trace2 connection
  comes with its pid (``SO_PEERCRED``). :func:`lineage` walks
  ``/proc/<pid>/stat`` up the parents, keeping each process's *start time*
  with its pid, so a pid the kernel reused is never taken for the process that
  had it before. A trace2 connection is walked when it connects (git may be
  gone when its record is assembled); a socket client while it waits for its
  answer.
- **Session binding.** Claude Code runs its hook commands (``gitaudit
  claude-code-hook``, events of source ``claude_code``) as its own children
  (under ``/bin/sh -c``). The first ancestor of such a hook that is a Claude
  Code process (:func:`is_claude_code`: its executable or ``argv[0]`` is
  named ``claude``/``claude.exe``, or its command line runs
  ``@anthropic-ai/claude-code``) is bound to the hook's ``session_id``:
  ``(pid, start time) -> sessions`` in a bounded, expiring in-memory map.
- **Join** (:meth:`AgentTracker.join`, for ``git.*``, ``ref.update`` and
  ``conflict.*``): the first ancestor of the git process that is a bound
  Claude Code process proves the session. A claim naming a session bound to
  it (and, when ``CLAUDE_PID`` was claimed, naming that very process) becomes
  ``verified: true, proof: "ancestry"``; a claim that disagrees stays
  unverified and is counted as a mismatch; no claim but such an ancestor sets
  the agent from the ancestry. Proven events get ``correlation_id`` = the
  session id and, when they had no parent, ``parent_id`` = the tool call's
  event id when known, else the session's. Events without a peer (spools) keep
  their claim unverified. No proof, no ``verified`` agent (fail closed); every
  outcome is counted in ``gitaudit_agent_joins_total{result}``. Git hooks under
  an agent deliver inline (``hook_detach`` ``auto``): a detached child has
  left the process tree.
- **Tool call.** Claude Code's Bash tool runs each command in a shell that is
  the Claude Code process's direct child: the *tool process* of every git
  event under it. ``PostToolUse`` for a Bash call arrives from a hook spawned
  right after the call ended, with ``duration_ms``: the call ran within
  ``[spawn - duration, spawn]`` (spawn: the start time of the hook's process
  below Claude Code). The call's ``tool_use_id`` is given to the git events of
  a tool process of the *same proven session* that started in that window
  (with :data:`WINDOW_BEFORE` of slack) and has ended, only when exactly one
  such tool process (not claimed by another call) exists and no other Bash
  call of the session overlaps ``[spawn - duration, spawn]`` (Claude Code
  waits for the hook before its next call, so sequential calls never do;
  else it is left out and counted ``ambiguous``). The session is proven by
  ids; the tool call by the tool process's lifetime inside the session.
  Records are append-only, so the link is written where it can be: the
  ``claude.tool_use`` event lists the ids of git events already seen
  (``details.git_event_ids``), and a git event arriving after the call's
  ``PostToolUse`` carries ``actor.agent.tool_use_id`` itself.
- **Conflicts.** A ``conflict.resolved`` proven to a session names it
  (``details.session_id``); each of its files that the agent staged (a proven
  ``git add`` of it in that session) and either edited with an
  Edit/Write/MultiEdit/NotebookEdit tool call or resolved by hand
  (``manual``) becomes ``resolution: "claude"``.

Everything here is best effort on Linux ``/proc``; without it nothing is
proven and every claim stays a claim.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from gitaudit.capture.agent import TOOL
from gitaudit.claude.ids import session_event_id, tool_use_event_id
from gitaudit.daemon.api import Peer

Proc = tuple[int, int]  # (pid, start time in clock ticks since boot)

MAX_DEPTH: Final = 64  # ancestors walked at most
CLAUDE_NAMES: Final = frozenset({"claude", "claude.exe"})
CLAUDE_PACKAGE: Final = "@anthropic-ai/claude-code"
SOURCE: Final = "claude_code"
JOINED_PREFIXES: Final = ("git.", "conflict.")
EDIT_TOOLS: Final = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit"})
SHELL_TOOLS: Final = frozenset({"Bash"})
# seconds a tool process may have started before (hook spawn - duration): /proc start
# times tick at 10 ms, and Claude Code spawns the hook a moment after the call ended
WINDOW_BEFORE: Final = 0.25
WINDOW_AFTER: Final = 0.02
ALL_PATHS: Final = "*"
AGENT_KEYS: Final = ("tool", "session_id", "version", "claude_pid")
WALKS_KEPT: Final = 1_024  # ancestries remembered, per (pid, start time)
EXPIRY_INTERVAL: Final = 60.0  # seconds between sweeps for ended Claude Code processes
RESULTS: Final = ("verified", "ancestry", "claim_unproven", "mismatch", "tool_use", "ambiguous")


# --- /proc ---------------------------------------------------------------------------------


def read_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in ticks) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return int(fields[1]), int(fields[19])
    except (IndexError, ValueError):
        return None


def alive(proc: Proc) -> bool:
    """Whether the process ``(pid, start)`` still runs (a reused pid is another process)."""
    found = read_stat(proc[0])
    return found is not None and found[1] == proc[1]


def lineage(pid: int) -> tuple[Proc, ...]:
    """``(pid, start)`` of ``pid`` and its ancestors, nearest first (empty if it is gone)."""
    chain: list[Proc] = []
    while pid > 1 and len(chain) < MAX_DEPTH:
        found = read_stat(pid)
        if found is None:
            break
        chain.append((pid, found[1]))
        pid = found[0]
    return tuple(chain)


def is_claude_code(pid: int) -> bool:
    """Whether ``pid`` runs Claude Code: its executable or ``argv[0]`` is named
    ``claude``/``claude.exe``, or its command line runs the npm package."""
    try:
        exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        exe = ""
    if exe in CLAUDE_NAMES:
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read(8192).split(b"\0")
    except OSError:
        return False
    if os.path.basename(argv[0].decode("utf-8", "replace")) in CLAUDE_NAMES:
        return True
    return any(CLAUDE_PACKAGE.encode() in arg for arg in argv[1:3])


class _Clock:
    """Start times in ticks since boot as epoch seconds."""

    def __init__(self) -> None:
        self.hertz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def epoch(self, ticks: int) -> float:
        boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        return boot + ticks / self.hertz


# --- state ---------------------------------------------------------------------------------


@dataclass
class _ToolProcess:
    start: float  # epoch seconds
    git_ids: list[str] = field(default_factory=list)
    tool_use_id: str | None = None


@dataclass
class _Call:
    tool_use_id: str
    began: float  # hook spawn - duration: what overlaps another call is decided on this
    ended: float  # the hook's spawn (Claude Code waits for it before its next call)
    process: Proc | None = None
    ambiguous: bool = False

    @property
    def low(self) -> float:
        """Earliest start of a tool process of this call (with /proc's tick and latency)."""
        return self.began - WINDOW_BEFORE

    @property
    def high(self) -> float:
        """Latest start of a tool process of this call."""
        return self.ended + WINDOW_AFTER


@dataclass
class _Session:
    seen: float
    tools: OrderedDict[Proc, _ToolProcess] = field(default_factory=OrderedDict)
    calls: list[_Call] = field(default_factory=list)
    added: dict[str, set[str]] = field(default_factory=dict)  # repo path -> staged paths
    edited: set[str] = field(default_factory=set)  # absolute paths of edited files


@dataclass
class _Pending:
    session: str
    tool: Proc | None


class AgentTracker:
    """Claude Code processes and their sessions, as the daemon proved them (in memory).

    ``count(result)`` is told every join outcome (:data:`RESULTS`).
    """

    def __init__(
        self,
        count: Callable[[str], None] | None = None,
        *,
        ttl: float = 12 * 3600.0,
        max_agents: int = 1_000,
        max_sessions: int = 1_000,
        max_tools: int = 256,
        max_ids: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.count = count or (lambda result: None)
        self.ttl = ttl
        self.max_agents = max_agents
        self.max_sessions = max_sessions
        self.max_tools = max_tools
        self.max_ids = max_ids
        self.clock = clock
        self.ticks = _Clock()
        self.agents: OrderedDict[Proc, tuple[list[str], float]] = OrderedDict()
        self.sessions: OrderedDict[str, _Session] = OrderedDict()
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._next_expiry = 0.0
        self._walks: OrderedDict[Proc, tuple[Proc, ...]] = OrderedDict()

    @property
    def active(self) -> bool:
        """Whether any Claude Code process is bound (else no git event can be proven)."""
        return bool(self.agents)

    def with_lineage(self, peer: Peer | None) -> Peer | None:
        """``peer`` with its ancestry read now, when some agent is bound (trace2 connects)."""
        if peer is None or not self.active:
            return peer
        return Peer(peer.pid, peer.uid, peer.gid, self.lineage(peer.pid))

    def lineage(self, pid: int) -> tuple[Proc, ...]:
        """:func:`lineage`, remembered per process (pid and start time): a client that
        sends many events, or many connections of one process, cost one read each."""
        found = read_stat(pid)
        if found is None:
            return ()
        key = (pid, found[1])
        chain = self._walks.get(key)
        if chain is None:
            chain = self._walks[key] = lineage(pid)
            while len(self._walks) > WALKS_KEPT:
                self._walks.popitem(last=False)
        return chain

    # -- entry point for the intake --

    def process(self, event: dict[str, Any], peer: Peer | None, source: str) -> dict[str, Any]:
        """``event`` with the agent proven, refused or joined (a copy when changed)."""
        operation = str(event.get("operation") or "")
        if event.get("source") == SOURCE and operation.startswith("claude."):
            return self._observe(event, peer)
        if operation.startswith(JOINED_PREFIXES) or operation == "ref.update":
            return self.join(event, peer, source)
        return event

    def accepted(self, event_id: str) -> None:
        """A joined git event passed de-duplication: list it under its tool process."""
        pending = self._pending.pop(event_id, None)
        if pending is None or pending.tool is None:
            return
        session = self.sessions.get(pending.session)
        tool = session.tools.get(pending.tool) if session is not None else None
        if tool is not None and len(tool.git_ids) < self.max_ids:
            tool.git_ids.append(event_id)

    def dropped(self, event_id: str) -> None:
        """A joined event was not accepted (duplicate, refused): forget it."""
        self._pending.pop(event_id, None)

    # -- Claude Code's own events: bindings, tool calls, edits --

    def _chain(self, peer: Peer | None) -> tuple[Proc, ...]:
        if peer is None:
            return ()
        return peer.lineage if peer.lineage is not None else self.lineage(peer.pid)

    def _observe(self, event: dict[str, Any], peer: Peer | None) -> dict[str, Any]:
        found = event.get("details")
        if not isinstance(found, dict):
            return event
        session_id = found.get("session_id")
        chain = self._chain(peer)
        agent_at = next((i for i, proc in enumerate(chain) if is_claude_code(proc[0])), None)
        if not isinstance(session_id, str) or not session_id or agent_at is None:
            return event
        self._bind(chain[agent_at], session_id)
        session = self._session(session_id)
        if event.get("operation") != "claude.tool_use" or found.get("phase") != "result":
            return event
        tool = found.get("tool")
        if tool in EDIT_TOOLS:
            path = _file_path(found.get("input"))
            if path and len(session.edited) < self.max_tools:
                session.edited.add(os.path.normpath(path))
            return event
        tool_use_id = found.get("tool_use_id")
        if tool not in SHELL_TOOLS or not isinstance(tool_use_id, str) or not tool_use_id:
            return event
        spawned = chain[agent_at - 1] if agent_at > 0 else chain[0]
        ended = self.ticks.epoch(spawned[1])
        duration = found.get("duration_ms", event.get("duration_ms"))
        seconds = duration / 1000 if isinstance(duration, int | float) and duration > 0 else 0.0
        call = _Call(tool_use_id, ended - seconds, ended)
        ids = self._attribute(session, call)
        if ids is None:
            return event
        return {**event, "details": {**found, "git_event_ids": ids}}

    def _attribute(self, session: _Session, call: _Call) -> list[str] | None:
        """The git event ids of the call's tool process (None: not attributable now)."""
        overlapping = [
            other for other in session.calls
            if other.tool_use_id != call.tool_use_id
            and other.began < call.ended and call.began < other.ended
        ]  # fmt: skip
        session.calls = [c for c in session.calls if c.tool_use_id != call.tool_use_id]
        session.calls.append(call)
        del session.calls[: -self.max_tools]
        if overlapping:
            call.ambiguous = True
            for other in overlapping:
                other.ambiguous = True
            self.count("ambiguous")
            return None
        taken = {c.process for c in session.calls if c.process is not None}
        candidates = [
            proc for proc, tool in session.tools.items()
            if call.low <= tool.start <= call.high and tool.tool_use_id is None
            and proc not in taken and not alive(proc)
        ]  # fmt: skip
        if len(candidates) > 1:
            call.ambiguous = True
            self.count("ambiguous")
            return None
        if not candidates:
            return None  # its git events (if any) come later and find the call
        call.process = candidates[0]
        tool = session.tools[call.process]
        tool.tool_use_id = call.tool_use_id
        self.count("tool_use")
        return list(tool.git_ids)

    # -- git events --

    def join(self, event: dict[str, Any], peer: Peer | None, source: str) -> dict[str, Any]:
        """A git/ref/conflict event with its agent claim proven, refused or found."""
        actor = event.get("actor")
        if not isinstance(actor, dict):
            return event
        claim = _claim(actor.get("agent"))
        chain: tuple[Proc, ...] = ()
        if peer is not None and self.active:
            chain = peer.lineage if peer.lineage is not None else (
                self.lineage(peer.pid) if source == "socket" else ()
            )
        bound = next(
            ((i, proc) for i, proc in enumerate(chain) if proc in self.agents), None
        )
        if bound is None:
            if claim is None:
                return event
            self.count("claim_unproven")
            return {**event, "actor": {**actor, "agent": claim}}
        at, agent_proc = bound
        sessions = self.agents[agent_proc][0]
        if claim is not None and (
            claim["session_id"] not in sessions
            or claim.get("claude_pid") not in (None, agent_proc[0])
        ):
            self.count("mismatch")
            return {**event, "actor": {**actor, "agent": claim}}
        session_id = claim["session_id"] if claim is not None else sessions[-1]
        agent = dict(claim) if claim is not None else {"tool": TOOL, "session_id": session_id}
        agent.update(verified=True, proof="ancestry")
        self.count("verified" if claim is not None else "ancestry")
        tool_proc = chain[at - 1] if at > 0 else None
        return self._joined(event, actor, agent, session_id, tool_proc)

    def _joined(self, event: dict[str, Any], actor: dict[str, Any], agent: dict[str, Any],
                session_id: str, tool_proc: Proc | None) -> dict[str, Any]:
        session = self._session(session_id)
        tool_use_id = None
        if tool_proc is not None:
            tool = session.tools.get(tool_proc)
            if tool is None:
                tool = session.tools[tool_proc] = _ToolProcess(self.ticks.epoch(tool_proc[1]))
                while len(session.tools) > self.max_tools:
                    session.tools.popitem(last=False)
            tool_use_id = tool.tool_use_id or self._call_for(session, tool_proc, tool)
        if tool_use_id is not None:
            agent["tool_use_id"] = tool_use_id
        joined = {**event, "actor": {**actor, "agent": agent}, "correlation_id": session_id}
        if event.get("parent_id") is None:
            joined["parent_id"] = (
                tool_use_event_id(session_id, tool_use_id) if tool_use_id
                else session_event_id(session_id)
            )
        operation = str(event.get("operation"))
        if operation.startswith("conflict."):
            joined["details"] = self._conflict_details(event, session, session_id)
        elif operation.startswith("git."):
            self._note_staged(event, session)
            event_id = event.get("id")
            if isinstance(event_id, str):
                self._pending[event_id] = _Pending(session_id, tool_proc)
                while len(self._pending) > self.max_tools * 4:
                    self._pending.popitem(last=False)
        return joined

    def _call_for(self, session: _Session, proc: Proc, tool: _ToolProcess) -> str | None:
        """The one Bash call already reported whose window holds this tool process's start."""
        matching = [c for c in session.calls if c.low <= tool.start <= c.high]
        if len(matching) != 1:
            if matching:
                self.count("ambiguous")
            return None
        call = matching[0]
        if call.ambiguous or call.process not in (None, proc) or alive(proc):
            return None
        call.process = proc
        tool.tool_use_id = call.tool_use_id
        self.count("tool_use")
        return call.tool_use_id

    # -- conflicts resolved by the agent --

    def _note_staged(self, event: dict[str, Any], session: _Session) -> None:
        found = event.get("details") or {}
        repo = event.get("repo") or {}
        if found.get("subcommand") != "add" or not isinstance(repo.get("path"), str):
            return
        if event.get("outcome") != "success":
            return
        staged = session.added.setdefault(repo["path"], set())
        staged.update(_staged_paths(found.get("argv")))
        if len(staged) > self.max_tools:
            staged.clear()
            staged.add(ALL_PATHS)

    def _conflict_details(self, event: dict[str, Any], session: _Session,
                          session_id: str) -> dict[str, Any]:
        found = dict(event.get("details") or {})
        found["session_id"] = session_id
        repo = event.get("repo") or {}
        root = repo.get("path") if isinstance(repo.get("path"), str) else None
        files = found.get("files")
        if event.get("operation") != "conflict.resolved" or root is None or not isinstance(
            files, list
        ):
            return found
        staged = session.added.get(root, set())
        found["files"] = [_by_agent(item, root, staged, session.edited) for item in files]
        return found

    # -- bookkeeping --

    def _bind(self, proc: Proc, session_id: str) -> None:
        now = self.clock()
        sessions = self.agents.pop(proc, ([], now))[0]
        if session_id in sessions:
            sessions.remove(session_id)
        sessions.append(session_id)
        del sessions[:-8]  # /clear and resume start new sessions in the same process
        self.agents[proc] = (sessions, now)
        if now >= self._next_expiry:  # a walk over every bound process: not per event
            self._next_expiry = now + EXPIRY_INTERVAL
            self._expire(now)
        while len(self.agents) > self.max_agents:
            self.agents.popitem(last=False)

    def _session(self, session_id: str) -> _Session:
        now = self.clock()
        session = self.sessions.pop(session_id, None) or _Session(now)
        session.seen = now
        self.sessions[session_id] = session
        while len(self.sessions) > self.max_sessions:
            self.sessions.popitem(last=False)
        return session

    def _expire(self, now: float) -> None:
        for proc, (_, seen) in list(self.agents.items()):
            if now - seen > self.ttl or not alive(proc):
                del self.agents[proc]
        while self.sessions and now - next(iter(self.sessions.values())).seen > self.ttl:
            self.sessions.popitem(last=False)


def _claim(value: Any) -> dict[str, Any] | None:
    """A client's ``actor.agent`` as a claim: known keys only, never verified by itself."""
    if not isinstance(value, dict) or not isinstance(value.get("session_id"), str):
        return None
    if not value["session_id"]:
        return None
    claim = {key: value[key] for key in AGENT_KEYS if value.get(key) is not None}
    claim.setdefault("tool", TOOL)
    claim.update(verified=False, proof="env")
    return claim


def _file_path(value: Any) -> str | None:
    if isinstance(value, dict):
        path = value.get("file_path") or value.get("notebook_path")
        return path if isinstance(path, str) and os.path.isabs(path) else None
    return None


def _staged_paths(argv: Any) -> set[str]:
    """What ``git add ARGS`` staged, as written (:data:`ALL_PATHS` for ``-A``, ``.``, none)."""
    args = [str(arg) for arg in argv[1:]] if isinstance(argv, list) else []
    paths: set[str] = set()
    options = True
    for arg in args:
        if options and arg == "--":
            options = False
        elif options and arg.startswith("-"):
            if arg in {"-A", "--all", "-u", "--update"}:
                paths.add(ALL_PATHS)
        else:
            paths.add(os.path.normpath(arg))
    return paths or {ALL_PATHS}


def _by_agent(item: Any, root: str, staged: set[str], edited: set[str]) -> Any:
    """A resolved file as ``claude`` when the agent staged it and edited or merged it."""
    if not isinstance(item, dict) or not isinstance(item.get("path"), str):
        return item
    path = item["path"]
    changed = os.path.normpath(os.path.join(root, path)) in edited
    if _staged(path, staged) and (changed or item.get("resolution") == "manual"):
        return {**item, "resolution": "claude"}
    return item


def _staged(path: str, staged: Iterable[str]) -> bool:
    for item in staged:
        if item in {ALL_PATHS, "."} or item == path:
            return True
        if path.startswith(item.rstrip("/") + "/") or path.endswith("/" + item):
            return True
    return False
