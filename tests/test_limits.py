"""Oversized fields are cut at capture (gitaudit.limits.fit), so every event can be stored."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from gitaudit import events, limits
from gitaudit.config import Settings
from gitaudit.pipeline import Pipeline
from gitaudit.transport import spool
from tests.gitfixtures import GitSandbox, gitaudit_command


def _line_bytes(event: dict[str, Any]) -> int:
    return len(spool.encode_line(event)) - 1


def _event(**details: Any) -> dict[str, Any]:
    return {
        "id": events.uuid7(),
        "schema_version": 1,
        "occurred_at": events.now_rfc3339(),
        "operation": "git.commit",
        "category": "create",
        "outcome": "success",
        "severity": "low",
        "source": "wrapper",
        "correlation_id": "corr-1",
        "actor": {"uid": 1000, "user": "ulla"},
        "repo": {"path": "/srv/app"},
        "result": {"exit_code": 0, "error": None},
        "details": {"subcommand": "commit", **details},
    }


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_an_ordinary_event_is_passed_through_untouched() -> None:
    event = _event(argv=["commit", "-m", "x" * 1000])
    assert limits.fit(event) is event


def test_a_long_string_is_cut_with_a_marker_its_size_and_its_hash() -> None:
    long = "a" * 100_000
    event = _event(argv=["commit", "--allow-empty", "-m", long])
    fitted = limits.fit(event)
    cut = fitted["details"]["argv"][3]
    assert cut.startswith("aaaa")
    assert cut.endswith("…[truncated 100000 bytes]")
    assert _line_bytes({"value": cut}) <= limits.FIELD_MAX_BYTES + len('{"value":""}')
    assert fitted["details"]["truncated"] == [
        {"field": "details.argv[3]", "bytes": 100_000, "sha256": _sha(long)}
    ]
    assert fitted["details"]["argv"][:3] == ["commit", "--allow-empty", "-m"]
    assert event["details"]["argv"][3] == long  # the input is not changed
    events.validate_event(fitted)


def test_non_ascii_text_is_measured_as_the_spool_writes_it() -> None:
    long = "é" * 20_000  # 40 kB of UTF-8, 120 kB as escaped ASCII JSON
    fitted = limits.fit(_event(error_text=long))
    cut = fitted["details"]["error_text"]
    assert len(json.dumps(cut)) - 2 <= limits.FIELD_MAX_BYTES
    assert fitted["details"]["truncated"] == [
        {"field": "details.error_text", "bytes": 40_000, "sha256": _sha(long)}
    ]


def test_a_list_too_big_for_the_budget_keeps_its_first_items() -> None:
    refs = [{"ref": f"refs/heads/{'x' * 2000}/{index}", "old": None, "new": "a" * 40}
            for index in range(1000)]
    fitted = limits.fit(_event(refs=refs))
    assert _line_bytes(fitted) <= limits.EVENT_MAX_BYTES
    kept = fitted["details"]["refs"]
    assert 0 < len(kept) < 1000
    assert kept == refs[: len(kept)]
    (entry,) = fitted["details"]["truncated"]
    assert entry["field"] == "details.refs"
    assert entry["items"] == 1000
    assert entry["sha256"] == hashlib.sha256(events.canonical_json(refs)).hexdigest()
    assert entry["bytes"] == len(events.canonical_json(refs))


def test_every_field_long_at_once_still_fits() -> None:
    big = "z" * 200_000
    event = _event(**{f"field{index}": big for index in range(40)})
    event["actor"] = dict.fromkeys(("user", "git_name", "git_email", "host"), big)
    event["repo"] = dict.fromkeys(("path", "remote", "name", "branch"), big)
    event["result"] = {"exit_code": 1, "error": big}
    fitted = limits.fit(event)
    assert _line_bytes(fitted) <= limits.EVENT_MAX_BYTES
    assert len(fitted["details"]["truncated"]) <= limits.TRUNCATED_MAX_ENTRIES
    events.validate_event(fitted)
    assert limits.fit(fitted) == fitted  # fitting twice changes nothing


def test_cuts_made_earlier_are_kept_when_fitted_again() -> None:
    once = limits.fit(_event(argv=["commit", "-m", "a" * 50_000], note="b" * 30_000))
    again = limits.fit({**once, "details": {**once["details"], "extra": "c" * 40_000}})
    fields = [entry["field"] for entry in again["details"]["truncated"]]
    assert fields == ["details.argv[2]", "details.note", "details.extra"]


def test_the_pipeline_fits_after_redaction() -> None:
    secret = "ghp_" + "A1b2C3d4" * 5
    event = _event(argv=["commit", "-m", f"token {secret} " + "a" * 100_000])
    pipeline = Pipeline(Settings({"capture_messages": True}))
    kept = pipeline.sanitize(event)
    assert secret not in json.dumps(kept)
    (entry,) = kept["details"]["truncated"]
    redacted = pipeline.redactor.redact_text(event["details"]["argv"][2])
    assert entry["sha256"] == _sha(redacted)


def test_the_issue_reproduction_is_stored_and_logged(tmp_path: Path) -> None:
    """`gitaudit git commit` with 15 messages of 100 kB: spooled, ingested, shown by log."""
    sandbox = GitSandbox(tmp_path)
    repo = sandbox.repo()
    big = "a" * 100_000
    messages = [arg for _ in range(15) for arg in ("-m", big)]
    env = {"GITAUDIT_CAPTURE_MESSAGES": "true"}
    result = sandbox.audited("commit", "--allow-empty", *messages, cwd=repo, env=env)
    assert result.returncode == 0, result.stderr
    commit = sandbox.out("rev-parse", "HEAD", cwd=repo)

    def gitaudit(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*gitaudit_command(), *args], cwd=repo, env=sandbox.environ(env),
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done

    ingested = gitaudit("ingest")
    assert "0 rejected" in ingested.stdout, ingested.stdout
    logged = json.loads(gitaudit("log", "--format", "json").stdout)
    (event,) = [event for event in logged if event["operation"] == "git.commit"]
    assert event["details"]["commit"] == commit
    truncated = event["details"]["truncated"]
    assert [entry["field"] for entry in truncated] == [
        f"details.argv[{index}]" for index in range(3, 33, 2)
    ]
    assert all(entry == {"field": entry["field"], "bytes": 100_000, "sha256": _sha(big)}
               for entry in truncated)
    assert event["details"]["argv"][3].endswith("…[truncated 100000 bytes]")
    assert gitaudit("verify").returncode == 0


def test_a_forged_list_of_cuts_cannot_make_an_event_too_big() -> None:
    forged = [{"field": "x" * 100_000, "bytes": 1, "sha256": "0"}] * 50
    fitted = limits.fit(_event(truncated=forged, note="n" * 20_000))
    assert _line_bytes(fitted) <= limits.EVENT_MAX_BYTES
    assert [entry["field"] for entry in fitted["details"]["truncated"]] == ["details.note"]


def test_indexed_strings_are_cut_to_what_the_store_indexes() -> None:
    """A long git identity or repository path is cut, never refused at intake."""
    event = _event()
    event["actor"] = {"user": "u", "git_name": "é" * 1500, "host": "h"}
    event["repo"] = {"path": "/r/" + "p" * 3000, "name": "r"}
    fitted = limits.fit(event)
    events.validate_event(fitted)  # refused before: 3,000 and 3,003 UTF-8 bytes
    assert fitted["repo"]["path"].startswith("/r/ppp")
    assert "truncated" in fitted["repo"]["path"]
    cut = {entry["field"] for entry in fitted["details"]["truncated"]}
    assert cut == {"actor.git_name", "repo.path"}
