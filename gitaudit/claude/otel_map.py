"""Claude Code's OpenTelemetry log records, read and turned into gitaudit events (pure).

Claude Code exports one OTLP log record per event it emits
(``CLAUDE_CODE_ENABLE_TELEMETRY=1``, ``OTEL_LOGS_EXPORTER=otlp``). This module
does everything between the request body and the raw event dict; the daemon's
receiver (:mod:`gitaudit.daemon.otlp_receiver`) only does HTTP and hands the
events to the intake (policy, sanitizer, limits, journal), like any other.

- :func:`decode` reads an ``ExportLogsServiceRequest`` body, ``http/protobuf``
  (``opentelemetry-proto``) or ``http/json`` (the OTLP/JSON mapping:
  lowerCamelCase keys, snake_case accepted too, ``intValue`` as a string or a
  number, ids in hex), into flat :class:`LogRecord` values; a body that is not
  one raises :class:`OtlpDecodeError` with a short reason.
- :func:`map_record` turns one record into an event, or says why not:

  ==============================  ===============================================
  ``claude_code.api_request``     ``claude.request`` (the SDK client's details
                                  shape, :func:`gitaudit.claude.record.request_details`;
                                  ``cost_usd`` as Claude Code computed it,
                                  ``cost_source = "claude_code"``)
  ``claude_code.api_error``       ``claude.request``, outcome failure, with
                                  ``status_code`` and the error text
  ``claude_code.tool_decision``   ``claude.tool_use`` with ``phase: "decision"``
  anything else                   skipped (counted by the receiver per name): the
                                  hooks record prompts and tool results
  ==============================  ===============================================

  Every event carries ``correlation_id`` = the Claude Code session (a record
  without ``session.id`` is skipped: it could not be joined) and ``parent_id``
  = the prompt's event id (else the session's): the same name-based ids the
  hooks give those events. The account Claude Code names (``user.id``,
  ``user.email``, ``user.account_uuid``, ``organization.id``) is a claim, kept
  under ``details.claude_user``; who sent the record is the receiver's to say.
- Event ids are derived from the record (session, sequence number, time,
  event name; all its attributes when it has no sequence number): an
  exporter's retry of a batch gives the same ids, which the intake and the
  store keep once.

Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from gitaudit import catalog
from gitaudit.claude.ids import prompt_event_id, session_event_id
from gitaudit.claude.record import request_details

SOURCE: Final = "claude_code"
PREFIX: Final = "claude_code."
MAX_DEPTH: Final = 16  # nesting of attribute values (arrays, key-value lists) we read

# Event names counted under their own label; any other goes under "other".
KNOWN_EVENTS: Final = frozenset({
    "claude_code.api_request", "claude_code.api_error", "claude_code.tool_decision",
    "claude_code.tool_result", "claude_code.user_prompt", "claude_code.assistant_response",
})  # fmt: skip
MAPPED: Final = frozenset(
    {"claude_code.api_request", "claude_code.api_error", "claude_code.tool_decision"}
)

class OtlpDecodeError(ValueError):
    """The body is not an ``ExportLogsServiceRequest``; ``reason`` labels the metric."""

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(slots=True)
class LogRecord:
    """One log record with its resource's attributes (values as plain Python)."""

    name: str  # the event name (claude_code.api_request), or "" when the record has none
    time_ns: int
    attributes: dict[str, Any]
    resource: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``name`` for known Claude Code events, else ``other`` (bounded metric labels)."""
        return self.name if self.name in KNOWN_EVENTS else "other"


# --- decoding ------------------------------------------------------------------------------


def decode(body: bytes, content_type: str) -> list[LogRecord]:
    """The records of a protobuf (``application/x-protobuf``) or JSON body."""
    if content_type == "application/json":
        return decode_json(body)
    return decode_protobuf(body)


def _event_name(explicit: str, body: Any, attributes: Mapping[str, Any]) -> str:
    if explicit:
        return explicit
    if isinstance(body, str) and body.startswith(PREFIX):
        return body
    named = attributes.get("event.name")
    if isinstance(named, str) and named:
        return named if named.startswith(PREFIX) else PREFIX + named
    return ""


def decode_protobuf(body: bytes) -> list[LogRecord]:
    """Records of an OTLP/protobuf ``ExportLogsServiceRequest``."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise OtlpDecodeError(f"not an OTLP protobuf ExportLogsServiceRequest: {exc}") from exc
    records: list[LogRecord] = []
    for resource_logs in request.resource_logs:
        resource = _pb_attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for item in scope_logs.log_records:
                attributes = _pb_attributes(item.attributes)
                body_value = _pb_value(item.body, 0) if item.HasField("body") else None
                records.append(LogRecord(
                    _event_name(getattr(item, "event_name", ""), body_value, attributes),
                    item.time_unix_nano or item.observed_time_unix_nano, attributes, resource,
                ))  # fmt: skip
    return records


