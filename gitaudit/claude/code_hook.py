"""``gitaudit claude-code-hook``: one Claude Code hook payload (JSON on stdin) to events.

Claude Code runs the same command (``<python> -m gitaudit claude-code-hook``,
written by ``gitaudit claude-code install``) for every hook event it is
installed for; the event is the payload's ``hook_event_name``:

=====================  ==============================================================
hook event             event recorded (``source: claude_code``)
=====================  ==============================================================
SessionStart           ``claude.session``, ``phase: start``
SessionEnd             ``claude.session``, ``phase: end``
UserPromptSubmit       ``claude.prompt``, ``phase: submit``
Stop                   ``claude.prompt``, ``phase: stop`` (the turn the prompt began ended)
PostToolUse            ``claude.tool_use``, ``phase: result``, ``success: true``
PostToolUseFailure     ``claude.tool_use``, ``phase: result``, ``success: false``
anything else          nothing (PreToolUse, Notification, ... are not installed)
=====================  ==============================================================

Ids (:mod:`gitaudit.claude.ids`): ``correlation_id`` is the Claude Code
session id; the session's start (``startup``/``clear``), each prompt and each
tool call have name-based ids, so ``parent_id`` needs no lookup: prompt ->
session, tool use and stop -> prompt (session without a prompt id), session end
and a resumed or compacted start -> session.

What is kept: prompts as ``length`` (characters) and ``prompt_sha256`` (of the
UTF-8 text as received), the text only with ``capture_prompts``; tool inputs
as :func:`tool_input` says (Bash: the command line and description; edits:
the file path and byte sizes, contents only with ``capture_prompts``; other
tools: their keys with short scalar values); tool responses only as
``success``, ``interrupted``, an exit status and byte sizes. Every event then
goes through the usual pipeline (policy, messages hidden, the sanitizer,
:func:`gitaudit.limits.fit`) and transport (daemon socket, else spool), as a
git hook's does.

A payload that cannot be read whole is still recorded, never dropped: not JSON,
not an object, a field of the wrong type, or missing ids give the event of its
``hook_event_name`` (``claude.session`` when even that is unreadable) built
from what could be read, with ``details.malformed: true`` and one ``gitaudit:``
line on stderr; a payload over :data:`STDIN_MAX_BYTES` is read up to that
size (the rest is hashed and discarded) and its top-level ids are picked from
its beginning and its last :data:`STDIN_TAIL_BYTES`, with
``details.truncated: [{field: "stdin", bytes, sha256}]``. The session id then
falls back to ``CLAUDE_CODE_SESSION_ID``, which Claude Code sets for hooks.

Never in the agent's way: the exit status is always 0, nothing is written on
stdout (Claude Code would read it as the hook's answer), at most one line goes
to stderr, no traceback. The stdin read is bounded in size and time
(:data:`STDIN_TIMEOUT`). Claude Code waits for its hooks, so as a git hook
does (setting ``hook_detach``, :func:`gitaudit.capture.hookrun.detach_wanted`)
the hook builds the event and reads the repository's HEAD (what may change once
Claude Code goes on), then hands the rest (the repository's config: identity and
remote; the pipeline; the delivery) to a detached process, and returns (a
problem that process meets cannot be reported: it has no stderr; the event
still reaches the spool or the emergency spool).

Hot path, as for git hooks: stdlib C modules and gitaudit's lean capture
modules only (no ``json``, ``re``, ``typing``,
``uuid``, ``hashlib``, pydantic); ``tests/capture/test_wrapper_imports.py``
guards the module set.
"""

from __future__ import annotations

import os

from gitaudit import catalog
from gitaudit.claude import ids

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms to import; annotations are strings at runtime
    import signal as _signal
    from collections.abc import Mapping, Sequence
    from typing import Any, Final

    from gitaudit.config import Settings
else:
    # The C half of `signal` (loaded at every interpreter start): without the enums that
    # `import signal` builds (~1 ms), as in the wrapper and the git hooks.
    import _signal

