"""Deduper: one git.* event per git command across wrapper, hook and trace2."""

from __future__ import annotations

from typing import Any

from gitaudit.daemon.trace2_receiver import Deduper


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def git_event(source: str, *, at: str = "2026-11-22T05:52:23.850000Z", sid: str | None = None,
              argv: list[str] | None = None, corr: str = "corr-1", path: str = "/srv/app",
              operation: str = "git.push", duration_ms: float = 120.0) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if argv is not None:
        details["argv"] = argv
    if sid is not None:
        details["trace2_sid"] = sid
    return {"operation": operation, "source": source, "occurred_at": at,
            "duration_ms": duration_ms, "correlation_id": corr, "repo": {"path": path},
            "details": details}


def test_same_trace2_sid_from_another_source_is_a_duplicate() -> None:
    dedupe = Deduper()
    dedupe.remember(git_event("wrapper", sid="S1", argv=["push"]))
    assert dedupe.seen(git_event("trace2", sid="S1", argv=["push", "-f"], corr="other"))
    assert not dedupe.seen(git_event("trace2", sid="S2", argv=["push", "-f"]))


def test_a_trace2_record_under_the_wrappers_parent_sid_is_that_wrapper_event() -> None:
    dedupe = Deduper()
    wrapper = {**git_event("wrapper", argv=["co", "main"], corr="w"), "id": "W1"}
    dedupe.remember(wrapper)  # an alias: trace2 reports the expanded argv, and no correlation
    assert dedupe.seen(git_event("trace2", sid="W1/20261122T0556Z-H1-P1", argv=["checkout"],
                                 corr="20261122T0556Z-H1-P1", at="2026-11-22T06:00:00Z"))
    assert not dedupe.seen(git_event("trace2", sid="W2/20261122T0556Z-H1-P2", argv=["checkout"]))
    assert not dedupe.seen(git_event("trace2", sid="20261122T0556Z-H1-P3", argv=["checkout"]))


def test_a_hook_matches_the_git_that_ran_it_only_for_the_same_operation() -> None:
    dedupe = Deduper()
    dedupe.remember(git_event("trace2", sid="R1", argv=["rebase", "main"], corr="R1",
                              operation="git.rebase"))
    # post-checkout and post-commit inside the rebase: other operations, kept
    assert not dedupe.seen(git_event("hook", sid="R1", operation="git.checkout", corr="h"))
    assert not dedupe.seen(git_event("hook", sid="R1", operation="git.commit", corr="h"))
    assert dedupe.seen(git_event("hook", sid="R1", operation="git.rebase", corr="h"))
    dedupe.remember(git_event("hook", sid="C1", operation="git.commit", corr="h2"))
    assert dedupe.seen(git_event("trace2", sid="C1", argv=["commit"], corr="C1",
                                 operation="git.commit"))


def test_same_command_line_and_correlation_at_the_same_time() -> None:
    dedupe = Deduper(tolerance=2.0)
    dedupe.remember(git_event("wrapper", argv=["push", "origin", "main"]))
    assert dedupe.seen(git_event("trace2", argv=["push", "origin", "main"],
                                 at="2026-11-22T05:52:24.100000Z"))
    assert not dedupe.seen(git_event("trace2", argv=["push", "origin", "main"],
                                     at="2026-11-22T05:53:30.000000Z"))  # a later push
    assert not dedupe.seen(git_event("trace2", argv=["push", "origin", "main"], corr="c2"))
    assert not dedupe.seen(git_event("trace2", argv=["push", "origin", "main"], path="/x"))


def test_the_same_source_twice_is_two_commands() -> None:
    dedupe = Deduper()
    dedupe.remember(git_event("trace2", argv=["status"], operation="git.other"))
    assert not dedupe.seen(git_event("trace2", argv=["status"], operation="git.other"))


def test_a_hook_event_inside_the_command_run_matches_without_argv() -> None:
    dedupe = Deduper(tolerance=0.5)
    dedupe.remember(git_event("trace2", argv=["push"], duration_ms=5000.0))
    assert dedupe.seen(git_event("hook", at="2026-11-22T05:52:27.000000Z"))  # mid-push
    assert not dedupe.seen(git_event("hook", at="2026-11-22T05:52:40.000000Z"))
    assert not dedupe.seen(git_event("wrapper", argv=["push", "x"]))  # argv differs, no hook


def test_entries_expire_after_the_window_and_are_bounded() -> None:
    clock = Clock()
    dedupe = Deduper(window=60.0, clock=clock)
    dedupe.remember(git_event("wrapper", sid="S1"))
    clock.now += 61
    assert not dedupe.seen(git_event("trace2", sid="S1"))
    small = Deduper(max_entries=4)
    for number in range(10):
        small.remember(git_event("wrapper", sid=f"S{number}"))
    assert not small.seen(git_event("trace2", sid="S0"))
    assert small.seen(git_event("trace2", sid="S9"))


def test_non_git_events_are_never_duplicates_and_is_duplicate_remembers() -> None:
    dedupe = Deduper()
    claude = git_event("claude", operation="claude.request")
    assert not dedupe.is_duplicate(claude)
    assert not dedupe.is_duplicate({**claude, "source": "trace2"})
    assert not dedupe.is_duplicate(git_event("wrapper", sid="S1"))
    assert dedupe.is_duplicate(git_event("trace2", sid="S1"))


def test_one_ending_per_detected_conflict_whichever_source() -> None:
    dedupe = Deduper(clock=Clock())
    resolved = {"id": "r1", "operation": "conflict.resolved", "source": "hook",
                "parent_id": "D1", "correlation_id": "c", "repo": {"path": "/r"}}
    assert not dedupe.is_duplicate(resolved)
    assert dedupe.is_duplicate({**resolved, "id": "r2", "source": "trace2"})
    assert dedupe.is_duplicate({**resolved, "id": "r3", "operation": "conflict.aborted"})
    assert not dedupe.is_duplicate({**resolved, "id": "r4", "parent_id": "D2"})
