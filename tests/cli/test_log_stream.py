"""`gitaudit log` (streamed formats, pages, search, new filters), `stats`, `trace` and
`claude usage` with Claude Code, run as an operator runs them (a real subprocess)."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gitaudit.cli.output import TableWriter
from gitaudit.store import Store
from tests.cli.helpers import isolated_env
from tests.store.helpers import make_record

SESSION = "6f1c0c1e-1111-4000-8000-0000000000aa"


def _claude_code(index: int, operation: str, **fields: Any) -> dict[str, Any]:
    """A Claude Code event in the shape the Claude Code helpers' contract gives it."""
    record = make_record(index, operation="claude.request", correlation_id=SESSION, **fields)
    record.update(operation=operation, source="claude_code")
    return record


def _records() -> list[dict[str, Any]]:
    records = [make_record(i) for i in range(12)]
    records[2]["details"]["argv"] = ["git", "commit", "-m", 'fix "quoted" NEAR(a b) OR c*']
    records[3]["severity"] = "high"
    session = _claude_code(20, "claude.session", details={"session_id": SESSION})
    tool = _claude_code(21, "claude.tool_use", parent_id=session["id"], details={
        "session_id": SESSION, "tool_use_id": "toolu_7", "tool_name": "Bash",
        "tool_input": {"command": "git push origin main"}})  # fmt: skip
    push = make_record(22, operation="git.push", correlation_id=SESSION)
    push["actor"]["agent"] = {"tool": "claude-code", "session_id": SESSION,
                              "tool_use_id": "toolu_7", "verified": True}  # fmt: skip
    request = make_record(23, operation="claude.request", correlation_id=SESSION, details={
        "model": "claude-sonnet-4-5", "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.001,
        "cost_source": "claude_code", "session_id": SESSION})  # fmt: skip
    request["source"] = "claude_code"
    return [*records, session, tool, push, request]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with Store.open(url, chain_id="cli-test") as store:
        store.append(_records())
    return isolated_env(tmp_path, GITAUDIT_DATABASE_URL=url)


@pytest.fixture
def empty(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    Store.open(url, chain_id="cli-test").close()
    return isolated_env(tmp_path, GITAUDIT_DATABASE_URL=url)


def gitaudit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitaudit", *args, "--no-ingest"], env=env,
                          capture_output=True, text=True)  # fmt: skip


def test_json_array_is_streamed_and_equals_the_jsonl_lines(env: dict[str, str]) -> None:
    array = gitaudit(env, "log", "--format", "json")
    lines = gitaudit(env, "log", "--format", "jsonl")
    assert array.returncode == lines.returncode == 0, array.stderr + lines.stderr
    parsed = json.loads(array.stdout)
    assert parsed == [json.loads(line) for line in lines.stdout.splitlines()]
    assert len(parsed) == 16


def test_empty_store_reads_as_empty_in_every_format(empty: dict[str, str]) -> None:
    assert json.loads(gitaudit(empty, "log", "--format", "json").stdout) == []
    assert gitaudit(empty, "log", "--count").stdout.strip() == "0"
    rows = list(csv.reader(io.StringIO(gitaudit(empty, "log", "--format", "csv").stdout)))
    assert len(rows) == 1  # the header
    assert gitaudit(empty, "stats", "--format", "json").returncode == 0


