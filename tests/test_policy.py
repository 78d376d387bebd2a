"""Policy: levels, always-audit, exclusions, sampling."""

from __future__ import annotations

from typing import Any

import pytest

from gitaudit.config import Settings
from gitaudit.policy import DISABLED, FILTERED, KEEP, SAMPLED, Policy


def _event(operation: str, category: str, outcome: str = "success", **extra: Any) -> dict[str, Any]:
    return {"operation": operation, "category": category, "outcome": outcome, **extra}


STATUS = _event("git.other", "read", details={"subcommand": "status"})
COMMIT = _event("git.commit", "create")
CHECKOUT = _event("git.checkout", "update")
BRANCH_DELETE = _event("git.branch", "delete")
CLONE = _event("git.clone", "read")
LS_REMOTE = _event("git.other", "read", details={"subcommand": "ls-remote"})
FAILED_PUSH = _event("git.push", "update", "failure")
FORCE_PUSH = _event("git.push", "update", details={"refs": [{"forced": True}]})
PUSH_DELETE = _event("git.push", "delete", details={"refs": [{"deleted": True}]})
CONFLICT = _event("conflict.detected", "update", "failure")
FAILED_STATUS = _event("git.other", "read", "failure", details={"subcommand": "status"})


def _policy(**values: Any) -> Policy:
    return Policy(Settings(values), random=lambda: 0.5)


@pytest.mark.parametrize(
    ("level", "kept"),
    [
        ("all", {"status", "commit", "checkout", "branch_delete", "failed_status"}),
        ("writes_only", {"commit", "checkout", "branch_delete"}),
        ("mutations_only", {"checkout"}),
        ("deletes_only", {"branch_delete"}),
        ("failures_only", {"failed_status"}),
    ],
)
def test_levels(level: str, kept: set[str]) -> None:
    policy = _policy(level=level, always_audit=())
    events = {"status": STATUS, "commit": COMMIT, "checkout": CHECKOUT,
              "branch_delete": BRANCH_DELETE, "failed_status": FAILED_STATUS}  # fmt: skip
    assert {name for name, event in events.items() if policy.keep(event)} == kept


@pytest.mark.parametrize(
    "event", [CLONE, LS_REMOTE, FAILED_PUSH, FORCE_PUSH, PUSH_DELETE, CONFLICT, BRANCH_DELETE]
)
def test_security_relevant_events_survive_every_level_exclusion_and_sampling(
    event: dict[str, Any],
) -> None:
    policy = _policy(level="failures_only" if event is not FAILED_PUSH else "deletes_only",
                     exclude_actions=("*",), sample_rate=0.0, sample_reads=False)  # fmt: skip
    assert policy.decide(event) == KEEP


def test_default_level_drops_local_inspection_but_keeps_writes() -> None:
    policy = _policy()
    assert policy.decide(STATUS) == FILTERED
    assert policy.decide(COMMIT) == KEEP


def test_exclusions() -> None:
    policy = _policy(
        level="all", exclude_actions=("git.status",), exclude_resources=("*/vendor/*",)
    )
    assert policy.decide(STATUS) == FILTERED
    assert policy.decide({**COMMIT, "repo": {"path": "/src/vendor/lib"}}) == FILTERED
    assert policy.decide({**COMMIT, "repo": {"path": "/src/app"}}) == KEEP


def test_sampling_reads_only_by_default() -> None:
    policy = _policy(level="all", sample_rate=0.25)
    assert policy.decide(STATUS) == SAMPLED
    assert policy.decide(COMMIT) == KEEP
    every = _policy(level="all", sample_rate=0.25, sample_reads=False)
    assert every.decide(COMMIT) == SAMPLED
    assert _policy(level="all", sample_rate=0.75).decide(STATUS) == KEEP


def test_sampling_rate_is_honoured_with_real_randomness() -> None:
    policy = Policy(Settings({"level": "all", "sample_rate": 0.5}))
    kept = sum(policy.keep(STATUS) for _ in range(4000))
    assert 1600 < kept < 2400


def test_disabled_drops_everything() -> None:
    assert _policy(enabled=False).decide(CONFLICT) == DISABLED


def test_always_audit_takes_globs_too() -> None:
    policy = _policy(level="deletes_only", always_audit=("git.commit",))
    assert policy.decide(COMMIT) == KEEP
    assert policy.decide(CLONE) == FILTERED