SOURCE: Final = "claude_code"
STDIN_MAX_BYTES: Final = 1024 * 1024  # a payload is read (and parsed) up to this size
STDIN_TAIL_BYTES: Final = 64 * 1024  # of a bigger one, the end is kept to find its ids
STDIN_TIMEOUT: Final = 5.0  # seconds to wait for the payload to end
SESSION_ENV: Final = "CLAUDE_CODE_SESSION_ID"  # set by Claude Code for hooks and tools
AGENT_ENV: Final = "AI_AGENT"  # claude-code_2-1-197_harness
INPUT_VALUE_MAX_CHARS: Final = 256  # a scalar of another tool's input is cut to this
INPUT_MAX_KEYS: Final = 64
EDIT_TOOLS: Final = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit"})
# hook_event_name -> (operation, phase)
HOOK_EVENTS: Final[Mapping[str, tuple[str, str]]] = {
    "SessionStart": ("claude.session", "start"),
    "SessionEnd": ("claude.session", "end"),
    "UserPromptSubmit": ("claude.prompt", "submit"),
    "Stop": ("claude.prompt", "stop"),
    "PostToolUse": ("claude.tool_use", "result"),
    "PostToolUseFailure": ("claude.tool_use", "result"),
}
# A SessionStart with one of these sources begins a session id: it is the session's anchor.
ANCHOR_SOURCES: Final = frozenset({"startup", "clear"})
# Top-level keys of a payload, as a salvage reads them from an unparsable one.
_SALVAGED_HEAD: Final = (
    "session_id", "transcript_path", "cwd", "prompt_id", "permission_mode", "hook_event_name",
    "source", "reason", "tool_name", "model",
)  # fmt: skip
_SALVAGED_TAIL: Final = ("tool_use_id", "duration_ms")  # after tool_input/tool_response
_WHITESPACE: Final = " \t\n\r"


class Facts:
    """What the I/O shell read of the world for one payload (all optional for tests).

    ``actor`` and ``repo`` are the event's objects (the shell itself sets them
    on the built event later, possibly in the detached process: see
    :func:`record`); ``now`` the time the hook ran (epoch seconds);
    ``truncated`` the ``details.truncated`` entries of an oversized payload;
    ``problems`` what was wrong with the payload as read.
    """

    __slots__ = ("actor", "now", "problems", "repo", "truncated")

    def __init__(
        self,
        *,
        actor: dict[str, Any] | None = None,
        repo: dict[str, Any] | None = None,
        now: float | None = None,
        truncated: list[dict[str, Any]] | None = None,
        problems: Sequence[str] = (),
    ) -> None:
        self.actor = actor
        self.repo = repo
        self.now = now
        self.truncated = truncated
        self.problems = list(problems)


# --- the pure part ---------------------------------------------------------------------------


class _Reader:
    """Typed reads of a payload that note every field of the wrong type."""

    def __init__(self, payload: Any, problems: list[str]) -> None:
        self.problems = problems
        if isinstance(payload, dict):
            self.payload: dict[Any, Any] = payload
        else:
            problems.append(f"payload is {_type_name(payload)}, not a JSON object")
            self.payload = {}

    def text(self, key: str) -> str | None:
        value = self.payload.get(key)
        if value is None or isinstance(value, str):
            return value or None
        self.problems.append(f"{key} is {_type_name(value)}, not a string")
        return None

    def number(self, key: str) -> float | None:
        value = self.payload.get(key)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool) and value - value == 0:
            return float(value) if value >= 0 else None
        self.problems.append(f"{key} is {_type_name(value)}, not a number")
        return None

    def flag(self, key: str) -> bool | None:
        value = self.payload.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.problems.append(f"{key} is {_type_name(value)}, not true/false")
        return None

    def mapping(self, key: str) -> dict[Any, Any] | None:
        value = self.payload.get(key)
        if value is None or isinstance(value, dict):
            return value
        self.problems.append(f"{key} is {_type_name(value)}, not an object")
        return None


def _type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             type(None): "null", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _size(text: str) -> int:
    """Bytes of ``text`` as UTF-8 (lone surrogates count as the bytes they stand for)."""
    return len(text.encode("utf-8", "surrogatepass"))


def _sha256(text: str) -> str:
    from gitaudit.limits import sha256_hex

    return sha256_hex(text.encode("utf-8", "surrogatepass"))


