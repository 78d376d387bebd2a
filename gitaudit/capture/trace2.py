"""Pure parsers of what git traces: trace2 event JSON lines and push packet traces.

No I/O here: the wrapper reads the bytes git wrote and hands them over; the
daemon will feed the same functions from its trace2 socket.

Trace2 event format (``GIT_TRACE2_EVENT``, see git's
``Documentation/technical/api-trace2.txt``): one JSON object per line, each
with ``event`` and ``sid``. A child git process's ``sid`` is its parent's sid,
``/``, then its own, so the process tree can be rebuilt from sids alone.
Events used here: ``version``, ``start``, ``exit``/``atexit`` (``code``),
``signal`` (``signo``), ``error`` (``msg``), ``cmd_name`` (``name``,
``hierarchy``), ``alias`` (``alias``, ``argv``), ``def_repo`` (``worktree``),
``def_param`` (``param``, ``value``; the last one of a key wins, scopes come
in increasing precedence), ``child_start``/``child_exit``.

:class:`ProcessTrace` folds one process's events as they arrive;
:func:`fold` summarizes the processes of one command (the wrapper reads them
from its trace file, the daemon from one socket connection per process);
:class:`Trace2Stream` is the bounded, incremental line splitter the daemon
feeds with socket bytes.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms to import; annotations are strings at runtime
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any

# Events that carry nothing the summary uses; skipped before JSON decoding.
_NOISE = (b'"event":"region_', b'"event":"data', b'"event":"thread_', b'"event":"timer')
MAX_CHILDREN = 50
ZERO_OID_CHARS = frozenset("0")


class Child:
    """A process the root git started (hook, sub-command, pager, transport)."""

    __slots__ = ("argv", "child_class", "child_id", "exit_code", "hook_name")

    def __init__(self, child_id: int, child_class: str | None, argv: list[str],
                 hook_name: str | None, exit_code: int | None) -> None:
        self.child_id = child_id
        self.child_class = child_class
        self.argv = argv
        self.hook_name = hook_name
        self.exit_code = exit_code


class Trace2Summary:
    """What one git command's trace2 events say about it."""

    __slots__ = ("alias", "alias_argv", "children", "command", "errors", "exit_code", "params",
                 "sid", "signal", "worktree")

    def __init__(
        self,
        *,
        sid: str | None,
        command: str | None,
        exit_code: int | None,
        signal: int | None,
        errors: list[str],
        alias: str | None,
        alias_argv: list[str] | None,
        worktree: str | None,
        params: dict[str, str],
        children: list[Child],
    ) -> None:
        self.sid = sid
        self.command = command
        self.exit_code = exit_code
        self.signal = signal
        self.errors = errors
        self.alias = alias
        self.alias_argv = alias_argv
        self.worktree = worktree
        self.params = params
        self.children = children


class _JSONLine:
    """``json.loads`` for one JSON document, without importing the :mod:`json` package.

    ``json`` imports :mod:`re` and, through it, ``enum``, ``functools`` and
    ``collections``: ~8 ms on every git command the wrapper records, more than
    half a bare interpreter start. This calls the same C scanner ``json.loads``
    runs (``_json.make_scanner``, given the settings of a default
    ``json.JSONDecoder``: strict, plain dicts, ``NaN``/``Infinity`` accepted),
    so it returns the same values and rejects the same input (``ValueError``).
    Where that scanner is missing or changed, it is ``json.loads`` itself.
    """

    __slots__ = ("array_hook", "object_hook", "object_pairs_hook", "parse_constant",
                 "parse_float", "parse_int", "scan", "strict")

    def __init__(self) -> None:
        # the attributes the C scanner reads from its "context" (a JSONDecoder normally)
        self.strict = True
        self.object_hook = self.object_pairs_hook = self.array_hook = None
        self.parse_float, self.parse_int = float, int
        constants = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}
        self.parse_constant = constants.__getitem__
        self.scan: Callable[[str, int], tuple[Any, int]] | None = None
        try:
            import _json

            self.scan = _json.make_scanner(self)  # type: ignore[arg-type]  # a duck-typed context
        except (ImportError, AttributeError, TypeError):
            self.scan = None  # not CPython, or another scanner API: use the json package

    def __call__(self, data: bytes) -> Any:
        """The value of one line; ValueError for anything else (nesting too deep included)."""
        try:
            return self._decode(data)
        except RecursionError:  # anyone may write to the daemon's trace2 socket
            raise ValueError("nested too deeply") from None

    def _decode(self, data: bytes) -> Any:
        if self.scan is None:
            import json

            return json.loads(data)
        # what json.loads does with UTF-8 bytes; JSON's whitespace may surround the value
        text = data.decode("utf-8", "surrogatepass").strip(" \t\n\r")
        try:
            value, end = self.scan(text, 0)
        except StopIteration as exc:
            raise ValueError(f"not JSON at character {exc.value}") from None
        if end != len(text):
            raise ValueError(f"extra data at character {end}")
        return value


