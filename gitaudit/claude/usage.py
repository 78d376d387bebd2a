"""Claude usage analytics: requests, tokens and cost of ``claude.request`` events, grouped.

A pure fold over an event stream (``Store.iter_query``, the same query layer
and filters as ``gitaudit log``): nothing is held per event, only one running
total per group. Groups: ``model`` (the model that answered, else the one
asked for), ``actor`` (OS user, else git email), ``repo`` (repository name)
and ``day`` (UTC date of ``occurred_at``). ``cost_usd`` sums the recorded
estimates; calls without one (unknown model, no usage) are counted in
``unpriced`` so a total is never silently short.

Requests Claude Code made (``claude.request`` from its OpenTelemetry events,
``cost_source = "claude_code"``, source ``claude_code``) count like the SDK's;
``sessions`` is the number of distinct Claude Code sessions (``details.session_id``,
else the correlation id) among a group's Claude Code requests, and
``claude_code`` how many of its requests came from Claude Code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

TOKEN_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def _text(value: Any) -> str:
    return value if isinstance(value, str) and value else "(unknown)"


def _details(event: dict[str, Any]) -> dict[str, Any]:
    details = event.get("details")
    return details if isinstance(details, dict) else {}


def _part(event: dict[str, Any], name: str) -> dict[str, Any]:
    part = event.get(name)
    return part if isinstance(part, dict) else {}


def _model(event: dict[str, Any]) -> str:
    details = _details(event)
    return _text(details.get("response_model") or details.get("model"))


def _actor(event: dict[str, Any]) -> str:
    actor = _part(event, "actor")
    return _text(actor.get("user") or actor.get("git_email"))


def _repo(event: dict[str, Any]) -> str:
    return _text(_part(event, "repo").get("name"))


def _day(event: dict[str, Any]) -> str:
    return _text(str(event.get("occurred_at", ""))[:10])


GROUPS: Final[dict[str, Callable[[dict[str, Any]], str]]] = {
    "model": _model,
    "actor": _actor,
    "repo": _repo,
    "day": _day,
}


@dataclass
class UsageRow:
    """Totals of one group."""

    key: str
    requests: int = 0
    failures: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0
    claude_code: int = 0
    session_ids: set[str] = field(default_factory=set)

    @property
    def sessions(self) -> int:
        """Distinct Claude Code sessions seen in this group."""
        return len(self.session_ids)

    def add(self, event: dict[str, Any]) -> None:
        details = _details(event)
        self.requests += 1
        if is_claude_code(event):
            self.claude_code += 1
            session = details.get("session_id") or event.get("correlation_id")
            if isinstance(session, str) and session:
                self.session_ids.add(session)
        self.failures += event.get("outcome") == "failure"
        for name in TOKEN_FIELDS:
            value = details.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, name, getattr(self, name) + value)
        cost = details.get("cost_usd")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            self.cost_usd += cost
        else:
            self.unpriced += 1

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        del row["session_ids"]
        row["sessions"] = self.sessions
        row["cost_usd"] = round(self.cost_usd, 6)
        return row


def is_claude_code(event: dict[str, Any]) -> bool:
    """Whether a ``claude.request`` came from Claude Code (not the audited SDK client)."""
    return event.get("source") == "claude_code" or _details(event).get(
        "cost_source") == "claude_code"


def summarize(events: Iterable[dict[str, Any]], by: str) -> tuple[list[UsageRow], UsageRow]:
    """(one row per group, sorted by key; the grand total) of ``events``."""
    group = GROUPS[by]
    rows: dict[str, UsageRow] = {}
    total = UsageRow("total")
    for event in events:
        key = group(event)
        row = rows.get(key)
        if row is None:
            row = rows[key] = UsageRow(key)
        row.add(event)
        total.add(event)
    return [rows[key] for key in sorted(rows)], total
