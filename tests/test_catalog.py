"""Operation catalog, classification, ids, canonical JSON."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from pydantic import ValidationError

from gitaudit import catalog
from gitaudit.events import Event, describe_invalid, validate_event


@pytest.mark.parametrize(
    ("subcommand", "operation"),
    [
        ("push", "git.push"),
        ("cherry-pick", "git.cherry_pick"),
        ("switch", "git.checkout"),
        ("status", "git.other"),
        (None, "git.other"),
    ],
)
def test_operation_for(subcommand: str | None, operation: str) -> None:
    assert catalog.operation_for(subcommand) == operation


def _ref(**flags: bool) -> dict[str, object]:
    return {"ref": "refs/heads/x", **flags}


@pytest.mark.parametrize(
    ("found", "severity"),
    [
        ({"ref": "refs/heads/x", "created": True, "deleted": False, "forced": None}, "low"),
        ({"ref": "refs/heads/x", "created": False, "deleted": False, "forced": False}, "low"),
        ({"ref": "refs/heads/x", "created": False, "deleted": False, "forced": True}, "medium"),
        ({"ref": "refs/tags/v1", "created": False, "deleted": True, "forced": None}, "medium"),
        ({"refs": [{"ref": "a"}, {"ref": "refs/tags/v1", "deleted": True}]}, "medium"),
    ],
)
def test_ref_update_severity(found: dict[str, object], severity: str) -> None:
    assert catalog.severity_for("ref.update", found, "success") == severity


def test_push_category_and_severity() -> None:
    created = {"refs": [_ref(created=True)]}
    deleted = {"refs": [_ref(deleted=True), _ref(created=True)]}
    forced = {"refs": [_ref(forced=True)]}
    assert catalog.category_for("git.push", created) == "create"
    assert catalog.category_for("git.push", deleted) == "delete"
    assert catalog.category_for("git.push", forced) == "update"
    assert catalog.severity_for("git.push", forced, "success") == "high"
    assert catalog.severity_for("git.push", deleted, "success") == "medium"
    assert catalog.severity_for("git.push", created, "success") == "low"


@pytest.mark.parametrize(
    ("operation", "args", "category"),
    [
        ("git.branch", ["-d", "old"], "delete"),
        ("git.branch", ["new"], "create"),
        ("git.branch", [], "read"),
        ("git.branch", ["-m", "a", "b"], "update"),
        ("git.tag", ["v1"], "create"),
        ("git.tag", ["-l"], "read"),
        ("git.clone", [], "read"),
        ("git.commit", [], "create"),
    ],
)
def test_category_from_arguments(operation: str, args: list[str], category: str) -> None:
    assert catalog.category_for(operation, {}, args) == category


def test_other_reads_and_writes() -> None:
    assert catalog.category_for("git.other", {"subcommand": "status"}) == "read"
    assert catalog.category_for("git.other", {"subcommand": "gc"}) == "update"


def test_uuid7_is_version_7_and_time_ordered() -> None:
    first = catalog.uuid7()
    time.sleep(0.002)
    second = catalog.uuid7()
    parsed = uuid.UUID(first)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert first < second
    assert abs(int(first.replace("-", "")[:12], 16) / 1000 - time.time()) < 5


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert catalog.canonical_json({"b": "ü", "a": [1, 2.5]}) == '{"a":[1,2.5],"b":"ü"}'.encode()


def test_rfc3339_format() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", catalog.now_rfc3339())


def _minimal() -> dict[str, object]:
    return {
        "operation": "git.push",
        "category": "update",
        "outcome": "success",
        "source": "wrapper",
        "correlation_id": "job-1",
    }


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2026-11-22T04:50:18.237829Z", "2026-11-22T04:50:18.237829Z"),  # canonical: kept
        ("2026-11-22T04:50:18Z", "2026-11-22T04:50:18.000000Z"),
        ("2026-11-22 05:50:18.237829+01:00", "2026-11-22T04:50:18.237829Z"),
    ],
)
def test_timestamps_are_stored_canonical(given: str, stored: str) -> None:
    assert validate_event({**_minimal(), "occurred_at": given}).occurred_at == stored


@pytest.mark.parametrize("bad", ["2026-13-22T04:50:18.237829Z", "2026-02-30T04:50:18.237829Z"])
def test_impossible_canonical_looking_timestamps_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        validate_event({**_minimal(), "occurred_at": bad})


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
        ("0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
        ("{0190a1b2c3d47e5f8a9b0c1d2e3f4a5b}", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
    ],
)
def test_ids_are_stored_canonical(given: str, stored: str) -> None:
    assert validate_event({**_minimal(), "id": given}).id == stored


def test_unknown_choice_names_the_value_and_the_choices() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_event({**_minimal(), "operation": "git.teleport"})
    text = describe_invalid(caught.value)
    assert "unknown operation 'git.teleport'" in text
    assert "'git.push'" in text


def test_event_model_fills_defaults_and_normalizes_time() -> None:
    event = validate_event({**_minimal(), "occurred_at": "2026-11-22T05:00:00+01:00"})
    record = event.to_record()
    assert record["occurred_at"] == "2026-11-22T04:00:00.000000Z"
    assert uuid.UUID(record["id"]).version == 7
    assert record["schema_version"] == 1
    assert set(record) >= {
        "actor",
        "repo",
        "result",
        "details",
        "chain_id",
        "seq",
        "prev_hash",
        "hash",
    }
    assert "hash" not in event.payload() and "seq" in event.payload()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("operation", "git.teleport"),
        ("category", "x"),
        ("outcome", "meh"),
        ("source", "?"),
        ("schema_version", 2),
        ("id", "not-a-uuid"),
        ("correlation_id", ""),
        ("surprise", 1),
    ],
)
def test_event_model_rejects_bad_fields(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        Event.model_validate({**_minimal(), field: value})


@pytest.mark.parametrize(
    ("operation", "argv"),
    [
        ("git.branch", ["branch", "-D", "tmp"]),
        ("git.branch", ["branch", "-d", "tmp"]),
        ("git.branch", ["branch", "--delete", "tmp"]),
        ("git.branch", ["branch", "-dr", "origin/tmp"]),
        ("git.tag", ["tag", "-d", "v1"]),
        ("git.push", ["push", "--delete", "origin", "tmp"]),
        ("git.push", ["push", "origin", ":tmp"]),
        ("git.other", ["update-ref", "-d", "refs/heads/tmp"]),
        ("git.other", ["symbolic-ref", "--delete", "refs/heads/alias"]),
    ],
)
def test_every_ref_deletion_is_category_delete_and_severity_medium(
    operation: str, argv: list[str]
) -> None:
    from gitaudit.capture import record

    inv, found = record.command_details(argv)
    assert catalog.operation_for(inv.subcommand) == operation
    assert catalog.deletes_ref(operation, found)
    assert catalog.category_for(operation, found, inv.args) == "delete"
    assert catalog.severity_for(operation, found, "success") == "medium"


@pytest.mark.parametrize(
    "argv",
    [["branch", "tmp"], ["branch", "-m", "a", "b"], ["tag", "v1"], ["update-ref", "refs/x", "a"],
     ["push", "origin", "main"]],
)
def test_other_ref_commands_stay_low(argv: list[str]) -> None:
    from gitaudit.capture import record

    inv, found = record.command_details(argv)
    operation = catalog.operation_for(inv.subcommand)
    assert not catalog.deletes_ref(operation, found)
    assert catalog.severity_for(operation, found, "success") == "low"