def _describe(details: dict[str, Any], text: str | None, capture: bool,
              keys: tuple[str, str, str]) -> None:
    """A prompt or an answer as its length (characters) and SHA-256; the text with capture."""
    if text is None:
        return
    length, digest, kept = keys
    details[length] = len(text)
    details[digest] = _sha256(text)
    if capture:
        details[kept] = text


def agent_version(environ: Mapping[str, str]) -> str | None:
    """``2.1.197`` from ``AI_AGENT=claude-code_2-1-197_harness`` (None without it)."""
    parts = environ.get(AGENT_ENV, "").split("_")
    if len(parts) >= 2 and parts[0] == "claude-code" and parts[1]:
        return parts[1].replace("-", ".")[:40]
    return None


def _scalar(value: Any) -> Any:
    """A value of another tool's input as kept: short scalars; containers as their size."""
    if isinstance(value, str):
        if len(value) <= INPUT_VALUE_MAX_CHARS:
            return value
        return value[:INPUT_VALUE_MAX_CHARS] + f"…[{_size(value)} bytes]"
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return f"[object: {len(value)} keys]"
    if isinstance(value, list):
        return f"[list: {len(value)} items]"
    return f"[{type(value).__name__}]"


def _text_size(source: Mapping[Any, Any], key: str) -> int | None:
    value = source.get(key)
    return _size(value) if isinstance(value, str) else None


def tool_input(tool: str | None, given: Mapping[Any, Any], capture: bool) -> dict[str, Any]:
    """``details.input`` of a tool call, before the sanitizer (which redacts it all).

    Bash: ``command``, ``description`` (and ``timeout``, ``run_in_background``);
    Edit/Write/MultiEdit/NotebookEdit: ``file_path``, ``old_size``, ``new_size``,
    ``content_size`` (bytes), ``edits`` (MultiEdit), the contents only with
    ``capture`` (``capture_prompts``); any other tool: its keys, each with a
    short scalar value (:data:`INPUT_VALUE_MAX_CHARS`) or a container's size.
    """
    if tool == "Bash":
        kept = {key: given[key] if isinstance(given[key], str) else _scalar(given[key])
                for key in ("command", "description") if key in given}
        kept.update({key: given[key] for key in ("timeout", "run_in_background")
                     if isinstance(given.get(key), bool | int | float)})
        return kept
    if tool in EDIT_TOOLS:
        return _edit_input(given, capture)
    found: dict[str, Any] = {}
    for key, value in given.items():
        if len(found) >= INPUT_MAX_KEYS:
            found["…"] = f"[{len(given) - INPUT_MAX_KEYS} more keys]"
            break
        found[str(key)[:INPUT_VALUE_MAX_CHARS]] = _scalar(value)
    return found


def _edit_input(given: Mapping[Any, Any], capture: bool) -> dict[str, Any]:
    path = given.get("file_path", given.get("notebook_path"))
    found: dict[str, Any] = {"file_path": path if isinstance(path, str) else None}
    sizes = {
        "old_size": _text_size(given, "old_string"),
        "new_size": _text_size(given, "new_string") or _text_size(given, "new_source"),
        "content_size": _text_size(given, "content"),
    }
    edits = given.get("edits")
    if isinstance(edits, list):
        found["edits"] = len(edits)
        olds = [_text_size(edit, "old_string") for edit in edits if isinstance(edit, dict)]
        news = [_text_size(edit, "new_string") for edit in edits if isinstance(edit, dict)]
        sizes["old_size"] = sum(size or 0 for size in olds)
        sizes["new_size"] = sum(size or 0 for size in news)
    found.update({key: size for key, size in sizes.items() if size is not None})
    for key in ("replace_all", "cell_id", "cell_type", "edit_mode"):
        if isinstance(given.get(key), bool | str | int):
            found[key] = _scalar(given[key])
    if capture:
        for key in ("old_string", "new_string", "content", "new_source"):
            if isinstance(given.get(key), str):
                found[key] = given[key]
        if isinstance(edits, list):
            found["edits_text"] = [
                {key: edit[key] for key in ("old_string", "new_string")
                 if isinstance(edit.get(key), str)}
                for edit in edits if isinstance(edit, dict)
            ]
    return found