def test_pages_with_after_and_before(env: dict[str, str]) -> None:
    ids = [json.loads(line)["id"] for line in gitaudit(env, "log", "--format", "jsonl").stdout
           .splitlines()]  # fmt: skip
    page = gitaudit(env, "log", "--after", ids[4], "--limit", "3", "--format", "jsonl")
    assert [json.loads(line)["id"] for line in page.stdout.splitlines()] == ids[5:8]
    page = gitaudit(env, "log", "--before", ids[4], "--limit", "2", "--format", "jsonl")
    assert [json.loads(line)["id"] for line in page.stdout.splitlines()] == ids[2:4]
    assert gitaudit(env, "log", "--after", ids[4], "--count").stdout.strip() == str(len(ids) - 5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("log", "--after", "no-such-id"), "--after: no event has the id 'no-such-id'"),
        (("log", "--before", "x"), "--before: no event has the id 'x'"),
        (("log", "--severity", "urgent"), "severities: low, medium, high"),
        (("log", "--source", "wraper"), "did you mean wrapper?"),
        (("log", "--agent", "claude"), "did you mean claude-code?"),
        (("log", "--all", "--limit", "3"), "--all and --limit contradict"),
        (("log", "--grep", "*** --"), "holds no word"),
        (("log", "--grep-syntax"), "--grep-syntax needs --grep"),
        (("log", "--grep", 'fix AND "open', "--grep-syntax"), "cannot parse"),
        (("stats", "--op", "git.pushh"), "did you mean git.push?"),
        (("trace", "nothing-known"), "no event, correlation id or Claude Code session id"),
    ],
)
def test_bad_input_is_a_usage_error_naming_what_is_valid(
    env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    done = gitaudit(env, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_grep_takes_operators_and_quotes_as_words(env: dict[str, str]) -> None:
    found = gitaudit(env, "log", "--grep", '"quoted" NEAR(a OR c*', "--format", "jsonl")
    assert found.returncode == 0, found.stderr
    assert [json.loads(line)["details"]["argv"][3] for line in found.stdout.splitlines()] == [
        'fix "quoted" NEAR(a b) OR c*']
    raw = gitaudit(env, "log", "--grep", "quoted OR nothinglikethis", "--grep-syntax", "--count")
    assert raw.stdout.strip() == "1", raw.stderr


def test_claude_code_filters_and_trace(env: dict[str, str]) -> None:
    agent = gitaudit(env, "log", "--agent", "claude-code", "--format", "jsonl")
    assert [json.loads(line)["operation"] for line in agent.stdout.splitlines()] == ["git.push"]
    session = gitaudit(env, "log", "--session", SESSION, "--count")
    assert session.stdout.strip() == "4"
    tree = gitaudit(env, "trace", SESSION, "--format", "json")
    assert tree.returncode == 0, tree.stderr
    payload = json.loads(tree.stdout)
    assert payload["kind"] == "session" and payload["count"] == 4
    session_node = payload["roots"][0]
    assert session_node["operation"] == "claude.session"
    tool_node = session_node["children"][0]
    assert [child["operation"] for child in tool_node["children"]] == ["git.push"]
    text = gitaudit(env, "trace", SESSION)
    assert "  git.push" in text.stdout and "Bash git push origin main" in text.stdout


def test_stats_formats(env: dict[str, str]) -> None:
    done = gitaudit(env, "stats", "--by", "operation", "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = {row["key"]: row for row in json.loads(done.stdout)["rows"]}
    assert rows["git.push"]["count"] == 4 and rows["claude.tool_use"]["count"] == 1
    assert set(rows["git.push"]) == {"key", "count", "failures", "failure_rate", "p50_ms",
                                     "p95_ms"}  # fmt: skip
    table = gitaudit(env, "stats", "--by", "hour", "--source", "claude_code")
    assert "2 event(s)" in table.stdout or "group(s)" in table.stdout
    as_csv = list(csv.DictReader(io.StringIO(gitaudit(env, "stats", "--format", "csv").stdout)))
    assert sum(int(row["count"]) for row in as_csv) == 16


def test_claude_usage_counts_claude_code_sessions(env: dict[str, str]) -> None:
    done = gitaudit(env, "claude", "usage", "--format", "json")
    assert done.returncode == 0, done.stderr
    total = json.loads(done.stdout)["total"]
    assert total["claude_code"] == 1 and total["sessions"] == 1


def test_table_at_80_columns_never_wraps_and_summarises_every_operation() -> None:
    out = io.StringIO()
    table = TableWriter(out, width=80)
    for record in _records():
        table.write(record)
    table.close()
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    summaries = [line for line in lines if line.startswith("    ")]
    assert len(summaries) == 16  # every event says what it did on its second line
    assert any("Bash git push origin main" in line for line in summaries)


def test_table_on_a_terminal_is_paged(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'many.db'}"
    with Store.open(url, chain_id="cli-test") as store:
        store.append([make_record(i) for i in range(60)])
    env = isolated_env(tmp_path, GITAUDIT_DATABASE_URL=url, COLUMNS="80", LINES="40")
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "gitaudit", "log", "--no-ingest"],
                               env=env, stdout=terminal, stderr=subprocess.PIPE)  # fmt: skip
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait() == 0
    os.close(controller)
    text = b"".join(chunks).decode()
    assert "50 event(s), the newest 50 (--all: every one)" in text
    assert "earlier ones: gitaudit log --before " in text
    assert all(len(line) <= 80 for line in text.replace("\r", "").splitlines())


def test_readers_start_without_alembic_the_whole_cli_or_the_postgresql_dialect(
    env: dict[str, str],
) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gitaudit", "log", "--limit", "1",
         "--no-ingest"], env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    for heavy in ("alembic", "gitaudit.cli.app", "sqlalchemy.dialects.postgresql",
                  "gitaudit.store.ingest", "rich"):  # fmt: skip
        assert heavy not in imported, heavy
