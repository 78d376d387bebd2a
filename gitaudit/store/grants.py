"""Which retention grants are accounted for (``verify --checkpoints`` reads a chain cut by
retention as removed, not tampered, up to the highest accounted grant).

A ``retention_grants`` row lets the append-only triggers pass DELETEs of one
chain's records up to ``upto_seq``. Anyone who can INSERT can add one, so a grant
alone proves nothing: retention records every run as an ``audit.retention``
event, and a grant counts only when such a record names its chain and its
``upto_seq`` (anywhere in ``details``: an object with ``"chain_id": C`` and
``upto_seq`` among its integer values). Plain ``gitaudit verify`` refuses an
unaccounted grant itself (:class:`gitaudit.store.integrity.RetainedPrefix`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final

from sqlalchemy import Connection, select

from gitaudit.store.tables import events, retention_grants

RETENTION_OPERATION: Final = "audit.retention"


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item)


def _recorded_cuts(conn: Connection) -> set[tuple[str, int]]:
    """(chain_id, seq) pairs that ``audit.retention`` records name."""
    cuts: set[tuple[str, int]] = set()
    query = select(events.c.body).where(events.c.operation == RETENTION_OPERATION)
    for body in conn.scalars(query):
        try:
            details = json.loads(body).get("details")
        except (ValueError, AttributeError):
            continue
        for obj in _objects(details):
            chain_id = obj.get("chain_id")
            if not isinstance(chain_id, str):
                continue
            for value in obj.values():
                if isinstance(value, int) and not isinstance(value, bool):
                    cuts.add((chain_id, value))
    return cuts


def grant_status(conn: Connection) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """Per chain the highest accounted ``upto_seq``; and every unaccounted (chain, upto_seq)."""
    recorded = _recorded_cuts(conn)
    accounted: dict[str, int] = {}
    unaccounted: list[tuple[str, int]] = []
    for chain_id, upto in conn.execute(
        select(retention_grants.c.chain_id, retention_grants.c.upto_seq).order_by(
            retention_grants.c.chain_id, retention_grants.c.upto_seq
        )
    ):
        if (chain_id, int(upto)) in recorded:
            accounted[chain_id] = max(accounted.get(chain_id, 0), int(upto))
        else:
            unaccounted.append((chain_id, int(upto)))
    return accounted, unaccounted
