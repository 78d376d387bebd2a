"""Pure helpers of the reader commands: time parsing and output formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from gitaudit.cli.common import OutputFormat, parse_when
from gitaudit.cli.output import CSV_COLUMNS, TABLE_COLUMNS, render, table_row
from gitaudit.errors import UsageError

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", datetime(2026, 11, 22, 10, 0, tzinfo=UTC)),
        ("7d", datetime(2026, 11, 15, 12, 0, tzinfo=UTC)),
        ("30m", datetime(2026, 11, 22, 11, 30, tzinfo=UTC)),
        ("1w", datetime(2026, 11, 15, 12, 0, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T12:00:00+02:00", datetime(2026, 11, 1, 10, 0, tzinfo=UTC)),
        ("2026-11-01T12:00:00Z", datetime(2026, 11, 1, 12, 0, tzinfo=UTC)),
    ],
)
def test_parse_when(text: str, expected: datetime) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "2x", "", "-3h"])
def test_parse_when_rejects_with_accepted_forms(text: str) -> None:
    with pytest.raises(UsageError, match="ISO 8601"):
        parse_when(text, NOW)


EVENT = {
    "id": "0193-x",
    "occurred_at": "2026-11-22T04:50:18.237829Z",
    "operation": "git.push",
    "outcome": "success",
    "severity": "high",
    "actor": {"user": "alice", "uid": 1000},
    "repo": {"name": "repo", "branch": "main"},
    "details": {"refs": [{"ref": "refs/heads/main", "forced": True}]},
    "duration_ms": 12.5,
}


def test_json_and_jsonl_round_trip() -> None:
    out = io.StringIO()
    render([EVENT, EVENT], OutputFormat.json, out)
    assert json.loads(out.getvalue()) == [EVENT, EVENT]
    out = io.StringIO()
    render([EVENT], OutputFormat.jsonl, out)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [EVENT]


def test_csv_flattens_nested_fields() -> None:
    out = io.StringIO()
    render([EVENT], OutputFormat.csv, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert rows[0]["actor.user"] == "alice"
    assert json.loads(rows[0]["details"])["refs"][0]["forced"] is True
    assert rows[0]["repo.head_after"] == ""


def test_table_shows_force_push_mark() -> None:
    out = io.StringIO()
    render([EVENT], OutputFormat.table, out)
    text = out.getvalue()
    assert "+refs/heads/main" in text and "git.push" in text and "1 event(s)" in text


@pytest.mark.parametrize(
    ("actor", "shown"),
    [
        # a forged config change: the git identity is the client's word, the user the kernel's
        ({"user": "mallory", "uid": 1001, "git_name": "root", "verified": True}, "mallory (root)"),
        ({"user": "alice", "git_name": "alice", "verified": True}, "alice"),
        ({"user": "bob", "git_name": "Bob B"}, "bob? (Bob B)"),  # nobody vouched for bob
        ({"uid": 1002, "verified": True}, "1002"),
        ({"git_name": "Carol"}, "(Carol)"),
        ({}, ""),
    ],
)
def test_table_actor_is_the_verified_os_user_with_the_git_identity_beside(
    actor: dict[str, object], shown: str
) -> None:
    row = table_row({**EVENT, "actor": actor})
    assert row[TABLE_COLUMNS.index("actor")] == shown


def test_table_summary_survives_odd_detail_shapes() -> None:
    for details in ({"refs": "main"}, {"refs": ["main", None]}, {"files": {"a": 1}}):
        for operation in ("git.push", "conflict.detected"):
            table_row({**EVENT, "operation": operation, "details": details})


def test_watch_lines_show_a_missing_old_or_new_as_none_not_python_none(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from gitaudit.cli.watch import _say

    _say("recorded", repo="/r", ref="refs/heads/new", old=None, new="abc1234", to="spool")
    line = capsys.readouterr().err
    assert line == (
        "gitaudit watch: recorded repo=/r ref=refs/heads/new old=(none) new=abc1234 to=spool\n"
    )
