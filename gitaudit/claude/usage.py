"""Claude usage analytics: requests, tokens and cost of ``claude.request`` events, grouped.

A pure fold over an event stream (``Store.iter_query``, the same query layer
and filters as ``gitaudit log``): nothing is held per event, only one running
total per group. Groups: ``model`` (the model that answered, else the one
asked for), ``actor`` (OS user, else git email), ``repo`` (repository name)
and ``day`` (UTC date of ``occurred_at``). ``cost_usd`` sums the recorded
estimates; calls without one (unknown model, no usage) are counted in
``unpriced`` so a total is never silently short.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
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

    def add(self, event: dict[str, Any]) -> None:
        details = _details(event)
        self.requests += 1
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
        row["cost_usd"] = round(self.cost_usd, 6)
        return row


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
