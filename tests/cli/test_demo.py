"""`gitaudit demo`: the quickstart's main job, end to end on a store of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.cli.helpers import isolated_env


def test_demo_records_the_whole_story(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "gitaudit", "demo", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "ghp_demo" not in result.stdout
    events = json.loads(result.stdout)
    by_op: dict[str, list[dict[str, object]]] = {}
    for event in events:
        by_op.setdefault(str(event["operation"]), []).append(event)
    assert len({event["correlation_id"] for event in events}) == 1

    failed_clone = by_op["git.clone"][0]
    assert failed_clone["outcome"] == "failure"
    assert "[REDACTED" in json.dumps(failed_clone["details"])

    pull = next(e for e in by_op["git.pull"] if e["outcome"] == "failure")
    conflict = by_op["conflict.detected"][0]
    assert conflict["parent_id"] == pull["id"]
    assert conflict["details"]["files"][0]["path"] == "app.txt"  # type: ignore[index]
    assert conflict["details"]["files"][0]["kind"] == "content"  # type: ignore[index]

    rebase = by_op["git.rebase"][0]
    assert rebase["outcome"] == "success"
    assert len(rebase["details"]["rewritten"]) == 1  # type: ignore[index]

    pushes = by_op["git.push"]
    forced = [p for p in pushes if any(r["forced"] for r in p["details"]["refs"])]  # type: ignore[index]
    assert len(forced) == 1
    assert forced[0]["severity"] == "high"
    assert forced[0]["category"] == "update"
    assert [p["category"] for p in pushes if p["severity"] == "medium"] == ["delete"]
    assert all(len(str(e["hash"])) == 64 for e in events)

    # the user's append-only store never sees the fictitious events: the demo's own does
    assert not (tmp_path / "data" / "gitaudit").exists()
    marker = "demo events written to a temporary store of its own, kept: "
    line = next(line for line in result.stderr.splitlines() if line.startswith(marker))
    url = line.removeprefix(marker)
    assert url.startswith(f"sqlite:///{tmp_path / 'tmp'}") and url.endswith("/audit.db")
    verify = subprocess.run(
        [sys.executable, "-m", "gitaudit", "verify", "--format", "json"],
        env={**env, "GITAUDIT_DATABASE_URL": url},
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["chains"][0]["records"] == len(events)


def test_demo_records_into_the_store_it_is_told_and_leaves_the_spool_alone(
    tmp_path: Path,
) -> None:
    """``--store URL`` is where the events go; GITAUDIT_DATABASE_URL (the real store) is not
    written, and events already waiting in the user's spool stay there."""
    real = tmp_path / "real.db"
    chosen = tmp_path / "chosen" / "demo.db"
    env = isolated_env(tmp_path, GITAUDIT_DATABASE_URL=f"sqlite:///{real}")
    waiting = tmp_path / "state" / "gitaudit" / "spool"
    waiting.mkdir(parents=True)
    (waiting / "active.jsonl").write_text('{"not": "ingested by the demo"}\n')
    result = subprocess.run(
        [sys.executable, "-m", "gitaudit", "demo", "--store", f"sqlite:///{chosen}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"demo events written to sqlite:///{chosen}" in result.stdout
    assert "verify: ok" in result.stdout
    assert chosen.is_file() and not real.exists()
    assert (waiting / "active.jsonl").read_text() == '{"not": "ingested by the demo"}\n'
    log = subprocess.run(
        [sys.executable, "-m", "gitaudit", "log", "--no-ingest", "--format", "json"],
        env={**env, "GITAUDIT_DATABASE_URL": f"sqlite:///{chosen}"},
        capture_output=True,
        text=True,
    )
    assert log.returncode == 0, log.stderr
    assert len(json.loads(log.stdout)) == 20
