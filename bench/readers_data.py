"""A large, realistic store for the reader benchmarks, written through the real writer.

``python bench/readers_data.py DB N`` writes N events (valid, hash-chained, indexed and
searchable exactly as the daemon would store them) into the SQLite file DB, in
batches through :meth:`Store.append`. The mix: 200 users (one busy: ~7 % of all
events), 300 repositories, 20 hosts, 90 days; a 1,000-event CI job
(correlation ``job-trace``) and a Claude Code session (``cc-session-1``) with
prompts, tool calls and the git events its agent ran; the word ``zebracorn``
in 20 commit messages (a rare term) and ``origin`` in most events (a common one).
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from gitaudit.store import Store

START = datetime(2026, 9, 1, tzinfo=UTC)
SPAN_S = 90 * 86400
OPS = (
    ("git.fetch", 30), ("git.commit", 20), ("git.push", 12), ("git.pull", 10),
    ("git.checkout", 10), ("git.clone", 3), ("git.rebase", 3), ("git.merge", 3),
    ("ref.update", 5), ("conflict.detected", 1), ("conflict.resolved", 1), ("git.other", 2),
)  # fmt: skip
TRACE_JOB = "job-trace"
SESSION = "cc-session-1"
RARE = "zebracorn"


def _event(rng: random.Random, moment: datetime, **over: Any) -> dict[str, Any]:
    user = "busy" if rng.random() < 0.07 else f"user{rng.randrange(200)}"
    repo = f"repo{rng.randrange(300)}"
    operation = over.pop("operation", None) or rng.choices(
        [op for op, _ in OPS], [weight for _, weight in OPS])[0]
    details: dict[str, Any] = {"argv": ["git", operation.split(".")[-1], "origin"],
                               "remote": "origin"}
    if operation == "git.commit":
        details["argv"] = ["git", "commit", "-m", f"fix {rng.choice(['parser', 'cli', 'docs'])}"]
    if operation == "git.push":
        details["refs"] = [{"ref": "refs/heads/main", "forced": rng.random() < 0.02}]
    failed = rng.random() < 0.05
    event = {
        "id": str(uuid.uuid4()), "schema_version": 1,
        "occurred_at": moment.isoformat().replace("+00:00", "Z"),
        "duration_ms": round(rng.lognormvariate(4, 1), 3), "operation": operation,
        "category": "update", "outcome": "failure" if failed else "success",
        "severity": "high" if rng.random() < 0.01 else "low", "source": "trace2",
        "correlation_id": f"job-{rng.randrange(10**9)}", "parent_id": None,
        "actor": {"uid": 1000, "user": user, "git_name": user.title(),
                  "git_email": f"{user}@example.com", "host": f"host{rng.randrange(20)}",
                  "verified": True},
        "repo": {"path": f"/src/{repo}", "name": repo, "branch": rng.choice(["main", "dev"]),
                 "remote": f"https://git.example.com/{repo}.git"},
        "result": {"exit_code": 1 if failed else 0,
                   "error": "fatal: could not read from remote" if failed else None},
        "details": details,
    }  # fmt: skip
    event.update(over)
    return event


def _specials(rng: random.Random, count: int) -> dict[int, dict[str, Any]]:
    """Events placed at chosen positions: the traced job, the session, the rare term."""
    out: dict[int, dict[str, Any]] = {}
    base = count // 2
    for index in range(1000):
        out[base + index] = {"correlation_id": TRACE_JOB, "operation": None}
    session_at = count // 3
    out[session_at] = {"operation": "claude.session", "source": "claude_code",
                       "correlation_id": SESSION, "details": {"session_id": SESSION,
                                                              "phase": "start"}}
    for tool in range(20):
        out[session_at + 1 + tool * 2] = {
            "operation": "claude.tool_use", "source": "claude_code", "correlation_id": SESSION,
            "details": {"session_id": SESSION, "tool_name": "Bash", "tool_use_id": f"tu{tool}",
                        "tool_input": {"command": "git commit -m agent"}}}
        out[session_at + 2 + tool * 2] = {
            "operation": "git.commit", "correlation_id": SESSION,
            "actor": {"user": "dev", "host": "host1", "verified": True, "agent": {
                "tool": "claude-code", "session_id": SESSION, "tool_use_id": f"tu{tool}",
                "verified": True}}}
    for _ in range(20):
        out[rng.randrange(count)] = {
            "operation": "git.commit",
            "details": {"argv": ["git", "commit", "-m", f"add the {RARE} parser"]}}
    return out


def generate(url: str, count: int, batch: int = 20_000) -> float:
    """Write ``count`` events to ``url``; returns the seconds it took."""
    rng = random.Random(7)
    specials = _specials(rng, count)
    step = SPAN_S / count
    started = time.perf_counter()
    with Store.open(url, chain_id="bench-host") as store:
        for first in range(0, count, batch):
            records = []
            for index in range(first, min(first + batch, count)):
                moment = START + timedelta(seconds=index * step + rng.random() * step)
                records.append(_event(rng, moment, **specials.get(index, {})))
            store.append(records)
    return time.perf_counter() - started


if __name__ == "__main__":
    path, number = sys.argv[1], int(sys.argv[2])
    seconds = generate(f"sqlite:///{path}", number)
    print(f"wrote {number} events to {path} in {seconds:.1f}s ({number / seconds:,.0f}/s)")
