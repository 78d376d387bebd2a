"""Known events for the report tests, and their expected figures.

Three days (2026-11-01..03, UTC): pushes and fetches by alice, bob, carol and dave in
the repositories app and lib; conflicts detected, resolved (files ours, claude,
manual) and aborted; three Claude requests on two models.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gitaudit.events import Event, uuid7

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def event(
    operation: str,
    when: timedelta,
    *,
    user: str = "alice",
    repo: str = "app",
    outcome: str = "success",
    duration_ms: float | None = 10.0,
    details: dict[str, Any] | None = None,
    branch: str = "main",
    source: str = "wrapper",
) -> dict[str, Any]:
    """A validated record of ``operation`` at ``START + when``."""
    fields: dict[str, Any] = {
        "id": uuid7(),
        "occurred_at": (START + when).isoformat(),
        "duration_ms": duration_ms,
        "operation": operation,
        "category": "update",
        "outcome": outcome,
        "source": source,
        "correlation_id": "job-1",
        "actor": {"uid": 1000, "user": user, "git_name": user.title(),
                  "git_email": f"{user}@example.com", "host": "build-01"},
        "repo": {"path": f"/src/{repo}", "name": repo, "branch": branch},
        "result": {"exit_code": 0 if outcome == "success" else 1},
        "details": details or {},
    }  # fmt: skip
    return Event.model_validate(fields).to_record()


def known_events() -> list[dict[str, Any]]:
    """The events whose figures the usage tests assert."""
    hour = timedelta(hours=1)
    day = timedelta(days=1)
    records = []
    # 10 pushes, durations 10..100 ms; alice 6 (app), bob 4 (lib 3, app 1); 2 failures
    for index in range(10):
        user = "alice" if index < 6 else "bob"
        repo = "app" if index < 7 else "lib"
        outcome = "failure" if index in (3, 7) else "success"
        records.append(event("git.push", index * hour, user=user, repo=repo, outcome=outcome,
                             duration_ms=10.0 * (index + 1)))  # fmt: skip
    # 4 fetches by carol on lib on day 2, one failed, no duration for one
    for index in range(4):
        records.append(event("git.fetch", day + index * hour, user="carol", repo="lib",
                             outcome="failure" if index == 0 else "success",
                             duration_ms=None if index == 3 else 5.0))  # fmt: skip
    # conflicts: 2 detected on app, 1 on lib; 2 resolved on app; 1 aborted on lib
    records += [
        event("conflict.detected", day + 5 * hour, user="dave"),
        event("conflict.detected", day + 6 * hour, user="dave"),
        event("conflict.detected", day + 7 * hour, user="dave", repo="lib"),
        event("conflict.resolved", day + 8 * hour, user="dave", details={"files": [
            {"path": "a.py", "kind": "content", "resolution": "ours"},
            {"path": "b.py", "kind": "content", "resolution": "claude"}]}),
        event("conflict.resolved", day + 9 * hour, user="dave", details={"files": [
            {"path": "c.py", "kind": "content", "resolution": "manual"}]}),
        event("conflict.aborted", day + 10 * hour, user="dave", repo="lib"),
    ]  # fmt: skip
    # Claude: claude-a twice (day 3), claude-b once without a cost (day 3)
    claude = {"source": "claude", "user": "dave"}
    records += [
        event("claude.request", 2 * day, details={
            "model": "claude-a", "input_tokens": 100, "output_tokens": 10,
            "cache_read_input_tokens": 5, "cost_usd": 0.01}, **claude),
        event("claude.request", 2 * day + hour, details={
            "model": "claude-a", "input_tokens": 200, "output_tokens": 20,
            "cache_creation_input_tokens": 7, "cost_usd": 0.02}, **claude),
        event("claude.request", 2 * day + 2 * hour, details={
            "model": "claude-b", "input_tokens": 50, "output_tokens": 5}, **claude),
    ]  # fmt: skip
    return records
