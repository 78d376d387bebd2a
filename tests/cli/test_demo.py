"""`gitaudit demo`: the quickstart's main job, end to end on the embedded store."""

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

    database = tmp_path / "data" / "gitaudit" / "audit.db"
    assert database.exists()
    verify = subprocess.run(
        [sys.executable, "-m", "gitaudit", "verify"], env=env, capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stderr
