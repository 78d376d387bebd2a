"""Investigation trees (``gitaudit trace ID``): everything one job, command or session did.

``ID`` is a correlation id (a CI job, a wrapped command, a Claude Code session: its
events share it), a Claude Code session id (also found on the git events its agent
ran, in ``actor.agent.session_id``) or an event id (then its correlation is traced).
Both lookups are served by indexes of revision 0005.

The tree is joined by ids only, never by time: an event hangs under its
``parent_id``; a git event run by Claude Code under the ``claude.tool_use`` whose
``details.tool_use_id`` its ``actor.agent.tool_use_id`` names, or that lists it in
``details.git_event_ids``. Siblings are in time order. One trace is one job's
events, read whole (a few thousand at most), unlike ``log``'s streams.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, or_, select

from gitaudit.errors import UsageError
from gitaudit.store.reader import ORDER, agent_field
from gitaudit.store.subjects import reveal_bodies
from gitaudit.store.tables import events


@dataclass
class Node:
    """One event of a trace and the events that belong to it."""

    event: dict[str, Any]
    children: list[Node] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The event with its ``children`` nested (``trace --format json``)."""
        return {**self.event, "children": [child.as_dict() for child in self.children]}


@dataclass
class Trace:
    """What :func:`trace` found for an id."""

    ident: str
    correlation_id: str
    kind: str  # "correlation", "session" or "event"
    roots: list[Node]
    count: int


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def trace(conn: Connection, ident: str) -> Trace:
    """The tree of the events of ``ident``; UsageError when nothing is known by that id."""
    kind = "correlation"
    correlation = ident
    row = conn.execute(select(events.c.correlation_id).where(events.c.id == ident)).first()
    if row is not None:
        kind, correlation = "event", str(row[0])
    query = (
        select(events.c.body)
        .where(or_(events.c.correlation_id == correlation,
                   agent_field(conn.dialect.name, "session_id") == correlation))
        .order_by(*ORDER)
    )  # fmt: skip
    found = [json.loads(body) for body in reveal_bodies(conn, conn.scalars(query))]
    if not found:
        raise UsageError(
            f"trace: no event, correlation id or Claude Code session id {ident!r} in the store",
            "take an id from `gitaudit log` (--format jsonl shows id and correlation_id)",
        )
    if kind == "correlation" and any(
        _dict(_dict(event.get("actor")).get("agent")).get("session_id") == ident
        or event.get("source") == "claude_code" for event in found
    ):
        kind = "session"
    return Trace(ident, correlation, kind, build_tree(found), len(found))


def build_tree(found: list[dict[str, Any]]) -> list[Node]:
    """Nodes of ``found`` (in time order) joined by ids; returns the roots in time order."""
    nodes = {str(event.get("id")): Node(event) for event in found}
    tool_uses: dict[str, str] = {}
    caused: dict[str, str] = {}
    for event_id, node in nodes.items():
        details = _dict(node.event.get("details"))
        if node.event.get("operation") == "claude.tool_use":
            if isinstance(details.get("tool_use_id"), str):
                tool_uses[details["tool_use_id"]] = event_id
            ids = details.get("git_event_ids")
            for child in ids if isinstance(ids, list) else ():
                caused.setdefault(str(child), event_id)
    parents = {event_id: _parent(node.event, nodes, tool_uses, caused)
               for event_id, node in nodes.items()}  # fmt: skip
    for event_id in nodes:  # ids that loop back (forged or broken) start a tree of their own
        seen = {event_id}
        above = parents[event_id]
        while above is not None and above not in seen:
            seen.add(above)
            above = parents[above]
        if above == event_id:
            parents[event_id] = None
    roots: list[Node] = []
    for event_id, node in nodes.items():
        parent = parents[event_id]
        (roots if parent is None else nodes[parent].children).append(node)
    return roots


def _parent(
    event: dict[str, Any], nodes: dict[str, Node], tool_uses: dict[str, str],
    caused: dict[str, str],
) -> str | None:
    parent = event.get("parent_id")
    if isinstance(parent, str) and parent in nodes:
        return parent
    tool_use_id = _dict(_dict(event.get("actor")).get("agent")).get("tool_use_id")
    if isinstance(tool_use_id, str) and tool_use_id in tool_uses:
        return tool_uses[tool_use_id]
    return caused.get(str(event.get("id")))
