"""The event model (schema version 1) and the operation catalog.

Capture code builds plain dicts (see :mod:`gitaudit.catalog`, which is cheap to
import); this pydantic model validates them where pydantic's import cost does
not matter: at ingest, in the daemon and in readers. Field names are the public
contract of ``gitaudit log --format json``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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

__all__ = [
    "CATEGORIES",
    "INTEGRITY_FIELDS",
    "OPERATIONS",
    "OUTCOMES",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "SOURCES",
    "Actor",
    "CIInfo",
    "Event",
    "Repo",
    "Result",
    "canonical_json",
    "category_for",
    "describe_invalid",
    "now_rfc3339",
    "operation_for",
    "parse_timestamp",
    "severity_for",
    "uuid7",
    "validate_event",
]


_LOWER_HEX = "0123456789abcdef"


def parse_timestamp(value: str) -> datetime:
    """Parse an RFC 3339 timestamp; naive values are taken as UTC."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CIInfo(_Strict):
    """The CI job an event ran in."""

    provider: str | None = None
    job: str | None = None
    run: str | None = None
    pipeline: str | None = None
    url: str | None = None


class Actor(_Strict):
    """Who did it: OS account, git identity, host, CI job."""

    uid: int | None = None
    user: str | None = None
    git_name: str | None = None
    git_email: str | None = None
    host: str | None = None
    verified: bool = False
    ci: CIInfo | None = None


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

    exit_code: int | None = None
    error: str | None = None


class Event(_Strict):
    """One audit record (DESIGN.md "Event (schema version 1)")."""

    id: str = Field(default_factory=uuid7)
    schema_version: int = SCHEMA_VERSION
    occurred_at: str = Field(default_factory=now_rfc3339)
    duration_ms: float | None = None
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
    seq: int | None = None
    prev_hash: str | None = None
    hash: str | None = None

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
            return value
        return now_rfc3339(parse_timestamp(value).timestamp())

    @field_validator("correlation_id")
    @classmethod
    def _correlation(cls, value: str) -> str:
        if not value or len(value) > 200:
            raise ValueError("correlation_id must be 1 to 200 characters")
        return value

    def to_record(self) -> dict[str, Any]:
        """Plain JSON-ready dict with every contract field present."""
        return self.model_dump(mode="json")

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
        if error["type"] == "literal_error":
            value = str(error["input"])[:40]
            expected = (error.get("ctx") or {}).get("expected", "a known value")
            parts.append(f"{where}: unknown {where} {value!r}; expected {expected}")
        else:
            parts.append(f"{where}: {error['msg']}")
    if exc.error_count() > shown:
        parts.append(f"and {exc.error_count() - shown} more")
    return "invalid event: " + "; ".join(parts)


def validate_event(raw: dict[str, Any]) -> Event:
    """Validate a plain event dict (from capture, the spool or the socket)."""
    return Event.model_validate(raw)
