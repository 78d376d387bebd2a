"""The event model (schema version 1) and the operation catalog.

Capture code builds plain dicts (see :mod:`gitaudit.catalog`, which is cheap to
import); this pydantic model validates them where pydantic's import cost does
not matter: at ingest, in the daemon and in readers. Field names are the public
contract of ``gitaudit log --format json``.

Validation is the one gate every event passes before the journal, the store
writer, SQLite/PostgreSQL, the readers and the sinks see it (the daemon's
intake, spool ingest and journal replay all call :func:`validate_event`), so
it refuses whatever any of those could not take (README "Accepted values"):
values that are not plain JSON (NaN, infinities, non-JSON types), integers
outside 64 bits where the store keeps them in a column, strings with NUL
characters (PostgreSQL text cannot hold them) or lone surrogates (not UTF-8,
not printable), nesting deeper than :data:`MAX_DEPTH`,
timestamps outside :data:`EARLIEST`..:data:`LATEST`, and indexed strings
longer than :data:`MAX_INDEXED_BYTES` (a PostgreSQL B-tree entry holds at most
2704 bytes). A value it lets through can be journaled, hashed, stored and read.
The check costs one pass of pydantic-core's JSON serializer per event; only
a suspect event is walked in Python to name the place.

Who may say what is decided here too (:func:`gitaudit_only`): sources and
operations only gitaudit itself produces, and the details only the daemon sets.
"""

from __future__ import annotations

import math
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import (
    PydanticCustomError,
    PydanticSerializationError,
    to_json,
    to_jsonable_python,
)

from gitaudit.catalog import (
    CATEGORIES,
    INTEGRITY_FIELDS,
    OPERATIONS,
    OUTCOMES,
    SCHEMA_VERSION,
    SEVERITIES,
    SOURCES,
    canonical_json,
    category_for,
    now_rfc3339,
    operation_for,
    severity_for,
    uuid7,
)
from gitaudit.jsonfast import compact_encoder
from gitaudit.limits import INDEXED_FIELDS, INDEXED_MAX_BYTES

__all__ = [
    "CATEGORIES",
    "INTEGRITY_FIELDS",
    "OPERATIONS",
    "OUTCOMES",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "SOURCES",
    "Actor",
    "Agent",
    "CIInfo",
    "Event",
    "Repo",
    "Result",
    "canonical_json",
    "category_for",
    "describe_invalid",
    "gitaudit_only",
    "now_rfc3339",
    "operation_for",
    "parse_timestamp",
    "severity_for",
    "uuid7",
    "validate_event",
]


_LOWER_HEX = "0123456789abcdef"

# Accepted values (README "Accepted values"): every later stage handles anything inside.
EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
MAX_DEPTH: Final = 64  # containers inside an event, the event itself being level 1
MIN_INT: Final = -(2**63)  # integers the store keeps in a column (BIGINT)
MAX_INT: Final = 2**63 - 1
MAX_UID: Final = 2**32 - 1
MAX_INDEXED_BYTES: Final = INDEXED_MAX_BYTES  # UTF-8 bytes of a string the store indexes
# Only gitaudit itself produces these; clients never may (DESIGN.md "Event").
GITAUDIT_SOURCES: Final = frozenset({"daemon", "trace2"})
GITAUDIT_OPERATIONS: Final = "audit."  # prefix
# set from the kernel's peer credentials; git_event_ids: the agent join (gitaudit.daemon.agents)
DAEMON_DETAILS: Final = ("claimed_actor", "peer_pid", "git_event_ids")


def parse_timestamp(value: str) -> datetime:
    """Parse an RFC 3339 timestamp; naive values are taken as UTC.

    Raises ValueError for text that is no timestamp and for a moment that does
    not fit in a :class:`datetime` once taken to UTC (e.g. ``0001-01-01T00:00+01:00``).
    """
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value[:40]!r} is out of range once taken to UTC") from None


def _unstorable(path: str, problem: str) -> PydanticCustomError:
    return PydanticCustomError(
        "unstorable", "{path}: {problem}", {"path": path, "problem": problem}
    )


def _text_problem(text: str) -> str | None:
    """Why a string cannot be stored (NUL, lone surrogate), or None."""
    if "\x00" in text:
        return "NUL character (not storable)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "lone surrogate (not valid Unicode)"
    return None