def _exit_status(response: Mapping[Any, Any] | None, error: str | None) -> int | None:
    """The tool's exit status where the payload says it (Bash: ``Exit code N`` on failure)."""
    for key in ("exit_code", "exitCode", "returnCode", "code"):
        value = (response or {}).get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    if error and error.startswith("Exit code "):
        word = error[len("Exit code "):].split(None, 1)
        if word and word[0].lstrip("-").isdigit() and len(word[0]) < 12:
            return int(word[0])
    return None


def tool_result(
    hook: str, response: Any, error: str | None, interrupt: bool | None
) -> dict[str, Any]:
    """``success``, ``interrupted``, ``exit_code`` and sizes of a tool's result (no content)."""
    found: dict[str, Any] = {"success": hook != "PostToolUseFailure"}
    given = response if isinstance(response, dict) else None
    interrupted = given.get("interrupted") if given is not None else None
    if not isinstance(interrupted, bool):
        interrupted = interrupt
    if interrupted is not None:
        found["interrupted"] = interrupted
    status = _exit_status(given, error)
    if status is not None:
        found["exit_code"] = status
    if given is not None:
        for key in ("stdout", "stderr"):
            size = _text_size(given, key)
            if size is not None:
                found[f"{key}_bytes"] = size
    if response is not None and "stdout_bytes" not in found:
        from gitaudit.jsonfast import compact_encoder

        try:  # noqa: SIM105 - contextlib costs ~3 ms to import: not on the hot path
            found["response_bytes"] = len(compact_encoder(ensure_ascii=False)(response)
                                          .encode("utf-8", "surrogatepass"))
        except (TypeError, ValueError):
            pass  # not JSON data: no size to give
    if error is not None:
        found["error_bytes"] = _size(error)
    return found


def _without_nul(value: Any) -> Any:
    """``value`` with every NUL character in its strings and keys replaced by U+FFFD.

    A NUL cannot be stored (PostgreSQL text refuses it, the event model with it), and
    a payload is anybody's bytes: this keeps such a tool call recordable. The walk
    runs only when the C encoder shows a NUL somewhere.
    """
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _has_nul(value: Any) -> bool:
    from gitaudit.jsonfast import compact_encoder

    try:
        return "\\u0000" in compact_encoder(ensure_ascii=False)(value)
    except (TypeError, ValueError):
        return True  # not plain JSON data (odd keys): walk it


def events_from_payload(
    payload: Any,
    env: Mapping[str, str],
    settings: Settings,
    facts: Facts | None = None,
) -> list[dict[str, Any]]:
    """The events one Claude Code hook payload records (module doc); no I/O.

    ``facts`` carries what the shell read (actor, repository, time, an
    oversized payload's cut); without it the actor and repository are empty.
    """
    facts = facts or Facts()
    problems = list(facts.problems)
    if _has_nul(payload):
        payload = _without_nul(payload)
        problems.append("NUL characters replaced by U+FFFD")
    read = _Reader(payload, problems)
    hook = read.text("hook_event_name")
    if hook is not None and hook not in HOOK_EVENTS:
        return []  # a hook event gitaudit does not record (PreToolUse, Notification, ...)
    if hook is None:
        problems.append("no hook_event_name")
    operation, phase = HOOK_EVENTS.get(hook or "", ("claude.session", None))
    session, details = _common_details(read, env, hook, phase)
    prompt_id = read.text("prompt_id")
    builder = _Builder(session, env, facts)
    if operation == "claude.session":
        event = builder.session(read, details, phase)
    elif operation == "claude.prompt":
        event = builder.prompt(read, details, phase, prompt_id, settings.capture_prompts)
    else:
        event = builder.tool_use(read, details, hook or "", prompt_id, settings.capture_prompts)
    if problems:
        event["details"]["malformed"] = True
        event["details"]["problems"] = problems[:8]
    if facts.truncated:
        event["details"]["truncated"] = list(facts.truncated)
    return [event]


