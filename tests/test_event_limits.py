"""The event model refuses what no later stage could take (README "Accepted values")."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from gitaudit.events import (
    EARLIEST,
    LATEST,
    MAX_DEPTH,
    MAX_INDEXED_BYTES,
    canonical_json,
    describe_invalid,
    gitaudit_only,
    validate_event,
)


def _event(**fields: Any) -> dict[str, Any]:
    return {
        "operation": "git.commit",
        "category": "create",
        "outcome": "success",
        "source": "wrapper",
        "correlation_id": "job-1",
        **fields,
    }


def _nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"duration_ms": math.nan}, "duration_ms"),
        ({"duration_ms": math.inf}, "duration_ms"),
        ({"duration_ms": -math.inf}, "duration_ms"),
        ({"details": {"cost": {"usd": math.nan}}}, "details.cost.usd"),
        ({"occurred_at": "0001-01-01T00:00:00Z"}, "occurred_at"),
        ({"occurred_at": "0001-01-01T00:00:00.000000Z"}, "occurred_at"),
        ({"occurred_at": "0001-01-01T00:00:00+01:00"}, "occurred_at"),
        ({"occurred_at": "9999-12-31T23:59:59-01:00"}, "occurred_at"),
        ({"occurred_at": "1969-12-31T23:59:59Z"}, "occurred_at"),
        ({"details": {"x": "a\x00b"}}, "details.x"),
        ({"details": {"a\x00": 1}}, "details key"),
        ({"actor": {"git_name": "\x00"}}, "actor.git_name"),
        ({"correlation_id": "job\x00"}, "correlation_id"),
        ({"details": {"x": ["ok", "\ud800"]}}, "details.x[1]"),
        ({"result": {"error": "\udfff"}}, "result.error"),
        ({"details": {"n": 10**5000}}, "details.n"),  # JSON text cannot carry it
        ({"actor": {"uid": 2**32}}, "actor.uid"),
        ({"actor": {"uid": -1}}, "actor.uid"),
        ({"result": {"exit_code": 2**64}}, "result.exit_code"),
        ({"seq": 2**63}, "seq"),
        ({"details": {"deep": _nest(MAX_DEPTH)}}, "nested deeper"),
        ({"details": {"x": object()}}, "details.x"),
        ({"details": {"x": b"a\x00b"}}, "details.x"),  # judged as the text it becomes
        ({"details": {"x": {math.nan}}}, "details.x[0]"),
        ({"repo": {"path": "é" * (MAX_INDEXED_BYTES // 2 + 1)}}, "repo.path"),
        ({"actor": {"user": "u" * (MAX_INDEXED_BYTES + 1)}}, "actor.user"),
        ({"details": []}, "details"),
        ({"actor": "root"}, "actor"),
    ],
)
def test_unstorable_values_are_refused_and_named(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_event(_event(**fields))
    message = describe_invalid(caught.value)
    assert message.startswith("invalid event: ")
    assert named in message, message


@pytest.mark.parametrize(
    "fields",
    [
        {"occurred_at": "1970-01-01T00:00:00Z"},
        {"occurred_at": "9999-12-31T23:59:59.999999Z"},
        {"occurred_at": "9999-12-31T22:59:59-01:00"},
        {"duration_ms": 1e308},
        {"details": {"n": 2**64, "m": -(10**40), "digits": "1234567890123456789012"}},
        {"details": {"deep": _nest(MAX_DEPTH - 2)}},  # event 1, details 2, then 62 lists
        {"details": {"text": "\\u0000 is how JSON writes NUL", "wide": [[1]] * 100}},
        {"details": {"pair": (1, 2), "raw": b"bytes", "set": {1, 2}, "keyed": {(1, 2): 3}}},
        {"repo": {"path": "é" * (MAX_INDEXED_BYTES // 2)}},
        {"result": {"error": "x" * 100_000}},  # not indexed: any length
    ],
)
def test_values_inside_the_limits_are_kept_and_hashable(fields: dict[str, Any]) -> None:
    record = validate_event(_event(**fields)).to_record()
    canonical_json(record).decode("utf-8")  # what the store writer hashes and stores


def test_timestamps_in_range_are_stored_exactly() -> None:
    assert EARLIEST.year == 1970 and LATEST.year == 9999
    stored = validate_event(_event(occurred_at="9999-12-31T23:59:59.999999+00:00")).occurred_at
    assert stored == "9999-12-31T23:59:59.999999Z"


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        ({"source": "daemon", "operation": "audit.config_changed"}, True),
        ({"source": "trace2"}, True),
        ({"operation": "audit.verify"}, True),
        ({"operation": "audit.rejected"}, True),
        ({"source": "wrapper", "operation": "git.push"}, False),
        ({"source": "hook", "operation": 7}, False),
    ],
)
def test_what_only_gitaudit_says(fields: dict[str, Any], refused: bool) -> None:
    assert (gitaudit_only(_event(**fields)) is not None) is refused
