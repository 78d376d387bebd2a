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


class _Builder:
    """Accumulates events into a :class:`Trace2Summary` (single pass)."""

    def __init__(self) -> None:
        self.root: str | None = None
        self.command: str | None = None
        self.exit_code: int | None = None
        self.signal: int | None = None
        self.root_errors: list[str] = []
        self.child_errors: list[str] = []
        self.alias: str | None = None
        self.alias_argv: list[str] | None = None
        self.worktree: str | None = None
        self.params_by_sid: dict[str, dict[str, str]] = {}
        self.sid_order: list[str] = []
        self.children: dict[int, Child] = {}

    def add(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        sid = _str(event.get("sid")) or ""
        if self.root is None and sid and "/" not in sid:
            self.root = sid
        handler = getattr(self, "_on_" + kind, None)
        if handler is not None:
            handler(event, sid, sid == self.root)

    def _on_error(self, event: dict[str, Any], sid: str, is_root: bool) -> None:
        del sid
        message = _str(event.get("msg"))
        errors = self.root_errors if is_root else self.child_errors
        if message and message not in errors:
            errors.append(message)

    def _on_cmd_name(self, event: dict[str, Any], sid: str, is_root: bool) -> None:
        del sid, is_root
        name = _str(event.get("name"))
        if self.command is None and name and not name.startswith("_"):
            self.command = name

    def _on_alias(self, event: dict[str, Any], sid: str, is_root: bool) -> None:
        del sid
        if is_root and self.alias is None:
            self.alias = _str(event.get("alias"))
            self.alias_argv = _str_list(event.get("argv"))

    def _on_def_repo(self, event: dict[str, Any], sid: str, is_root: bool) -> None:
        del sid
        worktree = _str(event.get("worktree"))
        if worktree and (is_root or self.worktree is None):
            self.worktree = worktree

    def _on_def_param(self, event: dict[str, Any], sid: str, is_root: bool) -> None:
        del is_root
        param, value = _str(event.get("param")), _str(event.get("value"))
        if param is None or value is None:
            return
        if sid not in self.params_by_sid:
            self.params_by_sid[sid] = {}
            self.sid_order.append(sid)
        self.params_by_sid[sid][param] = value

    def _on_exit(self, event: dict[str, Any], sid: str, is_root: bool) -> None:
        del sid
        if is_root:
            self.exit_code = _int(event.get("code"))

    _on_atexit = _on_exit

    def _on_signal(self, event: dict[str, Any], sid: str, is_root: bool) -> None:
        del sid
        if is_root:
            self.signal = _int(event.get("signo"))

    def _on_child_start(self, event: dict[str, Any], sid: str, is_root: bool) -> None:
        del sid
        child_id = _int(event.get("child_id"))
        if not is_root or child_id is None or len(self.children) >= MAX_CHILDREN:
            return
        self.children[child_id] = Child(
            child_id,
            _str(event.get("child_class")),
            _str_list(event.get("argv")),
            _str(event.get("hook_name")),
            None,
        )

    def _on_child_exit(self, event: dict[str, Any], sid: str, is_root: bool) -> None:
        del sid
        child_id = _int(event.get("child_id"))
        if is_root and child_id in self.children:
            self.children[child_id].exit_code = _int(event.get("code"))

    def params(self) -> dict[str, str]:
        """Config parameters of the root process, else of the first child that logged any."""
        if self.root in self.params_by_sid:
            return self.params_by_sid[self.root]
        return self.params_by_sid[self.sid_order[0]] if self.sid_order else {}

    def summary(self) -> Trace2Summary:
        return Trace2Summary(
            sid=self.root,
            command=self.command,
            exit_code=self.exit_code,
            signal=self.signal,
            # the root's own errors; else its children's (an alias or `pull` fails in a child)
            errors=self.root_errors or self.child_errors,
            alias=self.alias,
            alias_argv=self.alias_argv,
            worktree=self.worktree,
            params=self.params(),
            children=list(self.children.values()),
        )


def summarize(events: Iterable[dict[str, Any]]) -> Trace2Summary:
    """Fold decoded trace2 events (one git command and its children) into a summary."""
    builder = _Builder()
    for event in events:
        builder.add(event)
    return builder.summary()


def summarize_bytes(data: bytes) -> Trace2Summary:
    """Parse and summarize the raw contents of a trace2 event target."""
    return summarize(parse_events(data.splitlines()))


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
