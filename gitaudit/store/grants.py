"""Which retention grants are accounted for, and plain ``verify`` refusing those that are not.

A ``retention_grants`` row lets the append-only triggers pass DELETEs of one
chain's records up to ``upto_seq``. Anyone who can INSERT can add one, so a grant
alone proves nothing: retention records every run as an ``audit.retention``
event, and a grant counts only when such a record names its chain and its
``upto_seq`` (anywhere in ``details``: an object with ``"chain_id": C`` and
``upto_seq`` among its integer values). A forged grant (for example
``upto_seq = 999999999``, which lets a whole chain be cut with the triggers on)
has no such record and makes ``gitaudit verify`` fail, naming the chain.

The archive manifest check for a retention-accounted prefix is retention's
(``gitaudit verify --archive``); this module only decides whether a grant is
backed by a record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, Final

from sqlalchemy import Connection, select

from gitaudit.store.integrity import ChainReport, Problem, VerifyReport
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


def unaccounted_grant_problem(chain_id: str, upto: int) -> Problem:
    """The problem plain ``verify`` reports for a grant no ``audit.retention`` record names."""
    return Problem(
        "missing",
        chain_id,
        None,
        None,
        f"a retention grant lets records up to seq {upto} of this chain be deleted, but no "
        f"{RETENTION_OPERATION} record accounts for it: a deletion outside retention",
    )


def check_grants(conn: Connection, report: VerifyReport) -> VerifyReport:
    """``report`` with each chain that has an unaccounted grant failed (unless it already is)."""
    _, unaccounted = grant_status(conn)
    if not unaccounted:
        return report
    first: dict[str, int] = {}
    for chain_id, upto in unaccounted:
        first.setdefault(chain_id, upto)
    chains: list[ChainReport] = []
    for reported in report.chains:
        cut = first.pop(reported.chain_id, None)
        if cut is not None and reported.problem is None:
            problem = unaccounted_grant_problem(reported.chain_id, cut)
            reported = replace(reported, problem=problem)  # noqa: PLW2901 - the failed copy
        chains.append(reported)
    for chain_id, upto in first.items():  # a grant on a chain with no records left at all
        problem = unaccounted_grant_problem(chain_id, upto)
        chains.append(ChainReport(chain_id, 0, None, None, problem))
    return VerifyReport(sorted(chains, key=lambda chain: chain.chain_id))