def _common_details(read: _Reader, env: Mapping[str, str], hook: str | None,
                    phase: str | None) -> tuple[str | None, dict[str, Any]]:
    """(session id, the details every event of a payload has)."""
    session = read.text("session_id")
    from_env = session is None and bool(env.get(SESSION_ENV, "").strip())
    if session is None:
        read.problems.append("no session_id")
        session = env.get(SESSION_ENV, "").strip() or None
    details: dict[str, Any] = {"hook_event": hook, "session_id": session}
    if phase is not None:
        details["phase"] = phase
    if from_env:
        details["session_from_env"] = True
    for key in ("cwd", "transcript_path", "permission_mode"):
        value = read.text(key)
        if value is not None:
            details[key] = value
    version = agent_version(env)
    if version:
        details["claude_code_version"] = version
    return session, details


class _Builder:
    """Builds the one event of a payload: ids, actor, repository and time are shared."""

    def __init__(self, session: str | None, env: Mapping[str, str], facts: Facts) -> None:
        from gitaudit.capture import context

        self.session_id = session
        self.facts = facts
        self.correlation_id = (
            session[: context.MAX_CORRELATION_CHARS] if session
            else context.correlation_id(env, catalog.uuid7)
        )
        self.anchor = ids.session_event_id(session) if session else None

    def event(self, operation: str, details: dict[str, Any], *, event_id: str | None,
              parent_id: str | None, outcome: str = "success",
              duration_ms: float | None = None, exit_code: int | None = None,
              error: str | None = None) -> dict[str, Any]:
        now = self.facts.now
        started = None if now is None or duration_ms is None else now - duration_ms / 1000
        if started is not None and started < 0:  # a duration longer than the clock: a lie
            started = None  # dated at the hook's time, as without a duration
        return {
            "id": event_id or catalog.uuid7(),
            "schema_version": catalog.SCHEMA_VERSION,
            "occurred_at": catalog.now_rfc3339(started if started is not None else now),
            "duration_ms": duration_ms,
            "operation": operation,
            "category": catalog.category_for(operation, details),
            "outcome": outcome,
            "severity": catalog.severity_for(operation, details, outcome),
            "source": SOURCE,
            "correlation_id": self.correlation_id,
            "parent_id": parent_id,
            "actor": self.facts.actor or {
                "uid": None, "user": None, "git_name": None, "git_email": None, "host": None,
                "verified": False, "ci": None,
            },
            "repo": self.facts.repo,
            "result": {"exit_code": exit_code, "error": error},
            "details": details,
        }

    def session(self, read: _Reader, details: dict[str, Any], phase: str | None
                ) -> dict[str, Any]:
        model = read.payload.get("model")
        if isinstance(model, dict):  # some versions send {"id": ..., "display_name": ...}
            model = model.get("id")
        if isinstance(model, str) and model:
            details["model"] = model
        if phase == "start":
            source = read.text("source")
            details["start_source"] = source
            anchored = source is None or source in ANCHOR_SOURCES
            return self.event("claude.session", details,
                              event_id=self.anchor if anchored else None,
                              parent_id=None if anchored else self.anchor)
        if phase == "end":
            details["end_reason"] = read.text("reason")
        return self.event("claude.session", details, event_id=None, parent_id=self.anchor)

    def prompt(self, read: _Reader, details: dict[str, Any], phase: str | None,
               prompt_id: str | None, capture: bool) -> dict[str, Any]:
        details["prompt_id"] = prompt_id
        if phase == "submit":
            if prompt_id is None:
                read.problems.append("no prompt_id")
            _describe(details, read.text("prompt"), capture, ("length", "prompt_sha256", "text"))
            event_id = ids.prompt_event_id(self.session_id, prompt_id) if (
                self.session_id and prompt_id) else None
            return self.event("claude.prompt", details, event_id=event_id,
                              parent_id=self.anchor)
        active = read.flag("stop_hook_active")  # phase "stop": the turn ended
        if active is not None:
            details["stop_hook_active"] = active
        _describe(details, read.text("last_assistant_message"), capture,
                  ("response_length", "response_sha256", "response_text"))
        return self.event("claude.prompt", details, event_id=None,
                          parent_id=self._prompt_parent(prompt_id))

    def _prompt_parent(self, prompt_id: str | None) -> str | None:
        if self.session_id and prompt_id:
            return ids.prompt_event_id(self.session_id, prompt_id)
        return self.anchor

    def tool_use(self, read: _Reader, details: dict[str, Any], hook: str,
                 prompt_id: str | None, capture: bool) -> dict[str, Any]:
        tool = read.text("tool_name")
        tool_use_id = read.text("tool_use_id")
        if tool_use_id is None:
            read.problems.append("no tool_use_id")
        given = read.mapping("tool_input")
        error = read.text("error")
        details.update({
            "phase": "result",
            "prompt_id": prompt_id,
            "tool_use_id": tool_use_id,
            "tool": tool,
            "input": tool_input(tool, given or {}, capture),
        })
        duration = read.number("duration_ms")
        if duration is not None:
            details["duration_ms"] = duration
        details.update(tool_result(hook, read.payload.get("tool_response"), error,
                                   read.flag("is_interrupt")))
        success = details["success"]
        failure = None
        if not success:
            failure = f"{tool or 'the tool'} failed" + (
                f" (exit code {details['exit_code']})" if "exit_code" in details else ""
            ) + (" (interrupted)" if details.get("interrupted") else "")
        event_id = ids.tool_use_event_id(self.session_id, tool_use_id) if (
            self.session_id and tool_use_id) else None
        return self.event(
            "claude.tool_use", details, event_id=event_id,
            parent_id=self._prompt_parent(prompt_id),
            outcome="success" if success else "failure", duration_ms=duration,
            exit_code=details.get("exit_code"), error=failure,
        )


