"""What the soc2 and security report tests share: options, records, a build.

:func:`Options` builds the real ``ReportOptions`` with test defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from gitaudit.config import Settings
from gitaudit.report.model import Finding, Report, to_json
from gitaudit.report.options import ReportOptions, WorkingHours
from gitaudit.store import Store
from gitaudit.store.reader import EventFilter
from tests.store.helpers import make_record

# A Monday noon (inside working hours) in UTC.
MONDAY = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def Options(**fields: Any) -> ReportOptions:  # noqa: N802 - reads like the class it builds
    """The real report options, with test defaults: protected ``main``, ``release/*`` and
    tags, working hours Mon-Fri 08:00-19:00 UTC (``hours=(start, end)`` to change them)."""
    start, end = fields.pop("hours", (8, 19))
    fields.setdefault("protected_branches", ("main", "release/*", "refs/tags/*"))
    hours = WorkingHours.parse(f"Mon-Fri {start:02d}:00-{end:02d}:00 UTC")
    fields.setdefault("working_hours", hours)
    fields.setdefault("settings", Settings())
    return ReportOptions(**fields)


def event(at: datetime, operation: str, **overrides: Any) -> dict[str, Any]:
    """A stored-to-be record of ``operation`` at ``at`` (other fields from make_record)."""
    overrides.setdefault("outcome", "success")
    overrides.setdefault("result", {"exit_code": 0})
    overrides.setdefault("details", {})
    return make_record(0, operation=operation, occurred_at=at.isoformat(), **overrides)


def actor(user: str, host: str = "build-01", **more: Any) -> dict[str, Any]:
    return {"uid": 1000, "user": user, "git_name": user.title(),
            "git_email": f"{user}@example.com", "host": host, **more}


def push(ref: str, **flags: Any) -> dict[str, Any]:
    """``details`` of a push of one ref."""
    entry = {"ref": ref, "old": "a" * 40, "new": "b" * 40, "created": False, "deleted": False,
             "forced": False, **flags}
    return {"remote": "origin", "refs": [entry]}


def build(store: Store, kind: Callable[..., Report], options: Options,
          flt: EventFilter | None = None) -> tuple[Report, dict[str, Any]]:
    """Build the report the way ``gitaudit report`` does, and its JSON form."""
    flt = flt or EventFilter(since=options.since, until=options.until)
    seen: list[int] = []
    with store.reading(flt) as conn:
        report = kind(conn, flt, options, seen.append)
    assert seen, "progress was never reported"
    assert seen == sorted(seen), "progress went backwards"
    assert seen[-1] == report.events_read
    return report, to_json(report)


def findings(report: Report) -> dict[str, Finding]:
    """Every finding of the report by title."""
    found: dict[str, Finding] = {}
    for section in report.sections:
        for block in section.blocks:
            for item in getattr(block, "items", ()):
                if isinstance(item, Finding):
                    found[item.title] = item
    return found


def section(report: Report, title: str) -> Sequence[Any]:
    """The blocks of the section titled ``title``."""
    return next(part.blocks for part in report.sections if part.title == title)


def period(days: int = 7) -> tuple[datetime, datetime]:
    """A week from the Monday before :data:`MONDAY`."""
    start = MONDAY - timedelta(hours=12)
    return start, start + timedelta(days=days)
