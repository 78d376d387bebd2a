"""What the ``soc2`` and ``security`` reports share: evidence lists, ref changes, the actor.

Both reports read events in streams from the query layer and feed them to small
accumulators (``feed(...)``, then ``section()`` or ``findings()``) that keep counts
and capped lists, never the events: :class:`Evidence` is the capped id list behind every
:class:`~gitaudit.report.model.Finding`; :class:`RefChanges` collects
force-pushes and branch/tag deletions (the rule is
:func:`gitaudit.catalog.deletes_ref`'s); :func:`ref_changes` reads the ref
entries of ``git.push`` / ``ref.update`` / ``git.branch`` / ``git.tag`` /
``update-ref`` events.

Options are :class:`~gitaudit.report.options.ReportOptions`; the report frame, the
period and filter narrowing come from :mod:`gitaudit.report.common`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import ColumnElement, Connection
from sqlalchemy.exc import SQLAlchemyError

from gitaudit.catalog import deletes_ref
from gitaudit.errors import GitauditError
from gitaudit.report.common import narrowed
from gitaudit.report.model import (
    MAX_EVIDENCE_IDS,
    Cell,
    Finding,
    Findings,
    Section,
    Table,
)
from gitaudit.report.options import ReportOptions
from gitaudit.store.reader import ORDER, EventFilter, iter_events, matching
from gitaudit.store.subjects import Revealer

# Rows a table of single events shows (the findings still count them all).
MAX_ROWS: Final = 200
MAX_JOBS: Final = 4  # worker processes a report starts beside its own, at most (one per CPU)
PARALLEL_FROM: Final = 50_000  # records of the period from which workers are worth starting
REF_OPERATIONS: Final = ("git.push", "ref.update", "git.branch", "git.tag")
Progress = Callable[[int], None]
Severity = Literal["info", "low", "medium", "high"]


# --- evidence ----------------------------------------------------------------------------


@dataclass
class Evidence:
    """How many events prove something, and the first :data:`MAX_EVIDENCE_IDS` of their ids."""

    count: int = 0
    ids: list[str] = field(default_factory=list)
    last: object = None

    def add(self, event_id: object) -> None:
        """Count one event (its id kept while there is room); an event fed again right
        after itself (two refs of one push) counts once."""
        if event_id is not None and event_id == self.last:
            return
        self.last = event_id
        self.count += 1
        if len(self.ids) < MAX_EVIDENCE_IDS and isinstance(event_id, str):
            self.ids.append(event_id)

    def finding(self, title: str, severity: Severity, detail: str) -> Finding:
        """The finding these events prove."""
        return Finding(title, severity, detail, tuple(self.ids), self.count)


def present(*specs: tuple[Evidence, str, Severity, str]) -> tuple[Finding, ...]:
    """The findings ``(evidence, title, severity, detail)`` whose evidence holds events
    (``{n}`` in a detail is their count)."""
    return tuple(
        evidence.finding(title, severity, detail.format(n=evidence.count))
        for evidence, title, severity, detail in specs
        if evidence.count
    )


# --- reading events ----------------------------------------------------------------------


class Reader:
    """Streams for one report, counting the events read and reporting progress."""

    def __init__(self, conn: Connection, progress: Progress) -> None:
        self.conn = conn
        self.progress = progress
        self.read = 0
        self.revealer = Revealer(conn)  # identities are subject tokens in the store

    def shown(self, value: str | None) -> str | None:
        """A stored identity column as people read it (see :mod:`gitaudit.store.subjects`)."""
        return self.revealer.value(value)

    def _tick(self) -> None:
        self.read += 1
        if self.read % 1000 == 0:
            self.progress(self.read)

    def events(self, flt: EventFilter | None) -> Iterator[dict[str, Any]]:
        """Whole events matching ``flt`` (None: none), oldest first."""
        if flt is None:
            return
        for event in iter_events(self.conn, flt):
            self._tick()
            yield event

    def rows(
        self, flt: EventFilter | None, *columns: ColumnElement[Any],
        where: tuple[ColumnElement[bool], ...] = (), ordered: bool = False,
    ) -> Iterator[Any]:  # fmt: skip
        """``columns`` of the events matching ``flt`` and ``where``, streamed (in time order
        when ``ordered``)."""
        if flt is None:
            return
        query = matching(self.conn, flt, *columns).where(*where)
        if ordered:
            query = query.order_by(*ORDER)
        for row in self.conn.execution_options(yield_per=2000).execute(query):
            self._tick()
            yield row

    def groups(
        self, flt: EventFilter | None, keys: tuple[ColumnElement[Any], ...],
        *aggregates: ColumnElement[Any],
    ) -> Iterator[Any]:  # fmt: skip
        """``keys`` and ``aggregates`` per group of the events matching ``flt``, the database
        grouping and counting; the last aggregate must be ``count()``: the events a group
        stands for count as read."""
        if flt is None:
            return
        query = matching(self.conn, flt, *keys, *aggregates).group_by(*keys)
        for row in self.conn.execute(query):
            self.counted(int(row[-1]))
            yield row

    def counted(self, events: int) -> None:
        """Count ``events`` read at once (an aggregate's), reporting progress as ticks do."""
        before, self.read = self.read, self.read + events
        if self.read // 1000 != before // 1000:
            self.progress(self.read)

    def done(self) -> None:
        """Report the final count."""
        self.progress(self.read)


# What a worker's failure raises in the report (it died; it could not open or read the
# store): the report then does that work in its own process, as without workers.
WORKER_FAILURES: Final = (BrokenProcessPool, GitauditError, SQLAlchemyError, sqlite3.Error,
                          OSError)  # fmt: skip


def workers(conn: Connection, options: ReportOptions) -> tuple[str, int, int] | None:
    """``(store URL, processes, fewest records worth them)`` for work a report hands to
    spawned worker processes (each opens the store itself); None: do it in this process
    (``jobs`` 1, one CPU, a SQLite store in memory)."""
    from gitaudit.store.engine import sqlite_file

    url = conn.engine.url.render_as_string(hide_password=False)
    if conn.dialect.name == "sqlite" and sqlite_file(url) is None:
        return None  # in memory: no other process can open it
    if options.jobs is not None:
        return (url, options.jobs, 0) if options.jobs > 1 else None
    jobs = min(MAX_JOBS, os.cpu_count() or 1)
    return (url, jobs, PARALLEL_FROM) if jobs > 1 else None


def ref_events(reader: Reader, flt: EventFilter) -> Iterator[dict[str, Any]]:
    """The events that can change or delete refs (:data:`REF_OPERATIONS`, and the
    ``git.other`` ones that delete a ref: ``update-ref -d``, the only ``git.other`` events
    of severity medium, see :func:`gitaudit.catalog.severity_for`), oldest first per kind."""
    yield from reader.events(narrowed(flt, REF_OPERATIONS))
    others = narrowed(flt, ("git.other",))
    if others is not None and others.severity in (None, "medium"):
        yield from reader.events(replace(others, severity="medium"))


# --- what an event says ------------------------------------------------------------------


def actor_name(event: Mapping[str, Any]) -> str:
    """The actor as a person reads it: the OS user, else the git email or name."""
    actor = event.get("actor") or {}
    for key in ("user", "git_email", "git_name"):
        if actor.get(key):
            return str(actor[key])
    return "(unknown)"


def repo_name(event: Mapping[str, Any]) -> str:
    """The repository's name, else its path or remote."""
    repo = event.get("repo") or {}
    for key in ("name", "path", "remote"):
        if repo.get(key):
            return str(repo[key])
    details = event.get("details") or {}
    return str(details.get("url") or "(none)")


def made_by(event: Mapping[str, Any]) -> str:
    """``human``, or the AI agent with whether the daemon proved it (``verified``) or the
    process only claimed it (``claimed``): ``agent claude-code (verified) session S``."""
    agent = (event.get("actor") or {}).get("agent")
    if not isinstance(agent, dict):
        return "human"
    proof = "verified" if agent.get("verified") is True else "claimed"
    return f"agent {agent.get('tool') or '?'} ({proof}) session {agent.get('session_id') or '?'}"


def when(event: Mapping[str, Any]) -> str:
    """The event's time to the second (RFC 3339 UTC, ``2026-11-02T12:04:00Z``)."""
    stamp = str(event.get("occurred_at") or "")
    return stamp[:19] + "Z" if len(stamp) > 19 and stamp[10] == "T" else stamp


@dataclass(frozen=True)
class RefChange:
    """One ref an event changed (or asked to): full ref name and what happened to it."""

    ref: str
    created: bool
    deleted: bool
    forced: bool
    refused: bool  # the remote (or git) refused this ref


def _full_ref(name: str, prefix: str) -> str:
    return name if name.startswith("refs/") else prefix + name


def ref_changes(event: Mapping[str, Any]) -> list[RefChange]:
    """The refs ``event`` changed: a push's ``refs``, a ``ref.update``'s change(s), the
    branches or tags ``git branch -d`` / ``git tag -d`` deleted, ``update-ref -d``'s ref."""
    operation = str(event.get("operation"))
    details = event.get("details") or {}
    entries: list[Any] = []
    if operation in {"git.push", "ref.update"}:
        entries = list(details.get("refs") or ())
        if not entries and operation == "ref.update" and details.get("ref"):
            entries = [details]
    elif operation in {"git.branch", "git.tag"} and deletes_ref(operation, details):
        prefix = "refs/heads/" if operation == "git.branch" else "refs/tags/"
        entries = [{"ref": _full_ref(str(name), prefix), "deleted": True}
                   for name in details.get("names") or ()]  # fmt: skip
    elif operation == "git.other" and deletes_ref(operation, details) and details.get("ref"):
        entries = [{"ref": _full_ref(str(details["ref"]), "refs/heads/"), "deleted": True}]
    return [
        RefChange(
            str(entry["ref"]), bool(entry.get("created")), bool(entry.get("deleted")),
            bool(entry.get("forced")) and operation == "git.push",
            entry.get("status") == "rejected" or entry.get("accepted") is False,
        )
        for entry in entries
        if isinstance(entry, dict) and entry.get("ref")
    ]


def ref_kind(ref: str) -> str:
    """``branch``, ``tag`` or ``ref``."""
    if ref.startswith("refs/heads/"):
        return "branch"
    return "tag" if ref.startswith("refs/tags/") else "ref"


# --- force-pushes and deletions ----------------------------------------------------------

CHANGE_COLUMNS: Final = ("time", "actor", "made by", "repository", "ref", "change",
                         "outcome", "event id")  # fmt: skip


class RefChanges:
    """Force-pushes and branch/tag deletions: evidence per kind, the first rows kept."""

    def __init__(self, options: ReportOptions) -> None:
        self.options = options
        # (kind, protected) -> evidence; kind "force" or "delete"
        self.evidence = {(kind, protected): Evidence()
                         for kind in ("force", "delete") for protected in (True, False)}
        self.rows: list[tuple[Cell, ...]] = []
        self.total_rows = 0

    def feed(self, event: Mapping[str, Any], changed: list[RefChange] | None = None) -> None:
        """Account for one event of :data:`REF_OPERATIONS` (``changed``: its
        :func:`ref_changes`, when the caller has them)."""
        where = "remote" if event.get("operation") == "git.push" else "local"
        for change in ref_changes(event) if changed is None else changed:
            if not (change.forced or change.deleted):
                continue
            protected = self.options.is_protected(change.ref)
            kind = "force" if change.forced else "delete"
            self.evidence[kind, protected].add(event.get("id"))
            what = "force-push" if change.forced else f"{ref_kind(change.ref)} deletion"
            self._row(event, change, f"{what} ({'protected, ' if protected else ''}{where})")

    def _row(self, event: Mapping[str, Any], change: RefChange, what: str) -> None:
        self.total_rows += 1
        if len(self.rows) < MAX_ROWS:
            outcome = "refused" if change.refused else str(event.get("outcome"))
            self.rows.append((when(event), actor_name(event), made_by(event), repo_name(event),
                              change.ref, what, outcome, str(event.get("id"))))

    def findings(self) -> tuple[Finding, ...]:
        """High for protected refs, medium for the others; none when nothing happened."""
        return present(
            (self.evidence["force", True], "Force-pushes to protected refs", "high",
             "{n} push(es) rewrote the history of a protected branch or tag."),
            (self.evidence["delete", True], "Protected refs deleted", "high",
             "{n} event(s) deleted a protected branch or tag."),
            (self.evidence["force", False], "Force-pushes to other refs", "medium",
             "{n} push(es) rewrote the history of an unprotected branch or tag."),
            (self.evidence["delete", False], "Branch and tag deletions", "medium",
             "{n} event(s) deleted an unprotected branch or tag."),
        )

    def section(self) -> Section:
        """The findings and every force-push and deletion (the first :data:`MAX_ROWS`)."""
        table = Table(CHANGE_COLUMNS, tuple(self.rows), cut_note(len(self.rows), self.total_rows))
        return Section(
            "Force-pushes and deletions",
            (Findings(self.findings(), "No force-push and no deletion."), table),
            "Every force-push and every branch or tag deletion, local or remote.",
        )


def cut_note(shown: int, total: int) -> str:
    """What a table says when it shows only the first rows."""
    return f"The first {shown} of {total} rows." if total > shown else ""


# --- the report frame --------------------------------------------------------------------


def period_of(flt: EventFilter, options: ReportOptions) -> tuple[datetime | None, datetime | None]:
    """The report's period: the options', else the filter's."""
    return (options.since or flt.since, options.until or flt.until)