# --- reading the payload -----------------------------------------------------------------------


class Stdin:
    """A payload as read: its first :data:`STDIN_MAX_BYTES`, and for a bigger one the size,
    SHA-256 and last :data:`STDIN_TAIL_BYTES` of all of it."""

    __slots__ = ("data", "sha256", "tail", "timed_out", "total")

    def __init__(self, data: bytes, total: int, tail: bytes = b"", sha256: str | None = None,
                 timed_out: bool = False) -> None:
        self.data = data
        self.total = total
        self.tail = tail
        self.sha256 = sha256
        self.timed_out = timed_out

    @property
    def cut(self) -> bool:
        """Whether the payload was bigger than what was kept."""
        return self.total > len(self.data)


def read_stdin(fd: int = 0, limit: int = STDIN_MAX_BYTES, timeout: float = STDIN_TIMEOUT
               ) -> Stdin:
    """The payload on ``fd``: bounded in size (the rest hashed, its tail kept) and in time
    (what came within ``timeout`` seconds: a SIGALRM ends the wait; no ``select`` to
    import); nothing from a terminal."""
    try:
        if os.isatty(fd):
            return Stdin(b"", 0)
    except OSError:
        return Stdin(b"", 0)
    previous = _signal.signal(_signal.SIGALRM, _timed_out)
    _signal.setitimer(_signal.ITIMER_REAL, timeout)
    kept = bytearray()
    tail = b""
    hasher: Any = None
    total = 0
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            total += len(chunk)
            if hasher is None and total > limit:
                from gitaudit.limits import sha256_hasher

                hasher = sha256_hasher(bytes(kept))
            if hasher is not None:
                hasher.update(chunk)
                room = limit - len(kept)
                if room > 0:
                    kept += chunk[:room]
                tail = (tail + chunk)[-STDIN_TAIL_BYTES:]
            else:
                kept += chunk
    except _StdinTimeout:
        return _stdin(kept, total, tail, hasher, timed_out=True)
    finally:
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        _signal.signal(_signal.SIGALRM, previous)
    return _stdin(kept, total, tail, hasher)


class _StdinTimeout(Exception):  # noqa: N818 - a signal to stop reading, not an error
    """The payload did not end within :data:`STDIN_TIMEOUT`."""


def _timed_out(signum: int, frame: Any) -> None:
    raise _StdinTimeout