_decoder: _JSONLine | None = None


def json_decoder() -> _JSONLine:
    """The JSON decoder, built on first use (nothing is done at import).

    Building it loads ``_json``'s shared library; the wrapper calls this while
    git runs so that the load overlaps git.
    """
    global _decoder  # noqa: PLW0603 - a lazily built module-level singleton
    if _decoder is None:
        _decoder = _JSONLine()
    return _decoder


def parse_events(lines: Iterable[bytes | str]) -> Iterator[dict[str, Any]]:
    """Decode trace2 event lines; skips blank, malformed and uninteresting (region/data) ones."""
    decode = json_decoder()
    for raw in lines:
        line = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
        line = line.strip()
        if not line or any(marker in line for marker in _NOISE):
            continue
        try:
            event = decode(line)
        except ValueError:
            continue  # a half-written line from a process that was killed mid-write
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            yield event


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_list(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


# Event kinds a process keeps once its detail was dropped (see :class:`Trace2Stream`): small,
# and what the record itself needs (who, where, what, how it ended).
ESSENTIAL_EVENTS = frozenset(
    {"version", "start", "cmd_name", "alias", "def_repo", "def_param", "exit", "atexit", "signal"}
)
# Event kinds that carry nothing a record uses; the stream skips them before decoding.
NOISE_EVENTS = frozenset(
    {"region_enter", "region_leave", "data", "data_json", "thread_start", "thread_exit",
     "timer", "th_timer", "counter", "th_counter", "printf", "too_many_files"}
)
MAX_ERRORS = 20
MAX_PARAMS = 200


class ProcessTrace:
    """What the trace2 events of ONE git process say (one ``sid``), folded as they arrive.

    Pure and incremental: :meth:`add` takes decoded events in the order git
    wrote them. The wrapper groups a whole command's events into these; the
    daemon keeps one per trace2 connection (git opens one per process).
    """

    __slots__ = ("alias", "alias_argv", "ancestry", "argv", "children", "command", "dropped",
                 "end_time", "errors", "exit_code", "exited", "hierarchy", "params", "sid",
                 "signal", "start_time", "t_abs_end", "version", "worktree")

    def __init__(self, sid: str | None = None) -> None:
        self.sid = sid
        self.version: str | None = None
        self.argv: list[str] = []
        self.start_time: str | None = None  # RFC 3339 text of "version" (process start)
        self.end_time: str | None = None  # RFC 3339 text of "atexit"
        self.t_abs_end: float | None = None  # seconds since the process started, at its end
        self.command: str | None = None
        self.hierarchy: str | None = None
        self.alias: str | None = None
        self.alias_argv: list[str] | None = None
        self.worktree: str | None = None
        self.params: dict[str, str] = {}
        self.errors: list[str] = []
        self.children: dict[int, Child] = {}
        self.ancestry: list[str] | None = None
        self.exit_code: int | None = None
        self.signal: int | None = None
        self.exited = False  # "atexit" (the last event git writes) or "signal" seen
        self.dropped = False  # detail past the byte bound was dropped

    def add(self, event: dict[str, Any]) -> None:
        """Fold one decoded event of this process in (unknown kinds are ignored)."""
        if self.sid is None:
            self.sid = _str(event.get("sid"))
        handler = _HANDLERS.get(event["event"])
        if handler is not None:
            handler(self, event)

    def drop_detail(self) -> None:
        """Forget what the record can do without (children, all but the first error)."""
        self.dropped = True
        self.children.clear()
        del self.errors[1:]

    def _on_version(self, event: dict[str, Any]) -> None:
        self.version = _str(event.get("exe"))
        self.start_time = _str(event.get("time"))

    def _on_start(self, event: dict[str, Any]) -> None:
        self.argv = _str_list(event.get("argv"))

    def _on_cmd_name(self, event: dict[str, Any]) -> None:
        if self.command is None:
            self.command = _str(event.get("name"))
            self.hierarchy = _str(event.get("hierarchy"))

    def _on_cmd_ancestry(self, event: dict[str, Any]) -> None:
        self.ancestry = _str_list(event.get("ancestry"))

    def _on_alias(self, event: dict[str, Any]) -> None:
        if self.alias is None:
            self.alias = _str(event.get("alias"))
            self.alias_argv = _str_list(event.get("argv"))

    def _on_def_repo(self, event: dict[str, Any]) -> None:
        worktree = _str(event.get("worktree"))
        if worktree and self.worktree is None:
            self.worktree = worktree

    def _on_def_param(self, event: dict[str, Any]) -> None:
        # scopes come in increasing precedence: the last value of a key wins
        param, value = _str(event.get("param")), _str(event.get("value"))
        if param is None or value is None:
            return
        if param in self.params or len(self.params) < MAX_PARAMS:
            self.params[param] = value

    def _on_error(self, event: dict[str, Any]) -> None:
        message = _str(event.get("msg"))
        if message and message not in self.errors and len(self.errors) < MAX_ERRORS:
            self.errors.append(message)

    def _on_exit(self, event: dict[str, Any]) -> None:
        self.exit_code = _int(event.get("code"))
        t_abs = event.get("t_abs")
        if isinstance(t_abs, int | float) and not isinstance(t_abs, bool):
            self.t_abs_end = float(t_abs)

    def _on_atexit(self, event: dict[str, Any]) -> None:
        self._on_exit(event)
        self.end_time = _str(event.get("time"))
        self.exited = True

    def _on_signal(self, event: dict[str, Any]) -> None:
        self.signal = _int(event.get("signo"))
        self.exited = True

    def _on_child_start(self, event: dict[str, Any]) -> None:
        child_id = _int(event.get("child_id"))
        if child_id is None or self.dropped or len(self.children) >= MAX_CHILDREN:
            return
        self.children[child_id] = Child(
            child_id,
            _str(event.get("child_class")),
            _str_list(event.get("argv")),
            _str(event.get("hook_name")),
            None,
        )

    def _on_child_exit(self, event: dict[str, Any]) -> None:
        child_id = _int(event.get("child_id"))
        if child_id in self.children:
            self.children[child_id].exit_code = _int(event.get("code"))


_HANDLERS: dict[str, Callable[[ProcessTrace, dict[str, Any]], None]] = {
    name[len("_on_"):]: getattr(ProcessTrace, name)
    for name in dir(ProcessTrace)
    if name.startswith("_on_")
}


def fold(processes: Iterable[ProcessTrace], root: str | None) -> Trace2Summary:
    """Summarize the processes of one git command; ``root`` is the top-level process's sid.

    The command is the first real (not ``_run_...``) command name, so an
    alias or a dashed external names what it ran; errors are the root's, else
    its sub-processes'; config parameters and the worktree the root's, else
    those of the first process that reported any.
    """
    ordered = list(processes)
    top = next((proc for proc in ordered if proc.sid == root), None) if root else None
    others = [proc for proc in ordered if proc is not top]
    command = next(
        (proc.command for proc in ordered if proc.command and not proc.command.startswith("_")),
        None,
    )
    child_errors: list[str] = []
    for proc in others:
        child_errors += [message for message in proc.errors if message not in child_errors]
    worktree = top.worktree if top is not None and top.worktree else None
    params = top.params if top is not None and top.params else {}
    for proc in others:
        worktree = worktree or proc.worktree
        params = params or proc.params
    return Trace2Summary(
        sid=root if top is not None else None,
        command=command,
        exit_code=top.exit_code if top is not None else None,
        signal=top.signal if top is not None else None,
        errors=(top.errors if top is not None and top.errors else child_errors),
        alias=top.alias if top is not None else None,
        alias_argv=top.alias_argv if top is not None else None,
        worktree=worktree,
        params=params,
        children=list(top.children.values()) if top is not None else [],
    )


def summarize(events: Iterable[dict[str, Any]]) -> Trace2Summary:
    """Fold decoded trace2 events (one git command and its children) into a summary."""
    processes: dict[str, ProcessTrace] = {}
    root: str | None = None
    for event in events:
        sid = _str(event.get("sid")) or ""
        proc = processes.get(sid)
        if proc is None:
            proc = processes[sid] = ProcessTrace(sid)
            if root is None and sid:
                # the top process writes first (its children start later); its sid has a
                # "/" too when it runs under GIT_TRACE2_PARENT_SID (the wrapper, a hook)
                root = sid
        proc.add(event)
    return fold(processes.values(), root)


def summarize_bytes(data: bytes) -> Trace2Summary:
    """Parse and summarize the raw contents of a trace2 event target."""
    return summarize(parse_events(data.splitlines()))


_KIND_PREFIX = b'{"event":"'


def event_kind(line: bytes) -> str | None:
    """The ``event`` of a trace2 line without decoding it (git always writes it first)."""
    if not line.startswith(_KIND_PREFIX):
        return None
    end = line.find(b'"', len(_KIND_PREFIX))
    return line[len(_KIND_PREFIX):end].decode("ascii", "replace") if end > 0 else None


class Trace2Stream:
    """Feeds the bytes of one trace2 connection (one git process) into a :class:`ProcessTrace`.

    Bounded: at most ``line_limit`` bytes of an unfinished line are held (a
    longer line is skipped up to its newline), and once the lines kept add up
    to more than ``max_bytes`` the process's detail is dropped
    (:meth:`ProcessTrace.drop_detail`) and only :data:`ESSENTIAL_EVENTS` are
    decoded from then on. Noise (regions, data, timers) is skipped before
    decoding and never counts. Pure: the caller reads the socket.
    """

    __slots__ = ("detail_bytes", "line_limit", "max_bytes", "pending", "process", "skipping")

    ESSENTIAL_LINE_MAX = 16 * 1024

    def __init__(self, process: ProcessTrace, max_bytes: int,
                 line_limit: int = 1024 * 1024) -> None:
        self.process = process
        self.max_bytes = max_bytes
        self.line_limit = max(min(line_limit, max_bytes), self.ESSENTIAL_LINE_MAX)
        self.pending = b""
        self.skipping = False  # inside a line that outgrew line_limit
        self.detail_bytes = 0

    def buffered(self) -> int:
        """Bytes of unfinished line held right now."""
        return len(self.pending)

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes read from the connection."""
        lines = (self.pending + chunk).split(b"\n") if self.pending else chunk.split(b"\n")
        self.pending = lines.pop()
        for line in lines:
            if self.skipping:
                self.skipping = False  # the tail of an overlong line
                continue
            self._line(line)
        if len(self.pending) > self.line_limit:
            self.pending = b""
            self.skipping = True
            self._over_bound()

    def close(self) -> None:
        """The connection ended: a last line without newline is used if it is whole JSON."""
        if self.pending and not self.skipping:
            self._line(self.pending)
        self.pending = b""

    def _over_bound(self) -> None:
        if not self.process.dropped:
            self.process.drop_detail()

    def _line(self, line: bytes) -> None:
        kind = event_kind(line)
        if kind in NOISE_EVENTS or not line.strip():
            return
        if self.process.dropped:
            if kind not in ESSENTIAL_EVENTS or len(line) > self.ESSENTIAL_LINE_MAX:
                return
        else:
            self.detail_bytes += len(line)
            if self.detail_bytes > self.max_bytes:
                self._over_bound()
                if kind not in ESSENTIAL_EVENTS or len(line) > self.ESSENTIAL_LINE_MAX:
                    return
        try:
            event = json_decoder()(line)
        except ValueError:
            return  # a half-written line from a process that was killed mid-write
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            self.process.add(event)


class PushCommand:
    """One ref update that ``git push`` asked the remote to make, and the answer."""

    __slots__ = ("new", "old", "reason", "ref", "status")

    def __init__(self, ref: str, old: str | None, new: str | None, status: str | None,
                 reason: str | None) -> None:
        self.ref = ref
        self.old = old
        self.new = new
        self.status = status  # "ok", "ng" or None when no report arrived
        self.reason = reason

    def _key(self) -> tuple[str, str | None, str | None, str | None, str | None]:
        return (self.ref, self.old, self.new, self.status, self.reason)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PushCommand):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "PushCommand(ref={!r}, old={!r}, new={!r}, status={!r}, reason={!r})".format(
            *self._key()
        )


class PushPackets:
    """What a push's packet trace says: the remote's refs before, the commands, the answers."""

    __slots__ = ("advertised", "commands")

    def __init__(self, advertised: dict[str, str], commands: list[PushCommand]) -> None:
        self.advertised = advertised
        self.commands = commands


def _oid(text: str) -> str | None:
    """An object id, or None for the all-zero id (ref absent)."""
    return None if set(text) <= ZERO_OID_CHARS else text


def _packet_payload(line: str) -> tuple[str, str, str] | None:
    """Split a ``GIT_TRACE_PACKET`` line into (identity, direction, payload)."""
    _, marker, rest = line.partition("packet:")
    if not marker:
        return None
    rest = rest.lstrip()
    identity, _, payload = rest.partition(" ")
    if len(identity) < 2 or identity[-1] not in "<>":
        return None
    return identity[:-1], identity[-1], payload


_PUSH_IDENTITIES = frozenset({"push", "send-pack"})


def parse_push_packets(data: bytes) -> PushPackets:
    """Parse a ``GIT_TRACE_PACKET`` capture of ``git push`` (pure).

    Reads the lines the pushing side logged (identity ``push`` for ssh/file
    transports, ``send-pack`` for smart HTTP): the ref advertisement it
    received (``push<``), the update commands it sent (``push>`` ``old new
    ref``) and the per-ref report (``push< ok ref`` / ``ng ref reason``).
    """
    advertised: dict[str, str] = {}
    order: list[str] = []
    sent: dict[str, tuple[str | None, str | None]] = {}
    report: dict[str, tuple[str, str | None]] = {}
    for raw in data.splitlines():
        parsed = _packet_payload(raw.decode("utf-8", "replace"))
        if parsed is None or parsed[0] not in _PUSH_IDENTITIES:
            continue
        _, direction, payload = parsed
        payload = payload.split("\\0", 1)[0].strip()
        words = payload.split(" ")
        if direction == ">" and len(words) == 3 and len(words[0]) in (40, 64):
            if words[2] not in sent:
                order.append(words[2])
            sent[words[2]] = (_oid(words[0]), _oid(words[1]))
        elif direction == "<" and words[0] in ("ok", "ng") and len(words) >= 2:
            reason = " ".join(words[2:]) or None
            report[words[1]] = (words[0], reason)
        elif (
            direction == "<"
            and len(words) == 2
            and len(words[0]) in (40, 64)
            and words[1].startswith("refs/")
            and not words[1].endswith("^{}")
        ):
            advertised[words[1]] = words[0]
    commands = [
        PushCommand(ref, *sent[ref], *report.get(ref, (None, None))) for ref in order
    ]
    return PushPackets(advertised, commands)
