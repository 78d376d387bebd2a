"""The event model (schema version 1) and the operation catalog.

Capture code builds plain dicts (see :mod:`gitaudit.catalog`, which is cheap to
import); this pydantic model validates them where pydantic's import cost does
not matter: at ingest, in the daemon and in readers. Field names are the public
contract of ``gitaudit log --format json``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    "now_rfc3339",
    "operation_for",
    "parse_timestamp",
    "severity_for",
    "uuid7",
    "validate_event",
]


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")
    return value


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
    operation: str
    category: str
    outcome: str
    severity: str = "low"
    source: str
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
        return now_rfc3339(parse_timestamp(value).timestamp())

    @field_validator("operation")
    @classmethod
    def _operation(cls, value: str) -> str:
        return _choice(value, OPERATIONS, "operation")

    @field_validator("category")
    @classmethod
    def _category(cls, value: str) -> str:
        return _choice(value, CATEGORIES, "category")

    @field_validator("outcome")
    @classmethod
    def _outcome(cls, value: str) -> str:
        return _choice(value, OUTCOMES, "outcome")

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: str) -> str:
        return _choice(value, SEVERITIES, "severity")

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return _choice(value, SOURCES, "source")

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


def validate_event(raw: dict[str, Any]) -> Event:
    """Validate a plain event dict (from capture, the spool or the socket)."""
    return Event.model_validate(raw)