def _stdin(kept: bytearray, total: int, tail: bytes, hasher: Any, timed_out: bool = False
           ) -> Stdin:
    digest = str(hasher.hexdigest()) if hasher is not None else None
    return Stdin(bytes(kept), total, tail, digest, timed_out)


def parse(stdin: Stdin) -> tuple[Any, list[str], list[dict[str, Any]] | None]:
    """(payload, problems, truncated entries) of what was read; an unparsable or oversized
    payload is salvaged (:func:`salvage`)."""
    from gitaudit.jsonfast import loads

    if stdin.cut:
        entry = {"field": "stdin", "bytes": stdin.total, "sha256": stdin.sha256}
        problems = [f"payload of {stdin.total} bytes cut to {len(stdin.data)}"]
        return salvage(stdin.data, stdin.tail), problems, [entry]
    problems = ["payload incomplete (stdin not closed in time)"] if stdin.timed_out else []
    try:
        text = stdin.data.decode("utf-8")
    except UnicodeDecodeError:
        problems.append("payload is not UTF-8")
        text = stdin.data.decode("utf-8", "surrogateescape")
    try:
        return loads(text), problems, None
    except (ValueError, RecursionError) as exc:
        problems.append(f"payload is not JSON ({' '.join(str(exc).split())[:120]})")
    return salvage(stdin.data, b""), problems, None


def salvage(head: bytes, tail: bytes) -> dict[str, Any]:
    """The top-level ids of a payload that cannot be parsed, found by their keys: the
    first of :data:`_SALVAGED_HEAD` in ``head``, the last of :data:`_SALVAGED_TAIL` in
    ``tail`` (else in ``head``). Values are JSON strings or numbers; others are skipped."""
    first = head.decode("utf-8", "replace")
    last = tail.decode("utf-8", "replace")
    found: dict[str, Any] = {}
    for key in _SALVAGED_HEAD:
        value = _find(first, key, from_end=False)
        if value is not None:
            found[key] = value
    for key in _SALVAGED_TAIL:
        value = _find(last, key, from_end=True)
        if value is None:
            value = _find(first, key, from_end=True)
        if value is not None:
            found[key] = value
    return found


def _find(text: str, key: str, *, from_end: bool) -> str | float | None:
    needle = f'"{key}"'
    end = len(text)
    start = 0
    while True:
        at = text.rfind(needle, 0, end) if from_end else text.find(needle, start)
        if at < 0:
            return None
        value = _value_at(text, at + len(needle))
        if value is not None:
            return value
        end, start = at, at + 1


def _value_at(text: str, index: int) -> str | float | None:
    """The JSON string or number after ``: `` at ``index``, or None."""
    size = len(text)
    while index < size and text[index] in _WHITESPACE:
        index += 1
    if text[index:index + 1] != ":":
        return None
    index += 1
    while index < size and text[index] in _WHITESPACE:
        index += 1
    if text[index:index + 1] == '"':
        try:
            import _json

            value, _ = _json.scanstring(text, index + 1, True)
        except (ValueError, ImportError):
            return None
        return str(value)
    digits = ""
    for char in text[index:index + 32]:
        if char in "0123456789.-+eE":
            digits += char
        else:
            break
    try:
        return float(digits) if digits else None
    except ValueError:
        return None


# --- the I/O shell ---------------------------------------------------------------------------


def locate(payload: Any, environ: Mapping[str, str]) -> tuple[Any, Any]:
    """(layout, HEAD) of the repository at the payload's ``cwd`` ((None, None) outside one),
    read from files as git hooks do (no git process, no pygit2): what may change once
    Claude Code goes on, so read before the hook returns."""
    from gitaudit.capture import gitstate

    cwd = payload.get("cwd") if isinstance(payload, dict) else None
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        return None, None
    layout = gitstate.discover(cwd, environ)
    if layout is None:
        return None, None
    try:
        return layout, gitstate.read_head(layout)
    except (gitstate.UnusualLayout, OSError):
        return layout, gitstate.Head(None, None)


