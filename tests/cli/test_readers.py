"""`gitaudit ingest`, `log`, `verify`, `db`, `config show` as an operator runs them."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gitaudit.catalog import uuid7
from gitaudit.config import Settings
from gitaudit.transport import spool
from tests.cli.helpers import isolated_env


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return isolated_env(tmp_path, **extra)


def gitaudit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitaudit", *args], env=env, capture_output=True, text=True
    )


def _event(
    operation: str,
    *,
    when: str,
    user: str = "alice",
    repo: str = "app",
    outcome: str = "success",
    correlation: str = "job-1",
) -> dict[str, Any]:
    return {
        "id": uuid7(),
        "schema_version": 1,
        "occurred_at": when,
        "duration_ms": 12.0,
        "operation": operation,
        "category": "update",
        "outcome": outcome,
        "severity": "low",
        "source": "wrapper",
        "correlation_id": correlation,
        "parent_id": None,
        "actor": {
            "uid": 1000,
            "user": user,
            "git_name": user.title(),
            "git_email": f"{user}@x.org",
            "host": "build-1",
            "verified": False,
            "ci": None,
        },
        "repo": {
            "path": f"/src/{repo}",
            "remote": None,
            "name": repo,
            "branch": "main",
            "head_before": None,
            "head_after": None,
        },
        "result": {"exit_code": 0 if outcome == "success" else 1, "error": None},
        "details": {},
    }


@pytest.fixture
def populated(tmp_path: Path) -> dict[str, str]:
    env = _env(tmp_path)
    events = [
        _event("git.clone", when="2026-11-20T10:00:00Z", user="bob", repo="lib"),
        _event("git.push", when="2026-11-21T10:00:00Z"),
        _event("git.push", when="2026-11-21T11:00:00Z", outcome="failure", correlation="job-2"),
        _event("conflict.detected", when="2026-11-21T12:00:00Z", correlation="job-2"),
        _event("git.commit", when="2026-11-22T09:00:00Z", user="carol"),
    ]
    spool.append(Path(env["XDG_STATE_HOME"]) / "gitaudit" / "spool", events, 1 << 20)
    return env


def _ops(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [event["operation"] for event in json.loads(result.stdout)]


def test_log_filters(populated: dict[str, str]) -> None:
    env = populated
    assert _ops(gitaudit(env, "log", "--format", "json")) == [
        "git.clone",
        "git.push",
        "git.push",
        "conflict.detected",
        "git.commit",
    ]
    assert _ops(gitaudit(env, "log", "--op", "git.push", "--format", "json")) == ["git.push"] * 2
    assert _ops(
        gitaudit(env, "log", "--op", "git.c*", "--op", "conflict.*", "--format", "json")
    ) == ["git.clone", "conflict.detected", "git.commit"]
    assert _ops(gitaudit(env, "log", "--actor", "bob", "--format", "json")) == ["git.clone"]
    assert _ops(gitaudit(env, "log", "--repo", "lib", "--format", "json")) == ["git.clone"]
    assert _ops(gitaudit(env, "log", "--outcome", "failure", "--format", "json")) == ["git.push"]
    assert _ops(gitaudit(env, "log", "--correlation-id", "job-2", "--format", "json")) == [
        "git.push",
        "conflict.detected",
    ]
    assert _ops(
        gitaudit(
            env,
            "log",
            "--since",
            "2026-11-21T10:30:00Z",
            "--until",
            "2026-11-22",
            "--format",
            "json",
        )
    ) == ["git.push", "conflict.detected"]
    assert _ops(gitaudit(env, "log", "--limit", "2", "--format", "json")) == [
        "conflict.detected",
        "git.commit",
    ]


def test_log_formats(populated: dict[str, str]) -> None:
    jsonl = gitaudit(populated, "log", "--format", "jsonl")
    records = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert len(records) == 5 and all(record["seq"] for record in records)
    assert all(len(record["hash"]) == 64 for record in records)
    csv_out = gitaudit(populated, "log", "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("id,occurred_at,operation") and len(csv_out) == 6
    table = gitaudit(populated, "log", "--since", "3650d")
    assert table.returncode == 0 and "5 event(s)" in table.stdout


def test_log_rejects_bad_options_with_usage_error(populated: dict[str, str]) -> None:
    result = gitaudit(populated, "log", "--since", "yesterday")
    assert result.returncode == 2 and "ISO 8601" in result.stderr
    result = gitaudit(populated, "log", "--outcome", "meh")
    assert result.returncode == 2 and "success or failure" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("log", "--since", "99999999d"), "out of range"),
        (("tail", "--since", "99999999d"), "out of range"),
        (("claude", "usage", "--since", "99999999d"), "out of range"),
        (("claude", "usage", "--since", "1h", "--until", "2h"), "is not before"),
        (("log", "--until", "0001-01-01T00:00:00+01:00"), "out of range"),
        (("log", "--limit", "99999999999999999999999"), "too large"),
        (("tail", "--limit", "99999999999999999999999"), "too large"),
        (("log", "--op", "nope"), "operations: git.clone, git.fetch"),
        (("log", "--op", "git.pushh"), "did you mean git.push?"),
        (("tail", "--op", "git.pushh"), "did you mean git.push?"),
        (("log", "--op", "nope.*"), "unknown operation 'nope.*'"),
        (("log", "--since", "2h", "--until", "3h"), "is not before --until 3h"),
    ],
)
def test_out_of_range_and_unknown_filters_are_usage_errors(
    populated: dict[str, str], args: tuple[str, ...], expected: str
) -> None:
    result = gitaudit(populated, *args)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith("gitaudit: error: ") and "  hint: " in result.stderr


def test_globs_and_bounds_that_match_still_work(populated: dict[str, str]) -> None:
    result = gitaudit(populated, "log", "--op", "git.*", "--since", "9000d", "--until", "1h")
    assert result.returncode == 0, result.stderr
    result = gitaudit(populated, "log", "--limit", str(2**63 - 1), "--format", "jsonl")
    assert result.returncode == 0, result.stderr


def test_ingest_then_verify_ok_and_json(populated: dict[str, str]) -> None:
    ingest = gitaudit(populated, "ingest", "--format", "json")
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["ingested"] == 5
    again = gitaudit(populated, "ingest", "--format", "json")
    assert json.loads(again.stdout)["ingested"] == 0
    verify = gitaudit(populated, "verify", "--format", "json")
    assert verify.returncode == 0, verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] is True and report["chains"][0]["records"] == 5


def test_verify_names_tampered_record(populated: dict[str, str]) -> None:
    assert gitaudit(populated, "ingest").returncode == 0
    database = Path(populated["XDG_DATA_HOME"]) / "gitaudit" / "audit.db"
    with sqlite3.connect(database) as conn:
        triggers = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")
        ]
        for trigger in triggers:
            conn.execute(f"DROP TRIGGER {trigger}")
        row = conn.execute("SELECT id, body FROM events WHERE seq = 3").fetchone()
        conn.execute(
            "UPDATE events SET body = ? WHERE id = ?",
            (row[1].replace('"failure"', '"success"'), row[0]),
        )
    result = gitaudit(populated, "verify")
    assert result.returncode == 1
    assert f"event {row[0]}" in result.stderr and "seq 3" in result.stderr


def test_update_is_refused_by_the_database(populated: dict[str, str]) -> None:
    assert gitaudit(populated, "ingest").returncode == 0
    database = Path(populated["XDG_DATA_HOME"]) / "gitaudit" / "audit.db"
    with sqlite3.connect(database) as conn, pytest.raises(sqlite3.DatabaseError):
        conn.execute("DELETE FROM events")


def test_invalid_setting_is_a_clear_error(tmp_path: Path) -> None:
    result = gitaudit(_env(tmp_path, GITAUDIT_ENABLED="perhaps"), "log")
    assert result.returncode == 2
    assert "GITAUDIT_ENABLED" in result.stderr and "hint:" in result.stderr


def test_corrupt_store_is_a_clear_error(tmp_path: Path) -> None:
    env = _env(tmp_path)
    database = Path(env["XDG_DATA_HOME"]) / "gitaudit" / "audit.db"
    database.parent.mkdir(parents=True)
    database.write_bytes(b"this is not a database" * 100)
    result = gitaudit(env, "log")
    assert result.returncode != 0
    assert "gitaudit: error:" in result.stderr and "Traceback" not in result.stderr


def test_db_status_and_config_show(populated: dict[str, str]) -> None:
    upgrade = gitaudit(populated, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    status = gitaudit(populated, "db", "status", "--format", "json")
    assert json.loads(status.stdout)["events"] == 0  # db status does not ingest
    shown = gitaudit(populated, "config", "show", "--format", "json")
    keys = {row["key"] for row in json.loads(shown.stdout)}
    assert {"database_url", "spool_dir", "chain_key_file"} <= keys


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    result = gitaudit(_env(tmp_path), "frobnicate")
    assert result.returncode == 2 and "No such command" in result.stderr


def test_settings_default_spool_matches_env(
    populated: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", populated["XDG_STATE_HOME"])
    assert Settings().effective_spool_dir == str(
        Path(populated["XDG_STATE_HOME"]) / "gitaudit" / "spool"
    )


def test_an_oversized_spool_line_is_stored_as_audit_rejected_and_counted(
    tmp_path: Path,
) -> None:
    """Issue 8: a spool line over the 1 MiB limit was skipped with a warning, verify said ok."""
    env = _env(tmp_path)
    spool_dir = Path(env["XDG_STATE_HOME"]) / "gitaudit" / "spool"
    token = "ghp_" + "A" * 36
    big = _event("git.commit", when="2026-11-21T10:00:00Z")
    big["details"] = {"message": f"deploy with {token} " + "a" * (1500 * 1024)}
    canary = _event("git.push", when="2026-11-21T10:01:00Z")
    spool.append(spool_dir, [big, canary], 1 << 30)
    line = spool.encode_line(big)[:-1]
    assert len(line) > spool.MAX_LINE_BYTES

    ingest = gitaudit(env, "ingest", "--format", "json")
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["rejected"] == 1
    assert "audit.rejected" in ingest.stderr

    log = gitaudit(env, "log", "--format", "json")
    events = json.loads(log.stdout)
    assert [event["operation"] for event in events] == ["git.push", "audit.rejected"]
    rejected = events[1]  # occurred_at: when it was quarantined
    details = rejected["details"]
    assert (rejected["source"], rejected["outcome"], rejected["severity"]) == (
        "cli", "failure", "medium",
    )  # fmt: skip
    assert details["stage"] == "spool"
    assert str(spool.MAX_LINE_BYTES) in details["reason"]
    assert details["bytes"] == len(line)
    assert details["sha256"] == hashlib.sha256(line).hexdigest()
    assert details["origin"]["line"] == 1 and details["origin"]["offset"] == 0
    assert details["excerpt_truncated"] is True
    assert len(details["excerpt"]) <= 1024
    assert token not in json.dumps(rejected) and "[REDACTED:github-token]" in details["excerpt"]
    assert rejected["correlation_id"] == big["correlation_id"]

    verify = gitaudit(env, "verify", "--format", "json")
    assert verify.returncode == 0, verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] is True and report["rejected"] == 1
    assert report["chains"][0]["rejected"] == 1
    text = gitaudit(env, "verify")
    assert text.returncode == 0
    assert "1 audit.rejected" in text.stdout
    assert "gitaudit log --op audit.rejected" in text.stdout


def test_verify_of_an_emptied_chain_prints_no_python_values(populated: dict[str, str]) -> None:
    assert gitaudit(populated, "ingest").returncode == 0
    database = Path(populated["XDG_DATA_HOME"]) / "gitaudit" / "audit.db"
    with sqlite3.connect(database) as conn:
        for (trigger,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'"):
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("DELETE FROM events")
    result = gitaudit(populated, "verify", "--no-ingest")
    assert result.returncode == 1
    assert "FAILED" in result.stdout
    assert "None" not in result.stdout + result.stderr


def test_config_show_prints_values_as_written_not_python_reprs(tmp_path: Path) -> None:
    result = gitaudit(_env(tmp_path), "config", "show")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split(None, 2)[2] for line in result.stdout.splitlines()}
    assert lines["level"] == "writes_only"
    assert lines["sensitive_fields"].startswith("password,passwd,")
    assert lines["database_url"] == "(not set)" and lines["enabled"] == "true"
    assert "'" not in result.stdout and "[" not in result.stdout


def test_version_and_help_read_well(tmp_path: Path) -> None:
    from importlib.metadata import version

    result = gitaudit(_env(tmp_path), "--version")
    assert result.returncode == 0 and result.stdout == f"gitaudit {version('gitaudit')}\n"
    top = gitaudit(_env(tmp_path), "--help").stdout
    # the column is as wide as the longest command name (claude-code)
    assert re.search(r"^  git +Run git with its arguments and record what it did\.$", top, re.M)
    for command in (("log",), ("tail",), ("hooks", "install"), ("claude", "usage"),
                    ("claude-code", "install"), ("claude-code", "status")):
        text = gitaudit(_env(tmp_path), *command, "--help").stdout
        assert "<str>" not in text and "list[str]" not in text and "int range" not in text


def test_shim_uninstall_says_when_there_was_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    result = gitaudit(_env(tmp_path), "shim", "uninstall", str(folder))
    assert result.returncode == 0
    assert result.stdout == f"no gitaudit shim in {folder}; nothing removed\n"
    assert gitaudit(_env(tmp_path), "shim", "install", str(folder)).returncode == 0
    result = gitaudit(_env(tmp_path), "shim", "uninstall", str(folder))
    assert result.stdout == f"removed the gitaudit shim from {folder}\n"


@pytest.mark.parametrize(
    "command", [("verify",), ("db", "status"), ("config", "show"), ("ingest",), ("resolve",)]
)
def test_summary_commands_offer_only_table_and_json(
    populated: dict[str, str], command: tuple[str, ...]
) -> None:
    assert "--format [table|json]" in gitaudit(populated, *command, "--help").stdout.replace(
        "<table|json>", "[table|json]"
    )
    for fmt in ("jsonl", "csv"):
        result = gitaudit(populated, *command, "--format", fmt)
        assert result.returncode == 2 and "'table', 'json'" in result.stderr, result.stderr


def test_csv_details_stay_readable_by_pythons_csv_reader(tmp_path: Path) -> None:
    env = _env(tmp_path)
    event = _event("git.other", when="2026-11-20T10:00:00Z")
    event["details"] = {f"note{index}": "x" * 100 for index in range(2000)}
    spool.append(Path(env["XDG_STATE_HOME"]) / "gitaudit" / "spool", [event], 1 << 22)
    result = gitaudit(env, "log", "--format", "csv")
    assert result.returncode == 0, result.stderr
    header, row = list(csv.reader(io.StringIO(result.stdout)))
    details = row[header.index("details")]
    assert details.startswith('{"note0": "')
    assert details.endswith("more characters: see --format jsonl]")
    whole = json.loads(gitaudit(env, "log", "--format", "jsonl").stdout)
    assert len(whole["details"]) == 2000


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("watch", ".", "--window", "nan"), "--window must be a positive number"),
        (("watch", ".", "--window", "1e400"), "--window must be a positive number"),
        (("daemon", "--log-level", "nope"), "'debug', 'info', 'warning', 'error'"),
    ],
)
def test_other_commands_refuse_out_of_range_values(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    result = gitaudit(_env(tmp_path), *args)
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade_says_what_it_did(tmp_path: Path) -> None:
    from alembic import command

    from gitaudit.store.engine import (
        _alembic_config,
        create_store_engine,
        head_revision,
        write_transaction,
    )

    env = _env(tmp_path)
    head = head_revision()
    created = gitaudit(env, "db", "upgrade")
    assert created.returncode == 0 and f"store created at schema revision {head}" in created.stdout
    again = gitaudit(env, "db", "upgrade")
    assert f"store schema is up to date (revision {head})" in again.stdout
    assert "db rekey" not in again.stdout
    old = tmp_path / "old.db"
    engine = create_store_engine(f"sqlite:///{old}")
    try:
        with write_transaction(engine) as conn:
            command.upgrade(_alembic_config(conn), "0006")
    finally:
        engine.dispose()
    upgraded = gitaudit({**env, "GITAUDIT_DATABASE_URL": f"sqlite:///{old}"}, "db", "upgrade")
    assert f"store schema upgraded from revision 0006 to {head}" in upgraded.stdout
    assert "`gitaudit db rekey --dry-run` counts them" in upgraded.stdout
