"""`gitaudit log --op claude.request` and `gitaudit claude usage` over recorded calls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gitaudit.claude import flush
from gitaudit.transport import spool
from tests.claude import fake
from tests.claude.fake import Endpoint, ask
from tests.cli.helpers import isolated_env

OPUS = "claude-opus-5-5"


def _gitaudit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitaudit", *args], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


@pytest.fixture
def recorded(tmp_path: Path) -> dict[str, str]:
    """Three calls recorded by the client (2 Sonnet, 1 Opus), one old hand-made event;
    the environment `gitaudit` reads them with."""
    audit = fake.settings(tmp_path)
    sonnet = fake.client(Endpoint(fake.ok()), audit)
    sonnet.messages.create(**ask())
    sonnet.messages.create(**ask())
    opus_answer = fake.ok({**fake.message(), "model": OPUS})
    fake.client(Endpoint(opus_answer), audit).messages.create(**{**ask(), "model": OPUS})
    assert flush(30.0)
    old = _old_event()
    spool.append(str(tmp_path / "spool"), [old], audit.spool_segment_bytes)
    return isolated_env(
        tmp_path,
        GITAUDIT_SPOOL_DIR=str(tmp_path / "spool"),
        GITAUDIT_DATABASE_URL=audit.effective_database_url,
    )


def _old_event() -> dict[str, Any]:
    from gitaudit.catalog import uuid7

    return {
        "id": uuid7(), "schema_version": 1, "occurred_at": "2020-01-02T03:04:05.000000Z",
        "duration_ms": 5.0, "operation": "claude.request", "category": "create",
        "outcome": "failure", "severity": "low", "source": "claude", "correlation_id": "old",
        "parent_id": None, "actor": {"user": "bob"}, "repo": {"name": "legacy"},
        "result": {"exit_code": None, "error": "RateLimitError: slow down"},
        "details": {"model": "claude-imaginary", "cost_usd": None,
                    "cost_source": "unknown_model", "input_tokens": None},
    }  # fmt: skip


def test_log_shows_model_tokens_and_cost_columns(recorded: dict[str, str]) -> None:
    done = _gitaudit(recorded, "log", "--op", "claude.request")
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[0]
    for column in ("model", "in", "out", "cost $"):
        assert column in header
    assert "claude-sonnet-4-5-20250929" in done.stdout and OPUS in done.stdout
    assert "0.0081" in done.stdout  # Sonnet: 1200 in x $3 + 300 out x $15 per MTok
    assert "0.0108" in done.stdout  # Opus 5.5: 1200 x $4 + 300 x $20
    assert "4 event(s)" in done.stdout


def test_usage_by_model_as_json(recorded: dict[str, str]) -> None:
    done = _gitaudit(recorded, "claude", "usage", "--by", "model", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows = {row["key"]: row for row in report["rows"]}
    assert rows["claude-sonnet-4-5-20250929"]["requests"] == 2
    assert rows["claude-sonnet-4-5-20250929"]["input_tokens"] == 2400
    assert rows["claude-sonnet-4-5-20250929"]["cost_usd"] == pytest.approx(0.0162)
    assert rows[OPUS]["cost_usd"] == pytest.approx(0.0108)
    assert rows["claude-imaginary"]["unpriced"] == 1
    assert rows["claude-imaginary"]["failures"] == 1
    assert report["total"]["requests"] == 4
    assert report["total"]["cost_usd"] == pytest.approx(0.027)


def test_usage_since_filters_through_the_query_layer(recorded: dict[str, str]) -> None:
    done = _gitaudit(recorded, "claude", "usage", "--since", "7d", "--by", "day",
                     "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["total"]["requests"] == 3
    assert len(report["rows"]) == 1 and not report["rows"][0]["key"].startswith("2020")


@pytest.mark.parametrize(("by", "expected"), [("actor", "bob"), ("repo", "legacy")])
def test_usage_by_actor_and_repo_as_a_table(
    recorded: dict[str, str], by: str, expected: str
) -> None:
    done = _gitaudit(recorded, "claude", "usage", "--by", by)
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout and "total" in done.stdout and "cost USD" in done.stdout


def test_usage_rejects_an_unknown_grouping(recorded: dict[str, str]) -> None:
    done = _gitaudit(recorded, "claude", "usage", "--by", "colour")
    assert done.returncode == 2 and "colour" in done.stderr