def _value_problem(value: Any) -> str | None:
    """Why a leaf value is not plain, storable JSON, or None (containers: None)."""
    kind = type(value)
    if kind is str:
        return _text_problem(value)
    if kind is bool or value is None:
        return None
    if kind is int:  # any size Python's json can write (and read back)
        try:
            int.__repr__(value)
        except ValueError:
            return "integer too long to write as JSON"
        return None
    if kind is float:
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if kind in (dict, list, tuple):
        return None
    return f"a {kind.__name__} is not a JSON value"


def _children(path: str, container: Any) -> list[tuple[str, Any]]:
    """(path, value) of each item of a dict, list or tuple; raises for a bad key."""
    if type(container) is not dict:
        return [(f"{path}[{index}]", item) for index, item in enumerate(container)]
    if any(type(key) is not str for key in container):
        container = _jsonable(path, container)  # keys as the record will hold them
    prefix = "" if path == "event" else path + "."
    children = []
    for key, item in container.items():
        problem = _text_problem(key)
        if problem is not None:
            raise _unstorable(f"{path} key {key[:40]!r}", problem)
        children.append((prefix + key, item))
    return children


def _jsonable(path: str, value: Any) -> Any:
    """What a value of another type becomes in the record (``to_record`` dumps as JSON)."""
    try:
        return to_jsonable_python(value)
    except (PydanticSerializationError, ValueError, TypeError, RecursionError):
        raise _unstorable(path, f"a {type(value).__name__} is not a JSON value") from None


def check_storable(raw: Mapping[str, Any]) -> None:
    """Raise :class:`PydanticCustomError` naming the first value no later stage could take.

    Values are judged as the record will hold them (``to_record`` dumps as
    JSON: bytes become text, sets lists). Fast path in Rust: pydantic-core's
    JSON serializer fails on lone surrogates, unknown types and deep nesting,
    and its text shows NaN/Infinity, NUL characters and how many containers
    there are (at most :data:`MAX_DEPTH` cannot nest deeper); a text longer
    than any integer Python's json writes is also encoded by the C encoder,
    which refuses such integers. Only a suspect event is walked in Python,
    which names the place.
    """
    try:
        text = to_json(raw, inf_nan_mode="constants")
    except (PydanticSerializationError, ValueError, TypeError, RecursionError):
        pass
    else:
        if (
            b"NaN" not in text
            and b"Infinity" not in text
            and b"\\u0000" not in text  # NUL, as JSON writes it
            and text.count(b"{") + text.count(b"[") <= MAX_DEPTH
            and (len(text) <= _INT_MAX_DIGITS or _python_writes(raw))
        ):
            if len(text) > MAX_INDEXED_BYTES:  # else no string in it can be that long
                _check_indexed(raw)
            return
    _walk(raw)
    _check_indexed(raw)


def _python_writes(raw: Mapping[str, Any]) -> bool:
    try:
        _ENCODE(raw)
    except (ValueError, TypeError, RecursionError):
        return False
    return True


def _check_indexed(raw: Mapping[str, Any]) -> None:
    """Refuse strings too long for the store's indexes (one look per field, no call each)."""
    for part, keys in _INDEXED:
        fields = raw if part is None else raw.get(part)
        if type(fields) is not dict:
            continue
        for key in keys:
            value = fields.get(key)
            if type(value) is str and len(value) > MAX_INDEXED_BYTES // 4:
                size = len(value.encode("utf-8", "surrogatepass"))
                if size > MAX_INDEXED_BYTES:
                    where = key if part is None else f"{part}.{key}"
                    raise _unstorable(where, f"{size} bytes; at most {MAX_INDEXED_BYTES} (UTF-8)")


def _walk(raw: Mapping[str, Any]) -> None:
    """:func:`check_storable` in Python, level by level (no recursion: any nesting is safe)."""
    level: list[tuple[str, Any]] = [("event", raw)]
    depth = 1
    while level:
        below: list[tuple[str, Any]] = []
        for path, container in level:
            if depth > MAX_DEPTH:
                raise _unstorable(path, f"nested deeper than {MAX_DEPTH} levels")
            for where, child in _children(path, container):
                item = child if type(child) in _JSON_TYPES else _jsonable(where, child)
                problem = _value_problem(item)
                if problem is not None:
                    raise _unstorable(where, problem)
                if type(item) in _CONTAINERS:
                    below.append((where, item))
        level = below
        depth += 1


