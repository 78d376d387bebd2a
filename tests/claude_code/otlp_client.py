"""Building and sending OTLP/HTTP logs requests in tests (and the OTLP ingest bench).

:func:`claude_record` builds a log record the way Claude Code 2.1.197 sends it
(attributes as captured from the real CLI, fixtures in ``tests/claude_code/otlp/``);
:func:`export_request` wraps records in an ``ExportLogsServiceRequest`` with
Claude Code's resource; :func:`to_json` gives the OTLP/JSON spelling of it.
"""

from __future__ import annotations

import gzip
import http.client
import json
import time
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

FIXTURES = Path(__file__).resolve().parent / "otlp"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def any_value(value: Any) -> AnyValue:
    """An OTLP AnyValue of a Python value."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def claude_record(event: str, session_id: str, sequence: int, *, prompt_id: str | None = None,
                  time_ns: int | None = None, **attributes: Any) -> LogRecord:
    """One Claude Code log record (``event`` without the ``claude_code.`` prefix)."""
    stamp = time_ns if time_ns is not None else time.time_ns()
    attrs: dict[str, Any] = {
        "user.id": "940f87ff44cb5ee0d39d7f7d5379f883351db607425aa5a69b57b1447fc9441e",
        "session.id": session_id,
        "terminal.type": "non-interactive",
        "event.name": event,
        "event.timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(stamp / 1e9)),
        "event.sequence": sequence,
    }
    if prompt_id is not None:
        attrs["prompt.id"] = prompt_id
    attrs.update(attributes)
    return LogRecord(
        time_unix_nano=stamp, observed_time_unix_nano=stamp,
        body=AnyValue(string_value=f"claude_code.{event}"),
        attributes=[KeyValue(key=key, value=any_value(value)) for key, value in attrs.items()],
    )  # fmt: skip


def api_request(session_id: str, sequence: int, prompt_id: str | None,
                **extra: Any) -> LogRecord:
    """A ``claude_code.api_request`` record as 2.1.197 sends it."""
    attrs: dict[str, Any] = {
        "model": "claude-opus-4-8", "input_tokens": 120, "output_tokens": 30,
        "cache_read_tokens": 0, "cache_creation_tokens": 0, "cost_usd": 0.00135,
        "cost_usd_micros": 1350, "duration_ms": 42, "request_id": f"req_{sequence}",
        "speed": "normal", "query_source": "sdk", "effort": "high",
    }  # fmt: skip
    attrs.update(extra)
    return claude_record("api_request", session_id, sequence, prompt_id=prompt_id, **attrs)


def export_request(records: list[LogRecord], **resource: Any) -> ExportLogsServiceRequest:
    """An ExportLogsServiceRequest with Claude Code's resource and scope."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    attrs = {"host.arch": "amd64", "os.type": "linux", "service.name": "claude-code",
             "service.version": "2.1.197", **resource}  # fmt: skip
    for key, value in attrs.items():
        resource_logs.resource.attributes.add(key=key, value=any_value(value))
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "com.anthropic.claude_code.events"
    scope_logs.scope.version = "2.1.197"
    scope_logs.log_records.extend(records)
    return request


def to_json(request: ExportLogsServiceRequest) -> bytes:
    """The OTLP/JSON body of ``request`` (camelCase, int64 as strings, as the spec says)."""
    return json.dumps(MessageToDict(request)).encode()


class Answer:
    """One HTTP answer."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def response(self) -> ExportLogsServiceResponse:
        """The body as an ExportLogsServiceResponse (protobuf answers)."""
        message = ExportLogsServiceResponse()
        message.ParseFromString(self.body)
        return message

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


class OtlpClient:
    """A kept-alive HTTP/1.1 connection to the receiver."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def post(self, body: bytes, content_type: str = PROTOBUF, *, path: str = "/v1/logs",
             method: str = "POST", gzipped: bool = False,
             headers: dict[str, str] | None = None) -> Answer:
        """Send one request, return the answer (the connection stays open if the server
        keeps it)."""
        sent = {"Content-Type": content_type, **(headers or {})}
        if gzipped:
            body = gzip.compress(body)
            sent["Content-Encoding"] = "gzip"
        self.conn.request(method, path, body=body, headers=sent)
        response = self.conn.getresponse()
        data = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def post_once(port: int, body: bytes, content_type: str = PROTOBUF, **kwargs: Any) -> Answer:
    """One request on a fresh connection."""
    client = OtlpClient(port)
    try:
        return client.post(body, content_type, **kwargs)
    finally:
        client.close()
