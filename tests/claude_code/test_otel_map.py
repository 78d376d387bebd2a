"""Claude Code's OTLP log records -> events (gitaudit.claude.otel_map), without a daemon."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from gitaudit.claude import otel_map
from gitaudit.claude.record import REQUEST_FIELDS
from gitaudit.events import validate_event
from tests.claude_code.otlp_client import (
    FIXTURES,
    JSON,
    PROTOBUF,
    api_request,
    claude_record,
    export_request,
    to_json,
)

NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-5c6d-9e0f-1a2b3c4d5e6f")


def _map(record: otel_map.LogRecord) -> dict[str, Any]:
    mapped = otel_map.map_record(record, actor={"host": "h"}, received=1_800_000_000.0)
    assert mapped.event is not None, mapped.skipped
    return mapped.event


def test_json_and_protobuf_captures_decode_to_the_same_records() -> None:
    from_pb = otel_map.decode((FIXTURES / "cli-2.1.197-session.pb").read_bytes(), PROTOBUF)
    request = export_request([])
    request.ParseFromString((FIXTURES / "cli-2.1.197-session.pb").read_bytes())
    from_json = otel_map.decode(to_json(request), JSON)
    assert [(r.name, r.time_ns, r.attributes, r.resource) for r in from_pb] == [
        (r.name, r.time_ns, r.attributes, r.resource) for r in from_json]


def test_request_details_have_the_sdk_clients_shape() -> None:
    event = _map(otel_map.decode(export_request([api_request("s", 1, "p")])
                                 .SerializeToString(), PROTOBUF)[0])  # fmt: skip
    assert list(event["details"]).index("provider") < list(event["details"]).index("model")
    assert set(REQUEST_FIELDS) <= set(event["details"])
    assert validate_event(event).operation == "claude.request"


def test_every_mapped_event_validates() -> None:
    records = otel_map.decode((FIXTURES / "cli-2.1.197-session.json").read_bytes(), JSON)
    records += otel_map.decode((FIXTURES / "cli-2.1.197-api-error.json").read_bytes(), JSON)
    for record in records:
        mapped = otel_map.map_record(record, actor={"host": "h"}, received=0.0)
        if mapped.event is not None:
            validate_event(mapped.event)
        else:
            assert record.name in {"claude_code.user_prompt", "claude_code.tool_result",
                                   "claude_code.assistant_response"}  # fmt: skip


def test_same_record_same_id_other_record_other_id() -> None:
    first = api_request("s", 1, "p", time_ns=1_800_000_000_000_000_000)
    again = api_request("s", 1, "p", time_ns=1_800_000_000_000_000_000)
    other = api_request("s", 2, "p", time_ns=1_800_000_000_000_000_000)
    ids = [_map(otel_map.decode(export_request([r]).SerializeToString(), PROTOBUF)[0])["id"]
           for r in (first, again, other)]  # fmt: skip
    assert ids[0] == ids[1] != ids[2]
    assert uuid.UUID(ids[0]).version == 7


def test_json_variants_snake_case_numbers_bytes_nesting_event_name() -> None:
    body = {"resource_logs": [{"scope_logs": [{"log_records": [{
        "time_unix_nano": 1_800_000_000_000_000_000,
        "event_name": "claude_code.api_request",
        "attributes": [
            {"key": "session.id", "value": {"string_value": "s"}},
            {"key": "input_tokens", "value": {"int_value": 7}},
            {"key": "cost_usd", "value": {"doubleValue": "0.5"}},
            {"key": "blob", "value": {"bytesValue": base64.b64encode(b"\x01\x02").decode()}},
            {"key": "nested", "value": {"kvlistValue": {"values": [
                {"key": "a", "value": {"arrayValue": {"values": [{"boolValue": True}, {}]}}}]}}},
        ],
    }]}]}]}  # fmt: skip
    (record,) = otel_map.decode(json.dumps(body).encode(), JSON)
    assert record.name == "claude_code.api_request"
    assert record.attributes["blob"] == "0102"
    assert record.attributes["nested"] == {"a": [True, None]}
    event = _map(record)
    assert event["details"]["input_tokens"] == 7 and event["details"]["cost_usd"] == 0.5
    assert event["occurred_at"].startswith("2027-01-15")


def test_event_name_from_attribute_when_the_body_is_not_one() -> None:
    record = claude_record("tool_decision", "s", 1, prompt_id="p", tool_name="Bash",
                           decision="accept", source="config")  # fmt: skip
    record.body.string_value = "some text"
    (decoded,) = otel_map.decode(export_request([record]).SerializeToString(), PROTOBUF)
    assert decoded.name == "claude_code.tool_decision"


@pytest.mark.parametrize("body", [
    b"[]", b'{"resourceLogs": {}}', b'{"resourceLogs": [{"scopeLogs": [5]}]}',
    b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [{"key": 1}]}]}]}]}',
    b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]}',
    b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [{"key": "k", '
    b'"value": {"intValue": "99999999999999999999"}}]}]}]}]}',
    b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [{"key": "k", '
    b'"value": {"stringValue": "a", "intValue": 1}}]}]}]}]}',
    b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [{"key": "k", '
    b'"value": {"weirdValue": 1}}]}]}]}]}',
])  # fmt: skip
def test_malformed_json_is_refused_with_a_reason(body: bytes) -> None:
    with pytest.raises(otel_map.OtlpDecodeError):
        otel_map.decode(body, JSON)


def test_deep_nesting_is_refused() -> None:
    value: dict[str, Any] = {"stringValue": "x"}
    for _ in range(otel_map.MAX_DEPTH + 2):
        value = {"arrayValue": {"values": [value]}}
    body = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"attributes": [{"key": "k", "value": value}]}]}]}]}  # fmt: skip
    with pytest.raises(otel_map.OtlpDecodeError, match="nested deeper"):
        otel_map.decode(json.dumps(body).encode(), JSON)


def test_record_without_session_is_skipped() -> None:
    record = api_request("s", 1, "p")
    del record.attributes[1]  # session.id
    (decoded,) = otel_map.decode(export_request([record]).SerializeToString(), PROTOBUF)
    assert "session.id" not in decoded.attributes
    mapped = otel_map.map_record(decoded, actor={}, received=0.0)
    assert mapped.event is None and mapped.skipped == "no_session"


def test_unknown_event_names_share_one_label() -> None:
    record = claude_record("brand_new", "s", 1)
    (decoded,) = otel_map.decode(export_request([record]).SerializeToString(), PROTOBUF)
    assert decoded.name == "claude_code.brand_new" and decoded.label == "other"


def test_records_without_sequence_numbers_keep_distinct_ids() -> None:
    def record(tokens: int) -> otel_map.LogRecord:
        return otel_map.LogRecord("claude_code.api_request", 0,
                                  {"session.id": "s", "input_tokens": tokens})  # fmt: skip

    first, other = (_map(record(n))["id"] for n in (1, 2))
    again = otel_map.map_record(record(1), actor={}, received=1_900_000_000.0).event
    assert again is not None and first == again["id"] != other  # resent later: same id
