"""`gitaudit report` as an operator runs it: kinds, formats, -o, and every bad input."""

from __future__ import annotations

import json
import os
import pty
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gitaudit.errors import UsageError
from gitaudit.report import kinds
from gitaudit.store import Store
from tests.cli.helpers import isolated_env
from tests.report.events import known_events


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An isolated environment whose store holds the known events."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with Store.open(url, chain_id="test-chain") as store:
        store.append(known_events())
    return isolated_env(tmp_path, GITAUDIT_DATABASE_URL=url)


def report(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitaudit", "report", *args], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip


def _error(result: subprocess.CompletedProcess[str], *says: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    for text in says:
        assert text in result.stderr


def test_usage_as_markdown_on_stdout_by_default(env: dict[str, str]) -> None:
    result = report(env, "usage")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # not a terminal: no progress bar, nothing else
    assert result.stdout.startswith("# Usage report\n")
    assert "| dave | 9 | 0 | 39.1 |" in result.stdout


def test_filters_are_logs(env: dict[str, str]) -> None:
    result = report(env, "usage", "--format", "json", "--repo", "lib", "--since", "2026-11-02",
                    "--until", "2026-11-03T00:00:00Z")  # fmt: skip
    document = json.loads(result.stdout)
    assert document["period"] == {"since": "2026-11-02T00:00:00Z", "until": "2026-11-03T00:00:00Z"}
    assert document["filters"] == {"repo": "lib"}
    assert document["events_read"] == 6  # 4 fetches, 1 conflict detected, 1 aborted
    _error(report(env, "usage", "--op", "git.pushh"), "--op: unknown operation 'git.pushh'",
           "did you mean git.push?")  # fmt: skip


@pytest.mark.parametrize(
    ("name", "expected"),
    [("r.html", "<!DOCTYPE html>"), ("r.htm", "<!DOCTYPE html>"), ("r.md", "# Usage report"),
     ("r.json", "{\n"), ("r.txt", "# Usage report")],
)  # fmt: skip
def test_output_file_format_follows_its_extension(
    env: dict[str, str], tmp_path: Path, name: str, expected: str
) -> None:
    target = tmp_path / name
    result = report(env, "usage", "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert target.read_text(encoding="utf-8").startswith(expected)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # audit evidence: the owner only
    assert result.stderr == ""  # not a terminal: silent
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_format_option_wins_over_the_extension(env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    assert report(env, "usage", "--format", "json", "-o", str(target)).returncode == 0
    assert json.loads(target.read_text(encoding="utf-8"))["kind"] == "usage"


def test_unknown_kind_names_the_valid_ones(env: dict[str, str]) -> None:
    _error(report(env, "nope"), "unknown report kind 'nope'",
           "report kinds: usage, soc2, security, gdpr")  # fmt: skip
    _error(report(env, "usgae"), "did you mean usage?")


def test_a_kind_not_installed_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(kinds.MODULES, "future", ("gitaudit.report.future_kind", "later"))
    with pytest.raises(UsageError) as caught:
        kinds.builder("future")
    assert caught.value.message == (
        "the future report is not available in this gitaudit (gitaudit.report.future_kind is "
        "missing)"
    )
    assert "available here: usage" in caught.value.hint
    assert kinds.builder("usage").__module__ == "gitaudit.report.usage"
    assert set(kinds.KINDS) >= {"usage", "soc2", "security", "gdpr"}


def test_until_before_since(env: dict[str, str]) -> None:
    _error(report(env, "usage", "--since", "2h", "--until", "3h"), "is not before --until",
           "swap the two values")  # fmt: skip
    _error(report(env, "usage", "--since", "2026-11-03", "--until", "2026-11-01"),
           "is not before --until")  # fmt: skip


@pytest.mark.parametrize("option", ["--since", "--until"])
@pytest.mark.parametrize("value", ["yesterdayish", "2026-13-45", "99999999999d"])
def test_invalid_dates(env: dict[str, str], option: str, value: str) -> None:
    _error(report(env, "usage", option, value), f"{option}: ")


def test_an_empty_period_is_a_report_that_says_so(env: dict[str, str]) -> None:
    result = report(env, "usage", "--since", "2030-01-01")
    assert result.returncode == 0, result.stderr
    assert "> No events in this period." in result.stdout
    document = json.loads(report(env, "usage", "--since", "2030-01-01", "--format", "json").stdout)
    assert document["events_read"] == 0 and document["notes"] == ["No events in this period."]
    html = report(env, "usage", "--since", "2030-01-01", "--format", "html").stdout
    assert "No events in this period." in html


def test_an_output_path_that_cannot_be_written(env: dict[str, str], tmp_path: Path) -> None:
    _error(report(env, "usage", "-o", str(tmp_path / "missing" / "r.html")),
           f"cannot write the report to {tmp_path / 'missing' / 'r.html'}",
           "No such file or directory", "hint: give -o a file")  # fmt: skip
    assert not (tmp_path / "missing").exists()
    a_file = tmp_path / "plain"
    a_file.write_text("x")
    _error(report(env, "usage", "-o", str(a_file / "r.html")), "Not a directory")
    _error(report(env, "usage", "-o", str(tmp_path)), "is a directory")


def test_a_failed_run_leaves_the_previous_report_alone(tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    target.write_text("the previous report")
    missing = tmp_path / "gone.db"
    env = isolated_env(tmp_path, GITAUDIT_DATABASE_URL=f"sqlite:///{missing}")
    _error(report(env, "usage", "-o", str(target)), "no audit store")
    assert target.read_text() == "the previous report"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".r.html")] == []
    assert not missing.exists()


def test_subject_belongs_to_gdpr(env: dict[str, str]) -> None:
    _error(report(env, "usage", "--subject", "alice@example.com"),
           "--subject is for the gdpr report only")  # fmt: skip
    _error(report(env, "gdpr"), "the gdpr report needs --subject EMAIL|USER")


def test_a_progress_bar_on_a_terminal(env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "r.md"
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "gitaudit", "report", "usage", "-o", str(target)],
            env={**env, "COLUMNS": "100"}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=follower,
        )  # fmt: skip
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the process is gone
                break
            if not chunk:
                break
            seen += chunk
        assert process.wait(timeout=120) == 0
    finally:
        os.close(leader)
    assert b"usage report" in seen  # the bar's description, drawn on the terminal
    assert f"wrote the usage report (md) to {target}".encode() in seen
    assert target.read_text(encoding="utf-8").startswith("# Usage report")


def test_soc2_and_security_options_reach_their_reports(env: dict[str, str]) -> None:
    verified = json.loads(report(env, "soc2", "--format", "json").stdout)
    skipped = json.loads(report(env, "soc2", "--format", "json", "--no-verify").stdout)

    def integrity(document: dict[str, object]) -> str:
        sections = document["sections"]
        assert isinstance(sections, list)
        return json.dumps([s for s in sections if s["title"].startswith("Integrity")])

    assert "not verified" not in integrity(verified).lower()
    assert "not" in integrity(skipped).lower() and integrity(verified) != integrity(skipped)
    in_workers = json.loads(report(env, "soc2", "--format", "json", "--jobs", "2").stdout)
    assert integrity(in_workers) == integrity(verified)
    _error(report(env, "soc2", "--jobs", "0"), "--jobs")
    flagged = report(env, "security", "--format", "json", "--clone-threshold", "1")
    default = report(env, "security", "--format", "json")
    assert flagged.returncode == default.returncode == 0, flagged.stderr
    assert "1 repositories in a day" in flagged.stdout
    assert "10 repositories in a day" in default.stdout
    _error(report(env, "security", "--clone-threshold", "0"), "--clone-threshold")