_CONTAINERS: Final = (dict, list, tuple)
_JSON_TYPES: Final = frozenset({str, int, float, bool, type(None), dict, list, tuple})
_ENCODE: Final = compact_encoder(ensure_ascii=True)  # allow_nan=False
_INT_MAX_DIGITS: Final = sys.get_int_max_str_digits() or sys.maxsize  # 0: no limit
_INDEXED: Final = INDEXED_FIELDS  # cut to MAX_INDEXED_BYTES at capture (limits.fit)


Int64 = Annotated[int, Field(ge=MIN_INT, le=MAX_INT)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CIInfo(_Strict):
    """The CI job an event ran in."""

    provider: str | None = None
    job: str | None = None
    run: str | None = None
    pipeline: str | None = None
    url: str | None = None


class Agent(_Strict):
    """The AI agent that ran the operation (README "Which git operations the agent ran").

    ``verified`` only when the daemon proved it (``proof: "ancestry"``); a bare
    environment claim is ``proof: "env"``.
    """

    tool: str
    session_id: str
    tool_use_id: str | None = None
    version: str | None = None
    claude_pid: Int64 | None = None
    verified: bool = False
    proof: Literal["env", "ancestry"] = "env"


class Actor(_Strict):
    """Who did it: OS account, git identity, host, CI job, AI agent (only when there is one)."""

    uid: Annotated[int, Field(ge=0, le=MAX_UID)] | None = None
    user: str | None = None
    git_name: str | None = None
    git_email: str | None = None
    host: str | None = None
    verified: bool = False
    ci: CIInfo | None = None
    agent: Agent | None = None


class Repo(_Strict):
    """Where: the repository and its state around the operation."""

    path: str | None = None
    remote: str | None = None
    name: str | None = None
    branch: str | None = None
    head_before: str | None = None
    head_after: str | None = None


class Result(_Strict):
    """How it ended: exit code and the (redacted, truncated) error text."""

    exit_code: Int64 | None = None
    error: str | None = None


class Event(_Strict):
    """One audit record (DESIGN.md "Event (schema version 1)")."""

    id: str = Field(default_factory=uuid7)
    schema_version: int = SCHEMA_VERSION
    occurred_at: str = Field(default_factory=now_rfc3339)
    duration_ms: float | None = None  # finite (allow_inf_nan=False)
    # Literal choices are checked inside pydantic-core (no Python call per field).
    operation: Literal[OPERATIONS]  # type: ignore[valid-type]
    category: Literal[CATEGORIES]  # type: ignore[valid-type]
    outcome: Literal[OUTCOMES]  # type: ignore[valid-type]
    severity: Literal[SEVERITIES] = "low"  # type: ignore[valid-type]
    source: Literal[SOURCES]  # type: ignore[valid-type]
    correlation_id: str
    parent_id: str | None = None
    actor: Actor = Field(default_factory=Actor)
    repo: Repo | None = None
    result: Result = Field(default_factory=Result)
    details: dict[str, Any] = Field(default_factory=dict)
    chain_id: str | None = None
    seq: Int64 | None = None
    prev_hash: str | None = None
    hash: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if isinstance(value, dict):
            check_storable(value)
        return value

    @field_validator("id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        canonical = len(value) == 36 and value[8] == value[13] == value[18] == value[23] == "-"
        if canonical and not value.replace("-", "").strip(_LOWER_HEX):
            return value
        return str(uuid.UUID(value))

    @field_validator("schema_version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(
                f"unsupported schema_version {value}; this build reads {SCHEMA_VERSION}"
            )
        return value

    @field_validator("occurred_at")
    @classmethod
    def _timestamp(cls, value: str) -> str:
        if len(value) == 27 and value[10] == "T" and value[19] == "." and value[26] == "Z":
            datetime.fromisoformat(value)  # canonical shape; still refuse impossible dates
            if value >= "1970":  # four digits of year first: text order is time order
                return value
        moment = parse_timestamp(value)
        if not EARLIEST <= moment <= LATEST:
            raise ValueError(
                f"{value[:40]!r} is outside {EARLIEST:%Y-%m-%dT%H:%M:%SZ}"
                f" to {LATEST:%Y-%m-%dT%H:%M:%S.%fZ}"
            )
        return f"{moment:%Y-%m-%dT%H:%M:%S.%f}Z"

    @field_validator("correlation_id")
    @classmethod
    def _correlation(cls, value: str) -> str:
        if not value or len(value) > 200:
            raise ValueError("correlation_id must be 1 to 200 characters")
        return value

    def to_record(self) -> dict[str, Any]:
        """Plain JSON-ready dict with every contract field present (``actor.agent`` only
        when there is one, with the keys it has: records without an agent keep their shape)."""
        record = self.model_dump(mode="json")
        actor = record["actor"]
        agent = actor.pop("agent")
        if agent is not None:
            actor["agent"] = {key: value for key, value in agent.items() if value is not None}
        return record

    def payload(self) -> dict[str, Any]:
        """What the hash chain covers: every field except ``prev_hash`` and ``hash``."""
        record = self.to_record()
        record.pop("prev_hash")
        record.pop("hash")
        return record


def describe_invalid(exc: ValidationError, shown: int = 3) -> str:
    """One line telling why an event is invalid: the first ``shown`` problems, by field."""
    parts = []
    for error in exc.errors()[:shown]:
        where = ".".join(str(part) for part in error["loc"]) or "event"
        if error["type"] == "unstorable":  # names its own place
            parts.append(error["msg"])
        elif error["type"] == "literal_error":
            value = str(error["input"])[:40]
            expected = (error.get("ctx") or {}).get("expected", "a known value")
            parts.append(f"{where}: unknown {where} {value!r}; expected {expected}")
        else:
            parts.append(f"{where}: {error['msg']}")
    if exc.error_count() > shown:
        parts.append(f"and {exc.error_count() - shown} more")
    return "invalid event: " + "; ".join(parts)


def gitaudit_only(raw: Mapping[str, Any]) -> str | None:
    """Why ``raw`` says what only gitaudit itself may say, or None.

    For events from a client that is not gitaudit (another uid on the event
    socket, a spool file): sources ``daemon`` and ``trace2``, ``audit.*``
    operations. The details only the daemon sets (:data:`DAEMON_DETAILS`) are
    not refused but replaced (see ``gitaudit.daemon.intake``).
    """
    source, operation = raw.get("source"), raw.get("operation")
    if source in GITAUDIT_SOURCES:
        return f"source {source!r} is recorded by gitaudit itself, not by clients"
    if isinstance(operation, str) and operation.startswith(GITAUDIT_OPERATIONS):
        return f"operation {operation[:40]!r} is recorded by gitaudit itself, not by clients"
    return None


def agent_claim(actor: dict[str, Any]) -> dict[str, Any]:
    """``actor`` whose ``agent`` (if any) is a bare claim: only the daemon proves an agent
    (``verified``, ``proof: "ancestry"``) and finds its ``tool_use_id``."""
    agent = actor.get("agent")
    if not isinstance(agent, dict) or (
        agent.get("verified") is False and agent.get("proof") == "env"
        and agent.get("tool_use_id") is None
    ):
        return actor
    claim = {key: value for key, value in agent.items() if key != "tool_use_id"}
    claim.update(verified=False, proof="env")
    return {**actor, "agent": claim}


def unverified(raw: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``raw`` whose actor is marked unverified (no kernel credentials), without
    the details only the daemon sets (:data:`DAEMON_DETAILS`); an agent is only claimed."""
    event = raw
    details = raw.get("details")
    if isinstance(details, dict) and any(key in details for key in DAEMON_DETAILS):
        kept = {key: value for key, value in details.items() if key not in DAEMON_DETAILS}
        event = {**raw, "details": kept}
    actor = raw.get("actor")
    if not isinstance(actor, dict):
        return event
    claimed = agent_claim(actor)
    if not claimed.get("verified"):
        return event if claimed is actor else {**event, "actor": claimed}
    return {**event, "actor": {**claimed, "verified": False}}


def validate_event(raw: dict[str, Any]) -> Event:
    """Validate a plain event dict (from capture, the spool or the socket)."""
    return Event.model_validate(raw)
