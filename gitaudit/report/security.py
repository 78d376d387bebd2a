"""``gitaudit report security``: unusual activity in a period, for an investigation.

Sections, each from the query layer (:mod:`gitaudit.store.reader`) with the
user's filter narrowed to what it needs:

- **Force-pushes and deletions** (:class:`~gitaudit.report.evidence.RefChanges`);
- **Activity outside working hours** (``ReportOptions.working_hours``), per actor,
  from the time and actor columns alone (no body is parsed); gitaudit's own
  ``audit.*`` records are not activity. Every event of the period goes through it, so
  for a large period a spawned worker process reads them while this one builds the
  other sections (:class:`OffHoursPass`);
- **Mass cloning**: an actor who cloned at least ``clone_threshold`` distinct
  repositories in one UTC day (the database groups and counts);
- **Pushes from new hosts**: a host whose first event in the whole store is a push
  made inside the period;
- **Secrets redacted**, per kind: how many ``[REDACTED:<kind>]`` markers the
  sanitizer left in the stored events (:data:`gitaudit.sanitize_rules.KINDS`);
  counts and event ids only, never a value (the store holds none);
- **Actor claims the kernel contradicted**: events whose sender claimed another
  uid or user than the kernel's peer credentials showed (the daemon keeps the
  claim in ``details.claimed_actor``, see :mod:`gitaudit.daemon.intake`), and
  AI agent claims the daemon could not prove (``actor.agent.verified`` false).

Bodies are read only for events that can hold a marker or a claim (the database
selects them by their text); accumulators keep counts and capped id lists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from multiprocessing import get_context
from typing import Any, Final

from sqlalchemy import Connection, distinct, func, or_

from gitaudit.report.common import NO_EVENTS, iso, narrowed, new_report
from gitaudit.report.evidence import (
    MAX_ROWS,
    WORKER_FAILURES,
    Evidence,
    Progress,
    Reader,
    RefChanges,
    cut_note,
    period_of,
    present,
    ref_events,
    when,
    workers,
)
from gitaudit.report.model import (
    MAX_EVIDENCE_IDS,
    Cell,
    Finding,
    Findings,
    KeyValues,
    Report,
    Section,
    Table,
)
from gitaudit.report.options import ReportOptions, WorkingHours
from gitaudit.sanitize_rules import KINDS
from gitaudit.store.reader import (
    ORDER,
    EventFilter,
    chain_heads,
    count_matching,
    matching,
    parse_body,
)
from gitaudit.store.stats import GROUPS
from gitaudit.store.subjects import Revealer
from gitaudit.store.tables import events

MARKER: Final = re.compile(r"\[REDACTED:([a-z0-9-]+)\]")
MAX_GROUP_FINDINGS: Final = 20  # findings per section that name one actor or host each
MAX_HOSTS: Final = 1000  # hosts that pushed in the period, looked up one by one


# --- outside working hours ---------------------------------------------------------------


@dataclass
class _Hours:
    evidence: Evidence = field(default_factory=Evidence)
    changes: int = 0
    first: datetime | None = None
    last: datetime | None = None


class OffHours:
    """Events outside the working hours, per actor (fed time, actor, operation, category)."""

    def __init__(self, options: ReportOptions) -> None:
        self.hours = options.working_hours  # all it keeps of them: sent to a worker and back
        self.actors: dict[str, _Hours] = {}
        self.total = 0

    def feed(self, event_id: str, moment: datetime, actor: str | None, operation: str,
             category: str) -> None:  # fmt: skip
        """Account for one event."""
        if operation.startswith("audit.") or self.hours.contains(moment):
            return
        self.total += 1
        entry = self.actors.setdefault(actor or "(unknown)", _Hours())
        entry.evidence.add(event_id)
        entry.changes += category != "read"
        entry.first = moment if entry.first is None else min(entry.first, moment)
        entry.last = moment if entry.last is None else max(entry.last, moment)

    def section(self) -> Section:
        """One finding per actor (busiest first), and a table of every actor."""
        ranked = sorted(self.actors.items(), key=lambda item: (-item[1].evidence.count, item[0]))
        found = [
            entry.evidence.finding(
                f"{actor} worked outside working hours", "medium" if entry.changes else "low",
                f"{entry.evidence.count} event(s) outside {self.hours.describe()}, "
                f"{entry.changes} of them changes (not reads), {iso(entry.first)} to "
                f"{iso(entry.last)}.",
            )
            for actor, entry in ranked[:MAX_GROUP_FINDINGS]
        ]
        rows = tuple((actor, entry.evidence.count, entry.changes, iso(entry.first),
                      iso(entry.last)) for actor, entry in ranked)  # fmt: skip
        return Section(
            "Activity outside working hours",
            (Findings(tuple(found), "No activity outside working hours."),
             Table(("actor", "events", "changes", "first", "last"), rows)),
            f"Working hours: {self.hours.describe()}. Changes are events that "
            "are not reads (category create, update or delete).",
        )  # fmt: skip


def off_hours_section(reader: Reader, flt: EventFilter, options: ReportOptions) -> Section:
    """:class:`OffHours` over every event of the period (columns only)."""
    hours = OffHours(options)
    _feed_off_hours(reader, flt, hours, None)
    return hours.section()


def _feed_off_hours(reader: Reader, flt: EventFilter, hours: OffHours,
                    heads: dict[str, int] | None) -> None:  # fmt: skip
    """Feed ``hours`` every event of ``flt`` (``heads``: only those up to these chain heads,
    the ones the report's snapshot holds, when another snapshot reads them)."""
    actor = GROUPS["actor"](reader.conn.dialect.name)
    for row in reader.rows(replace(flt, limit=None), events.c.id, events.c.occurred_at, actor,
                           events.c.operation, events.c.category, events.c.chain_id,
                           events.c.seq):  # fmt: skip
        if heads is not None and row[6] > heads.get(row[5], 0):
            reader.read -= 1  # appended after the report's snapshot: not the report's
            continue
        hours.feed(row[0], row[1], reader.shown(row[2]), row[3], row[4])


def off_hours_worker(url: str, flt: EventFilter, working_hours: WorkingHours,
                     heads: dict[str, int]) -> tuple[OffHours, int]:  # fmt: skip
    """:func:`off_hours_section`'s pass in a spawned process (its own connection, its own
    snapshot bounded by the report's ``heads``): the accumulator and the events read."""
    from gitaudit.store.engine import create_store_engine, snapshot, sqlite_file

    engine = create_store_engine(url, read_only=sqlite_file(url) is not None)
    try:
        with snapshot(engine) as conn:
            reader = Reader(conn, lambda _: None)
            hours = OffHours(ReportOptions(working_hours=working_hours))
            _feed_off_hours(reader, flt, hours, heads)
    finally:
        engine.dispose()
    return hours, reader.read


class OffHoursPass:
    """The off-hours pass of a large period in a worker process, started before the report
    reads anything else and collected by :meth:`section`; else run there, in this process.
    A worker that failed (died, could not read the store): the pass runs here. Same events,
    same section."""

    def __init__(self, reader: Reader, flt: EventFilter, options: ReportOptions) -> None:
        self.reader, self.flt, self.options = reader, flt, options
        self.pool: ProcessPoolExecutor | None = None
        self.future: Future[tuple[OffHours, int]] | None = None
        chosen = workers(reader.conn, options)
        if chosen is None or count_matching(reader.conn, flt) < chosen[2]:
            return
        heads = chain_heads(reader.conn)
        self.pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"))
        self.future = self.pool.submit(off_hours_worker, chosen[0], replace(flt, limit=None),
                                       options.working_hours, heads)  # fmt: skip

    def close(self) -> None:
        """Stop the worker if the report ends without its result."""
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def section(self) -> Section:
        """The section (waits for the worker)."""
        if self.future is not None:
            try:
                hours, read = self.future.result()
            except WORKER_FAILURES:  # it died or could not read the store: read here
                pass
            else:
                self.reader.counted(read)
                return hours.section()
        return off_hours_section(self.reader, self.flt, self.options)


# --- mass cloning ------------------------------------------------------------------------


def cloning_section(conn: Connection, flt: EventFilter, options: ReportOptions) -> Section:
    """Actors who cloned at least ``clone_threshold`` distinct repositories in one day."""
    threshold = options.clone_threshold
    scoped = narrowed(flt, ("git.clone",))
    dialect = conn.dialect.name
    actor, day = GROUPS["actor"](dialect), GROUPS["day"](dialect)
    repo = func.coalesce(events.c.repo_name, events.c.repo_path)
    rows: list[tuple[Cell, ...]] = []
    found: list[Finding] = []
    if scoped is not None:
        repos = func.count(distinct(repo))
        query = (matching(conn, scoped, actor.label("actor"), day.label("day"), repos,
                          func.count()).group_by(actor, day).having(repos >= threshold)
                 .order_by(repos.desc(), actor, day))  # fmt: skip
        revealer = Revealer(conn)
        for who, on, distinct_repos, clones in conn.execute(query):
            person = revealer.value(who)
            rows.append((person, on, int(distinct_repos), int(clones)))
            if len(found) >= MAX_GROUP_FINDINGS:
                continue
            same = actor.is_(None) if who is None else actor == who
            ids = conn.scalars(matching(conn, scoped, events.c.id).where(same, day == on)
                               .order_by(*ORDER).limit(MAX_EVIDENCE_IDS))  # fmt: skip
            found.append(Finding(
                f"{person or '(unknown)'} cloned {distinct_repos} repositories on {on}", "high",
                f"{int(clones)} clone(s) of {distinct_repos} distinct repositories in one day "
                f"(threshold {threshold}).", tuple(ids), int(clones),
            ))
    return Section(
        "Mass cloning",
        (Findings(tuple(found), f"No actor cloned {threshold} or more repositories in a day."),
         Table(("actor", "day (UTC)", "repositories", "clones"), tuple(rows))),
        f"Actors who cloned at least {threshold} distinct repositories in one UTC day.",
    )  # fmt: skip


# --- pushes from new hosts ---------------------------------------------------------------


def new_hosts_section(conn: Connection, flt: EventFilter) -> Section:
    """Hosts that pushed in the period and had never done anything in the store before."""
    scoped = narrowed(flt, ("git.push",))
    rows: list[tuple[Cell, ...]] = []
    found: list[Finding] = []
    candidates: list[Any] = []
    since = flt.since
    if scoped is not None:
        host = events.c.actor_host
        pushers = (matching(conn, scoped, host, func.count()).where(host.is_not(None))
                   .group_by(host).order_by(host).limit(MAX_HOSTS))  # fmt: skip
        candidates = list(conn.execute(pushers))
        for name, pushes in candidates:
            first = conn.execute(
                matching(conn, EventFilter(), events.c.operation, events.c.occurred_at)
                .where(host == name).order_by(*ORDER).limit(1)
            ).one()
            if first.operation != "git.push" or (since is not None and first.occurred_at < since):
                continue
            ids = tuple(conn.scalars(matching(conn, scoped, events.c.id).where(host == name)
                                     .order_by(*ORDER).limit(MAX_EVIDENCE_IDS)))  # fmt: skip
            revealer = Revealer(conn)
            actors = sorted(
                str(revealer.value(who)) for who in conn.scalars(
                    matching(conn, scoped, GROUPS["actor"](conn.dialect.name))
                    .where(host == name).distinct().limit(5)
                ) if who is not None
            )  # fmt: skip
            rows.append((name, iso(first.occurred_at), int(pushes), ", ".join(actors)))
            if len(found) < MAX_GROUP_FINDINGS:
                found.append(Finding(
                    f"Push from a host never seen before: {name}", "medium",
                    f"The first event of {name} in the store is a push ({iso(first.occurred_at)}"
                    f"); {int(pushes)} push(es) in the period by {', '.join(actors) or '?'}.",
                    ids, int(pushes),
                ))
    return Section(
        "Pushes from new hosts",
        (Findings(tuple(found), "Every host that pushed had been seen before."),
         Table(("host", "first seen", "pushes", "actors"), tuple(rows),
               f"Only the first {MAX_HOSTS} hosts (by name) that pushed were looked up."
               if len(candidates) >= MAX_HOSTS else "")),
        "Hosts whose first event in the whole store is a push made in the period.",
    )  # fmt: skip


# --- secrets and claims (bodies that hold a marker or a claim) ---------------------------


class Secrets:
    """``[REDACTED:<kind>]`` markers per kind: occurrences and the events holding them."""

    def __init__(self) -> None:
        self.kinds: dict[str, Evidence] = {}
        self.markers: dict[str, int] = {}

    def feed(self, event_id: str, body: str) -> None:
        """Count the markers of one stored body (known kinds only)."""
        for kind in MARKER.findall(body):
            if kind not in KINDS:
                continue
            self.markers[kind] = self.markers.get(kind, 0) + 1
            self.kinds.setdefault(kind, Evidence()).add(event_id)

    def section(self) -> Section:
        """One finding per kind, and a table of counts: never a value."""
        ranked = sorted(self.kinds.items(), key=lambda item: (-self.markers[item[0]], item[0]))
        found = [
            evidence.finding(
                f"Secrets redacted: {kind}", "low",
                f"{self.markers[kind]} value(s) of kind {kind} ({KINDS[kind]}) were redacted "
                f"in {evidence.count} event(s) before they were stored.",
            )
            for kind, evidence in ranked
        ]
        rows = tuple((kind, KINDS[kind], self.markers[kind], evidence.count)
                     for kind, evidence in ranked)  # fmt: skip
        return Section(
            "Secrets redacted",
            (Findings(tuple(found), "No secret was redacted."),
             Table(("kind", "what", "redacted", "events"), rows)),
            "Secrets the sanitizer replaced before the events were stored, counted per kind; "
            "the values were never stored.",
        )  # fmt: skip


class Claims:
    """Actor claims the kernel contradicted, and AI agent claims nobody proved."""

    COLUMNS: Final = ("time", "operation", "kernel user", "kernel uid", "claimed user",
                      "claimed uid", "host", "event id")  # fmt: skip

    def __init__(self) -> None:
        self.contradicted = Evidence()
        self.unproven_agents = Evidence()
        self.rows: list[tuple[Cell, ...]] = []

    def feed(self, event: Mapping[str, Any]) -> None:
        """Account for one event that may carry a claim."""
        actor = event.get("actor") or {}
        details = event.get("details") or {}
        claimed = details.get("claimed_actor") if isinstance(details, dict) else None
        if isinstance(claimed, dict) and claimed:
            self.contradicted.add(event.get("id"))
            if len(self.rows) < MAX_ROWS:
                self.rows.append((
                    when(event), str(event.get("operation")),
                    _cell(actor.get("user")), _cell(actor.get("uid")),
                    _cell(claimed.get("user")), _cell(claimed.get("uid")),
                    _cell(actor.get("host")), str(event.get("id")),
                ))  # fmt: skip
        agent = actor.get("agent")
        if isinstance(agent, dict) and agent.get("verified") is not True:
            self.unproven_agents.add(event.get("id"))

    def section(self) -> Section:
        """High for contradicted claims, info for unproven agent claims."""
        found = present(
            (self.contradicted, "Actor claims the kernel contradicted", "high",
             "{n} event(s) claimed another uid or user than the kernel's peer credentials "
             "showed; the kernel's identity was recorded."),
            (self.unproven_agents, "AI agent claims not proven", "info",
             "{n} event(s) claimed an AI agent session the daemon could not prove from the "
             "process tree (or no daemon saw them)."),
        )
        return Section(
            "Actor claims the kernel contradicted",
            (Findings(found, "No claim disagreed with the kernel."),
             Table(self.COLUMNS, tuple(self.rows), cut_note(len(self.rows),
                                                            self.contradicted.count))),
            "Who the sender said it was, against who the kernel said it was (SO_PEERCRED).",
        )  # fmt: skip


def _cell(value: Any) -> Cell:
    return value if isinstance(value, str | int | float) or value is None else str(value)


def bodies_pass(reader: Reader, flt: EventFilter, secrets: Secrets, claims: Claims) -> None:
    """Feed the bodies that hold a redaction marker, a claimed actor or an agent."""
    body = events.c.body
    where = or_(body.contains("[REDACTED:", autoescape=True),
                body.contains('"claimed_actor":', autoescape=True),
                body.contains('"agent":', autoescape=True))  # fmt: skip
    for event_id, text in reader.rows(replace(flt, limit=None), events.c.id, body, where=(where,),
                                      ordered=True):  # fmt: skip
        secrets.feed(event_id, text)
        if '"claimed_actor":' in text or '"agent":' in text:
            claims.feed(parse_body(reader.revealer.body(text)))


# --- the report --------------------------------------------------------------------------


def build(conn: Connection, flt: EventFilter, options: ReportOptions,
          progress: Progress) -> Report:  # fmt: skip
    """The security report for ``flt`` (its period and filters)."""
    reader = Reader(conn, progress)
    hours = OffHoursPass(reader, flt, options)  # a worker reads them while this process goes on
    try:
        changes = RefChanges(options)
        for event in ref_events(reader, flt):
            changes.feed(event)
        secrets, claims = Secrets(), Claims()
        bodies_pass(reader, flt, secrets, claims)
        off_hours = hours.section()
    finally:
        hours.close()
    reader.done()
    since, until = period_of(flt, options)
    matched = count_matching(conn, flt)
    scope = Section("Scope", (KeyValues((
        ("period", f"{iso(since) or 'the beginning'} to {iso(until) or 'now'}"),
        ("events in the period", matched),
        ("working hours", options.working_hours.describe()),
        ("mass cloning threshold", f"{options.clone_threshold} repositories in a day"),
    )),))  # fmt: skip
    sections = (
        scope,
        changes.section(),
        off_hours,
        cloning_section(conn, flt, options),
        new_hosts_section(conn, flt),
        secrets.section(),
        claims.section(),
    )  # fmt: skip
    return new_report("security", "Security review: unusual activity", flt, options, sections,
                      events_read=reader.read, notes=() if matched else (NO_EVENTS,))