def describe(located: tuple[Any, Any], environ: Mapping[str, str]
             ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(actor, repo) of the events: the local user with the repository's git identity, and
    the ``repo`` object (remote from its config files)."""
    from gitaudit.capture import context

    layout, head = located
    params: dict[str, str] = {}
    repo = None
    if layout is not None:
        from gitaudit.capture import hooks
        from gitaudit.capture.record import repo_object

        params = hooks.read_config_params(layout, environ) or {}
        repo = repo_object(os.path.realpath(layout.worktree or layout.git_dir), params,
                           branch=head.ref, head_after=head.oid)
    name, email = context.git_identity(environ, params)
    uid = os.getuid()
    actor = context.build_actor(
        uid=uid, user=context.os_user(environ, uid), host=os.uname().nodename,
        git_name=name, git_email=email, ci=context.ci_info(environ),
    )
    return actor, repo


def record(stdin: Stdin, environ: Mapping[str, str], settings: Settings,
           earlier: Sequence[str] = ()) -> list[str]:
    """Parse and build one payload's event, then complete and deliver it (in a detached
    process when ``hook_detach`` says so); the problems left to report (one stderr line),
    ``earlier`` ones included. Before detaching, everything known is said on stderr: this
    process then hands its standard streams over and returns at once."""
    import time

    now = time.time()
    if not stdin.total:
        return [*earlier, "no Claude Code hook payload on stdin; nothing recorded"]
    payload, problems, truncated = parse(stdin)
    report: list[str] = list(earlier)
    try:
        located = locate(payload, environ)
    except Exception as exc:  # noqa: BLE001 - the event is still recorded, without it
        located = (None, None)
        report.append(f"repository not read ({_one_line(exc)})")
    facts = Facts(now=now, truncated=truncated, problems=problems)
    events = events_from_payload(payload, environ, settings, facts)
    found = events[0]["details"].get("problems") if events else problems
    if found:
        outcome = "recorded with details.malformed" if events else "nothing recorded"
        report.insert(len(earlier),
                      f"Claude Code hook payload: {', '.join(found[:3])}; {outcome}")
    if not events:
        return report

    def work() -> list[str]:
        said: list[str] = []
        try:
            actor, repo = describe(located, environ)
        except Exception as exc:  # noqa: BLE001 - the event is still delivered, without them
            said.append(f"actor and repository not read ({_one_line(exc)})")
        else:
            for event in events:
                event["actor"], event["repo"] = actor, repo
        return said + deliver(events, settings)

    from gitaudit.capture import hookrun

    if hookrun.detach_wanted(settings, environ):
        hookrun.warn(report)  # now: this process keeps no stderr once it has detached
        report = []
        try:
            if hookrun.detach(work, wait_parent=False, quiet_first=True):
                return []
        except Exception as exc:  # noqa: BLE001 - no child: deliver here instead
            report.append(f"could not detach ({_one_line(exc)})")
    return report + work()


def deliver(events: list[dict[str, Any]], settings: Settings) -> list[str]:
    """The pipeline and transport, as for a git hook's events; the warning, if any."""
    from gitaudit.pipeline import Pipeline

    delivery = Pipeline(settings).emit(events)
    return [delivery.warning] if delivery is not None and delivery.warning else []


def main(argv: Sequence[str]) -> int:
    """The hook entry: always 0, nothing on stdout, at most one ``gitaudit:`` stderr line."""
    problems: list[str] = []
    try:
        from gitaudit.capture.hookrun import load_settings

        environ = os.environ
        settings, problem = load_settings(environ)
        if problem:
            problems.append(problem)
        if argv:
            problems.append(f"claude-code-hook takes no arguments (ignored: {' '.join(argv)})")
        stdin = read_stdin()
        if settings.enabled:
            problems = record(stdin, environ, settings, problems)
    except BaseException as exc:  # noqa: BLE001 - never a traceback, never a failed hook
        problems.append(f"Claude Code hook not recorded ({_one_line(exc)})")
    try:
        from gitaudit.capture.hookrun import warn

        warn(problems)
    except BaseException:  # noqa: BLE001, S110 - nowhere left to report to
        pass
    return 0


def _one_line(exc: BaseException) -> str:
    try:
        from gitaudit.capture.hookrun import one_line

        return one_line(exc)
    except BaseException:  # noqa: BLE001 - even the formatter failed: the type is enough
        return type(exc).__name__