def _pb_attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _pb_value(pair.value, 0) for pair in pairs}


def _pb_value(value: Any, depth: int) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind in {"array_value", "kvlist_value"}:
        if depth >= MAX_DEPTH:
            raise OtlpDecodeError(f"attribute values nested deeper than {MAX_DEPTH} levels")
        if kind == "array_value":
            return [_pb_value(item, depth + 1) for item in value.array_value.values]
        return {pair.key: _pb_value(pair.value, depth + 1) for pair in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if kind == "double_value":
        return _finite(value.double_value)
    return getattr(value, kind)


def _finite(number: float) -> float | str:
    """JSON has no NaN or infinity: those stay visible as text."""
    return number if math.isfinite(number) else str(number)


def decode_json(body: bytes) -> list[LogRecord]:
    """Records of an OTLP/JSON ``ExportLogsServiceRequest``."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise OtlpDecodeError(f"not JSON: {str(exc)[:120]}") from exc
    top = _obj(document, "the request")
    records: list[LogRecord] = []
    for entry in _list(_get(top, "resourceLogs", "resource_logs"), "resourceLogs"):
        resource_logs = _obj(entry, "a resourceLogs entry")
        resource = _obj(_get(resource_logs, "resource") or {}, "resource")
        resource_attrs = _json_attributes(_get(resource, "attributes"))
        for scope in _list(_get(resource_logs, "scopeLogs", "scope_logs"), "scopeLogs"):
            scope_logs = _obj(scope, "a scopeLogs entry")
            for item in _list(_get(scope_logs, "logRecords", "log_records"), "logRecords"):
                records.append(_json_record(_obj(item, "a log record"), resource_attrs))
    return records


def _json_record(item: dict[str, Any], resource: dict[str, Any]) -> LogRecord:
    attributes = _json_attributes(_get(item, "attributes"))
    body = _get(item, "body")
    body_value = _json_value(body, 0) if body is not None else None
    explicit = _get(item, "eventName", "event_name") or ""
    if not isinstance(explicit, str):
        raise OtlpDecodeError("eventName must be a string")
    time_ns = _nanos(_get(item, "timeUnixNano", "time_unix_nano")) or _nanos(
        _get(item, "observedTimeUnixNano", "observed_time_unix_nano")
    )
    return LogRecord(_event_name(explicit, body_value, attributes), time_ns, attributes,
                     resource)  # fmt: skip


def _get(obj: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in obj:
            return obj[name]
    return None


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OtlpDecodeError(f"{what} must be a JSON object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpDecodeError(f"{what} must be a JSON array")
    return value


def _nanos(value: Any) -> int:
    """A ``fixed64`` time: a decimal string (OTLP/JSON) or a number; 0 when absent."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | str | float):
        raise OtlpDecodeError("timeUnixNano must be an integer or a decimal string")
    try:
        nanos = int(value)
    except (ValueError, OverflowError) as exc:
        raise OtlpDecodeError("timeUnixNano must be an integer or a decimal string") from exc
    if not 0 <= nanos < 1 << 64:
        raise OtlpDecodeError("timeUnixNano out of range")
    return nanos


def _json_attributes(value: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in _list(value, "attributes"):
        pair = _obj(item, "an attribute")
        key = pair.get("key")
        if not isinstance(key, str):
            raise OtlpDecodeError("an attribute has no string key")
        found[key] = _json_value(pair.get("value"), 0)
    return found


def _json_value(value: Any, depth: int) -> Any:  # noqa: PLR0912 - one branch per AnyValue kind
    """An OTLP/JSON ``AnyValue`` as plain Python (an empty one is None)."""
    if value is None:
        return None
    value = _obj(value, "an attribute value")
    if not value:
        return None
    if len(value) != 1:
        raise OtlpDecodeError("an attribute value must have exactly one kind")
    ((kind, inner),) = value.items()
    if kind in {"stringValue", "string_value"}:
        if not isinstance(inner, str):
            raise OtlpDecodeError("stringValue must be a string")
        return inner
    if kind in {"boolValue", "bool_value"}:
        if not isinstance(inner, bool):
            raise OtlpDecodeError("boolValue must be true or false")
        return inner
    if kind in {"intValue", "int_value"}:
        return _json_int(inner)
    if kind in {"doubleValue", "double_value"}:
        return _json_double(inner)
    if kind in {"bytesValue", "bytes_value"}:
        try:
            return base64.b64decode(str(inner), validate=True).hex()
        except (binascii.Error, ValueError) as exc:
            raise OtlpDecodeError("bytesValue must be base64") from exc
    if kind in {"arrayValue", "array_value", "kvlistValue", "kvlist_value"}:
        if depth >= MAX_DEPTH:
            raise OtlpDecodeError(f"attribute values nested deeper than {MAX_DEPTH} levels")
        values = _list(_obj(inner, kind).get("values"), kind)
        if kind in {"arrayValue", "array_value"}:
            return [_json_value(item, depth + 1) for item in values]
        found: dict[str, Any] = {}
        for item in values:
            pair = _obj(item, "a key-value entry")
            if not isinstance(pair.get("key"), str):
                raise OtlpDecodeError("a key-value entry has no string key")
            found[pair["key"]] = _json_value(pair.get("value"), depth + 1)
        return found
    raise OtlpDecodeError(f"unknown attribute value kind {kind[:40]!r}")


def _json_int(inner: Any) -> int:
    if isinstance(inner, bool) or not isinstance(inner, int | str):
        raise OtlpDecodeError("intValue must be an integer or a decimal string")
    try:
        number = int(inner)
    except ValueError as exc:
        raise OtlpDecodeError("intValue must be an integer or a decimal string") from exc
    if not -(1 << 63) <= number < 1 << 63:
        raise OtlpDecodeError("intValue out of the int64 range")
    return number


def _json_double(inner: Any) -> float | str:
    if isinstance(inner, bool) or not isinstance(inner, int | float | str):
        raise OtlpDecodeError("doubleValue must be a number")
    if isinstance(inner, str):
        if inner in {"NaN", "Infinity", "-Infinity"}:
            return inner
        try:
            return _finite(float(inner))
        except ValueError as exc:
            raise OtlpDecodeError("doubleValue must be a number") from exc
    return _finite(float(inner))


# --- mapping -------------------------------------------------------------------------------


@dataclass(slots=True)
class Mapped:
    """What became of one record: an event, or why there is none (``skipped``)."""

    event: dict[str, Any] | None
    skipped: str | None = None  # "not_mapped" (hooks cover it, or unknown) | "no_session"


def _text(value: Any, limit: int = 2000) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = value if isinstance(value, str) else str(value)
    return text[:limit] if text else None


def _number(value: Any) -> int | float | None:
    """An attribute Claude Code sends as a number or as a numeric string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        return int(number) if number.is_integer() and "." not in value else number
    return None


def _int(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _occurred(record: LogRecord, received: float) -> tuple[str, int]:
    """(RFC 3339 time, milliseconds for the event id) of the record: its own time; else
    ``received``, and 0 in the id (a resent record must get the same id)."""
    if record.time_ns:
        return catalog.now_rfc3339(record.time_ns / 1e9), record.time_ns // 1_000_000
    return catalog.now_rfc3339(received), 0


# The account Claude Code names: (details key, attribute, personal: pseudonymized with
# hash_user_ids like the actor's names).
_ACCOUNT: Final = (
    ("id", "user.id", True), ("email", "user.email", True),
    ("account_uuid", "user.account_uuid", True), ("organization_id", "organization.id", False),
)  # fmt: skip


def _claude_user(record: LogRecord, pseudonym: Callable[[str], str] | None
                 ) -> dict[str, Any] | None:
    attrs, resource = record.attributes, record.resource
    found: dict[str, Any] = {}
    for key, name, personal in _ACCOUNT:
        value = _text(attrs.get(name, resource.get(name)))
        if value is None:
            continue
        if personal and pseudonym is not None:
            value = pseudonym(value.strip().lower() if key == "email" else value.strip())
        found[key] = value
    return found or None


def map_record(
    record: LogRecord,
    *,
    actor: Mapping[str, Any],
    received: float,
    error_max_chars: int = 2000,
    pseudonym: Callable[[str], str] | None = None,
) -> Mapped:
    """The raw (not yet sanitized) event of one record, or why it is skipped.

    ``actor`` is who sent it as far as the receiver can tell (host, and the
    uid when proven); ``received`` (epoch seconds) dates a record without a time;
    ``pseudonym`` (with ``hash_user_ids``) replaces the account's personal ids.
    """
    if record.name not in MAPPED:
        return Mapped(None, "not_mapped")
    attrs = record.attributes
    session_id = _text(attrs.get("session.id"), 200)
    if session_id is None:
        return Mapped(None, "no_session")
    prompt_id = _text(attrs.get("prompt.id"), 200)
    occurred_at, ms = _occurred(record, received)
    common: dict[str, Any] = {"session_id": session_id, "prompt_id": prompt_id}
    sequence = _int(attrs.get("event.sequence"))
    if sequence is not None:
        common["event_sequence"] = sequence
    version = _text(record.resource.get("service.version"), 100)
    if version is not None:
        common["claude_code_version"] = version
    terminal = _text(attrs.get("terminal.type", record.resource.get("terminal.type")), 100)
    if terminal is not None:
        common["terminal_type"] = terminal
    user = _claude_user(record, pseudonym)
    if user is not None:
        common["claude_user"] = user
    if record.name == "claude_code.tool_decision":
        operation, outcome, found, error = _decision(attrs)
        duration = None
    else:
        operation, outcome, found, error = _request(record.name, attrs)
        duration = found.get("latency_ms")
    details = {**common, **found}
    # what tells this record from every other of the session; without a sequence number,
    # everything it says (a resent record is the same record, anything else is not)
    which = str(sequence) if sequence is not None else json.dumps(
        attrs, sort_keys=True, default=str)
    seed = hashlib.sha256(
        f"otlp\0{session_id}\0{record.name}\0{which}\0{record.time_ns}\0"
        f"{attrs.get('tool_use_id')}\0{attrs.get('request_id')}".encode("utf-8", "replace")
    ).digest()
    if error is not None and len(error) > error_max_chars:
        error = error[: max(error_max_chars - 1, 0)] + "…"
    return Mapped({
        "id": catalog.uuid7(ms=ms, seed=seed),
        "schema_version": catalog.SCHEMA_VERSION,
        "occurred_at": occurred_at,
        "duration_ms": duration,
        "operation": operation,
        "category": catalog.category_for(operation, details),
        "outcome": outcome,
        "severity": catalog.severity_for(operation, details, outcome),
        "source": SOURCE,
        "correlation_id": session_id,
        "parent_id": prompt_event_id(session_id, prompt_id) if prompt_id
        else session_event_id(session_id),
        "actor": dict(actor),
        "repo": None,
        "result": {"exit_code": None, "error": error},
        "details": details,
    })  # fmt: skip


def _request(name: str, attrs: Mapping[str, Any]) -> tuple[str, str, dict[str, Any], str | None]:
    """``claude.request`` from ``api_request`` / ``api_error``."""
    failed = name == "claude_code.api_error"
    latency = _number(attrs.get("duration_ms"))
    found = request_details(
        model=_text(attrs.get("model"), 200),
        latency_ms=float(latency) if latency is not None else None,
        request_id=_text(attrs.get("request_id"), 200),
        attempts=_int(attrs.get("attempt")),
        input_tokens=_int(attrs.get("input_tokens")),
        output_tokens=_int(attrs.get("output_tokens")),
        cache_creation_input_tokens=_int(attrs.get("cache_creation_tokens")),
        cache_read_input_tokens=_int(attrs.get("cache_read_tokens")),
    )
    cost = _number(attrs.get("cost_usd"))
    found.update(
        cost_usd=float(cost) if cost is not None else None,
        cost_source=SOURCE,
        price_table=None,
    )
    for extra in ("speed", "query_source", "effort"):
        value = _text(attrs.get(extra), 100)
        if value is not None:
            found[extra] = value
    error = None
    if failed:
        found["error_type"] = "api_error"
        found["status_code"] = _int(attrs.get("status_code"))
        error = _text(attrs.get("error"), 100_000) or "API error"
    return "claude.request", "failure" if failed else "success", found, error


def _decision(attrs: Mapping[str, Any]) -> tuple[str, str, dict[str, Any], str | None]:
    """``claude.tool_use`` (``phase: decision``) from ``tool_decision``."""
    decision = _text(attrs.get("decision"), 100)
    found: dict[str, Any] = {
        "phase": "decision",
        "tool": _text(attrs.get("tool_name"), 200),
        "tool_use_id": _text(attrs.get("tool_use_id"), 200),
        "decision": decision,
        "decision_source": _text(attrs.get("source"), 100),
    }
    refused = decision is not None and decision.lower() in {"reject", "deny", "denied"}
    return "claude.tool_use", "failure" if refused else "success", found, None

