"""``gitaudit report soc2``: change-management and access evidence for a period.

Sections, each from the query layer (:mod:`gitaudit.store.reader`) with the
user's filter narrowed to what the section needs:

- **Changes to protected branches**: every ref a ``git.push`` or ``ref.update``
  changed whose name matches ``protected_branches``, with the actor, forced or
  not, and whether a human or an AI agent made it (``actor.agent``: verified by
  the daemon, or only claimed by the process);
- **Force-pushes and deletions** of any branch or tag (:class:`RefChanges`);
- **Failed and denied operations**: denied means something said no (a gating
  hook of the user: ``result.error`` "refused by the ... hook"; the remote: a
  pushed ref ``rejected``/not ``accepted``, "[remote rejected]", "declined"; a
  Claude Code tool permission ``decision`` of deny); failed is every other failure;
- **Repository access**: who cloned, fetched or pulled which repository
  (counts, first and last time; one entry per actor and repository, from the
  columns alone);
- **Integrity**: the period's records verified in each chain
  (:func:`gitaudit.store.integrity.verify_period`), and the signed checkpoints
  that cover the period, held against the store
  (:func:`gitaudit.store.checkpoint_verify.verify_checkpoints`);
- **Retention** in force (settings) and the retention runs of the period.

Every finding names the events that prove it (``Finding.event_ids``, the first
:data:`~gitaudit.report.model.MAX_EVIDENCE_IDS`, with ``event_count``). One
stream per section, accumulators keep counts and capped lists: memory does
not grow with the number of events.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection, case, func, or_, select

from gitaudit.errors import ConfigError, GitauditError
from gitaudit.report.common import NO_EVENTS, iso, narrowed, new_report
from gitaudit.report.evidence import (
    MAX_ROWS,
    WORKER_FAILURES,
    Evidence,
    Progress,
    Reader,
    RefChange,
    RefChanges,
    actor_name,
    cut_note,
    made_by,
    period_of,
    present,
    ref_changes,
    ref_events,
    repo_name,
    when,
    workers,
)
from gitaudit.report.model import Cell, Finding, Findings, KeyValues, Report, Section, Table
from gitaudit.report.options import ReportOptions
from gitaudit.store.reader import EventFilter, count_matching
from gitaudit.store.stats import GROUPS
from gitaudit.store.tables import events, signed_checkpoints

if TYPE_CHECKING:
    from gitaudit.store.integrity import VerifyReport
    from gitaudit.store.verify_parallel import Running

ACCESS_OPERATIONS: Final = ("git.clone", "git.fetch", "git.pull")
# What a failure's error says when something refused it (besides refused refs).
DENIAL_MARKS: Final = ("refused by the ", "[remote rejected]", "declined", "protected branch")
TOOL_DENIALS: Final = frozenset({"reject", "deny", "denied"})
MAX_ACCESS_ROWS: Final = 1000
MAX_ACTORS: Final = 50  # rows of the per-actor summary of protected changes (most first)
CHECKPOINT_SKEW: Final = timedelta(minutes=5)


# --- changes to protected branches -------------------------------------------------------


class ProtectedPushes:
    """Refs matching the protected patterns that a push or ref update changed."""

    COLUMNS: Final = ("time", "actor", "made by", "repository", "ref", "change", "forced",
                      "event id")  # fmt: skip

    def __init__(self, options: ReportOptions) -> None:
        self.options = options
        self.human = Evidence()
        self.verified_agent = Evidence()
        self.claimed_agent = Evidence()
        self.rows: list[tuple[Cell, ...]] = []
        self.total = 0
        self.by_actor: dict[tuple[str, str], list[int]] = {}  # (actor, made by) -> [n, forced]

    def feed(self, event: Mapping[str, Any], changed: list[RefChange] | None = None) -> None:
        """Account for one ``git.push`` / ``ref.update`` event (``changed``: its
        :func:`ref_changes`, when the caller has them)."""
        if event.get("operation") not in {"git.push", "ref.update"}:
            return
        ok = event.get("outcome") == "success"
        for change in ref_changes(event) if changed is None else changed:
            if change.refused or not self.options.is_protected(change.ref) or not (
                ok or self._accepted(event, change.ref)
            ):
                continue
            self._count(event, change.forced)
            self.total += 1
            if len(self.rows) < MAX_ROWS:
                what = "created" if change.created else "deleted" if change.deleted else "updated"
                via = "push" if event["operation"] == "git.push" else "ref update"
                self.rows.append((when(event), actor_name(event), made_by(event),
                                  repo_name(event), change.ref, f"{what} ({via})",
                                  "yes" if change.forced else "no", str(event.get("id"))))

    @staticmethod
    def _accepted(event: Mapping[str, Any], ref: str) -> bool:
        """A ref a partly failed push still got through (the remote said ok)."""
        return any(
            isinstance(entry, dict) and entry.get("ref") == ref
            and (entry.get("status") == "ok" or entry.get("accepted") is True)
            for entry in (event.get("details") or {}).get("refs") or ()
        )

    def _count(self, event: Mapping[str, Any], forced: bool) -> None:
        agent = (event.get("actor") or {}).get("agent")
        if not isinstance(agent, dict):
            self.human.add(event.get("id"))
            kind = "human"
        elif agent.get("verified") is True:
            self.verified_agent.add(event.get("id"))
            kind = f"agent {agent.get('tool') or '?'} (verified)"
        else:
            self.claimed_agent.add(event.get("id"))
            kind = f"agent {agent.get('tool') or '?'} (claimed)"
        counts = self.by_actor.setdefault((actor_name(event), kind), [0, 0])
        counts[0] += 1
        counts[1] += forced

    def section(self) -> Section:
        """Findings, a summary per actor, and the changes themselves."""
        found = present(
            (self.claimed_agent, "Protected refs changed by an AI agent the daemon did not "
             "verify", "medium", "{n} push(es) or ref update(s) came from a process that "
             "claimed an AI agent session the daemon could not prove from the process tree."),
            (self.verified_agent, "Protected refs changed by a verified AI agent", "info",
             "{n} push(es) or ref update(s) came from git commands a Claude Code session ran "
             "(proven by the process tree)."),
            (self.human, "Protected refs changed by people", "info",
             "{n} push(es) or ref update(s) by people."),
        )
        ranked = sorted(self.by_actor.items(), key=lambda item: (-item[1][0], item[0]))
        summary = Table(
            ("actor", "made by", "changes", "forced"),
            tuple((actor, kind, n, forced) for (actor, kind), (n, forced) in ranked[:MAX_ACTORS]),
            cut_note(min(len(ranked), MAX_ACTORS), len(ranked)),
        )  # fmt: skip
        changes = Table(self.COLUMNS, tuple(self.rows), cut_note(len(self.rows), self.total))
        return Section(
            "Changes to protected branches",
            (Findings(found, "No protected branch or tag was changed."), summary, changes),
            "Refs matching the protected patterns that a push (or a ref update recorded by "
            "the reference-transaction hook or the repository watcher) changed.",
        )


# --- failed and denied operations --------------------------------------------------------


def denial(event: Mapping[str, Any]) -> str | None:
    """Why ``event`` (a failure) was denied, or None when it simply failed."""
    refused = [change.ref for change in ref_changes(event) if change.refused]
    if refused:
        return "the remote refused " + ", ".join(refused[:5])
    details = event.get("details") or {}
    decision = details.get("decision")
    if event.get("operation") == "claude.tool_use" and isinstance(decision, str) and (
        decision.lower() in TOOL_DENIALS
    ):
        return f"tool use denied ({details.get('tool') or '?'})"
    error = str((event.get("result") or {}).get("error") or "")
    if any(mark in error for mark in DENIAL_MARKS):
        return error.splitlines()[0][:200] if error.strip() else error
    return None


class Failures:
    """Failed and denied operations: counts per operation, evidence, the first denials."""

    def __init__(self) -> None:
        self.failed = Evidence()
        self.denied = Evidence()
        self.per_operation: dict[str, list[int]] = {}  # operation -> [failed, denied]
        self.rows: list[tuple[Cell, ...]] = []

    def feed(self, event: Mapping[str, Any]) -> None:
        """Account for one event with ``outcome: failure``."""
        reason = denial(event)
        counts = self.per_operation.setdefault(str(event.get("operation")), [0, 0])
        if reason is None:
            self.failed.add(event.get("id"))
            counts[0] += 1
            return
        self.denied.add(event.get("id"))
        counts[1] += 1
        if len(self.rows) < MAX_ROWS:
            self.rows.append((when(event), actor_name(event), made_by(event),
                              str(event.get("operation")), repo_name(event), reason,
                              str(event.get("id"))))  # fmt: skip

    def section(self) -> Section:
        """Findings, counts per operation and the denied operations."""
        found = present(
            (self.denied, "Denied operations", "medium", "{n} operation(s) were refused by a "
             "hook, the remote or a tool permission."),
            (self.failed, "Failed operations", "low", "{n} operation(s) failed."),
        )
        per_op = Table(("operation", "failed", "denied"), tuple(
            (op, failed, denied) for op, (failed, denied) in sorted(self.per_operation.items())
        ))  # fmt: skip
        denied = Table(("time", "actor", "made by", "operation", "repository", "reason",
                        "event id"), tuple(self.rows),
                       cut_note(len(self.rows), self.denied.count))  # fmt: skip
        return Section(
            "Failed and denied operations",
            (Findings(found, "No operation failed."), per_op, denied),
            "Denied: a hook, the remote or a tool permission said no. Failed: any other failure.",
        )


# --- repository access -------------------------------------------------------------------


class Access:
    """Clones, fetches and pulls per (actor, repository), first and last time: one entry per
    pair, fed one access (:meth:`feed`) or a group of them (:meth:`add`)."""

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str], list[Any]] = {}  # [clones, fetches, pulls, first, last]

    def feed(self, actor: str | None, repo: str | None, operation: str, at: datetime) -> None:
        """Account for one access."""
        counts = [int(operation == name) for name in ACCESS_OPERATIONS]
        self.add(actor, repo, counts, at, at)

    def add(self, actor: str | None, repo: str | None, counts: Sequence[int], first: datetime,
            last: datetime) -> None:  # fmt: skip
        """Account for ``counts`` (clones, fetches, pulls) between ``first`` and ``last``."""
        key = (actor or "(unknown)", repo or "(none)")
        entry = self.pairs.get(key)
        if entry is None:
            entry = self.pairs[key] = [0, 0, 0, first, last]
        for index, count in enumerate(counts):
            entry[index] += count
        entry[3], entry[4] = min(entry[3], first), max(entry[4], last)

    def section(self) -> Section:
        """The pairs by actor and repository (the first :data:`MAX_ACCESS_ROWS`)."""
        rows = tuple((actor, repo, *entry[:3], iso(entry[3]), iso(entry[4]))
                     for (actor, repo), entry in sorted(self.pairs.items())[:MAX_ACCESS_ROWS])
        return Section(
            "Repository access",
            (Table(("actor", "repository", "clones", "fetches", "pulls", "first", "last"),
                   rows, cut_note(len(rows), len(self.pairs))),),
            "Who read which repository: clones, fetches and pulls per actor.",
        )  # fmt: skip


def access_section(reader: Reader, flt: EventFilter) -> Section:
    """:class:`Access` over the period's clones, fetches and pulls: the database groups them
    by stored actor and repository (no body is read); the groups are merged again by the
    actor as people read it."""
    access = Access()
    actor = GROUPS["actor"](reader.conn.dialect.name)
    repo = func.coalesce(events.c.repo_name, events.c.repo_path)
    operation, at = events.c.operation, events.c.occurred_at
    per_operation = [func.sum(case((operation == name, 1), else_=0)) for name in ACCESS_OPERATIONS]
    for row in reader.groups(narrowed(flt, ACCESS_OPERATIONS), (actor, repo), *per_operation,
                             func.min(at), func.max(at), func.count()):  # fmt: skip
        access.add(reader.shown(row[0]), row[1], [int(n or 0) for n in row[2:5]], row[5], row[6])
    return access.section()


# --- integrity and checkpoints -----------------------------------------------------------


class Integrity:
    """The period's records verified chain by chain (a high finding per failing chain).

    Made before the report reads its events: a large period is handed to worker processes
    (:mod:`gitaudit.store.verify_parallel`, planned in the report's snapshot) that
    verify it while this process reads the events; :meth:`section` waits for them. A small
    period, ``jobs`` 1, a store in memory, or workers that failed: verified here
    (:func:`~gitaudit.store.integrity.verify_period`). Same records, same verdict.
    """

    def __init__(self, conn: Connection, options: ReportOptions,
                 period: tuple[datetime | None, datetime | None]) -> None:  # fmt: skip
        from gitaudit.store.keys import load_chain_key

        self.conn, self.options, self.period = conn, options, period
        self.key: bytes | None = None
        self.error: ConfigError | None = None
        self.running: Running | None = None
        if not options.verify:
            return
        try:
            self.key = load_chain_key(options.settings.chain_key_file)
            self.running = self._start()
        except ConfigError as exc:
            self.error = exc

    def _start(self) -> Running | None:
        """Workers verifying the period, or None (verify in this process)."""
        from gitaudit.store.verify_parallel import Running, plan

        chosen = workers(self.conn, self.options)
        if chosen is None:
            return None
        url, jobs, least = chosen
        planned = plan(self.conn, url, self.key, jobs, self.period)
        return Running(planned, jobs) if planned.total >= least else None

    def close(self) -> None:
        """Stop the workers if the report ends without their result."""
        if self.running is not None:
            self.running.close()

    def section(self, reader: Reader) -> Section:
        """The Integrity section (waits for the workers)."""
        from gitaudit.store.integrity import verify_period

        if not self.options.verify:
            finding = Finding("Integrity not verified", "medium",
                              "The report was made without verifying the hash chains: run "
                              "`gitaudit verify`, or make the report again with verification.")
            return Section("Integrity", (KeyValues((("result", "not verified (turned off)"),)),
                                         Findings((finding,))))  # fmt: skip
        if self.error is not None:
            return _not_verified(self.error)
        before, shown = reader.read, [reader.read]

        def progress(done: int, _total: int) -> None:
            reader.read = before + done
            if reader.read > shown[0]:  # verifying again after a dead worker: no step back
                shown[0] = reader.read
                reader.progress(reader.read)

        verified = None
        if self.running is not None:
            # a worker died or could not read the store: verified here below
            with contextlib.suppress(*WORKER_FAILURES):
                verified = self.running.result(progress)
        if verified is None:
            try:
                verified = verify_period(self.conn, self.key, *self.period, progress)
            except ConfigError as exc:
                reader.read = before
                return _not_verified(exc)
        return _integrity(verified, self.period)


def _not_verified(error: ConfigError) -> Section:
    finding = Finding("Integrity not verified", "high", f"{error.message} ({error.hint})")
    return Section("Integrity", (KeyValues((("result", "not verified"),)), Findings((finding,))))


def _integrity(verified: VerifyReport, period: tuple[datetime | None, datetime | None]) -> Section:
    records = sum(chain.records for chain in verified.chains)
    facts = KeyValues((
        ("result", "passed" if verified.ok else "FAILED"),
        ("chains checked", len(verified.chains)),
        ("records checked", records),
        ("scope", "records of the period, each linked to the one before"
         if period != (None, None) else "every record of the store"),
    ))  # fmt: skip
    chains = Table(("chain", "first seq", "last seq", "records", "result"), tuple(
        (chain.chain_id, chain.first_seq, chain.last_seq, chain.records,
         "ok" if chain.problem is None else f"{chain.problem.kind} at seq {chain.problem.seq}")
        for chain in verified.chains
    ))  # fmt: skip
    found = tuple(
        Finding(
            f"Chain {chain.problem.chain_id} fails verification at seq {chain.problem.seq}",
            "high", f"{chain.problem.kind}: {chain.problem.message}",
            (chain.problem.event_id,) if chain.problem.event_id else (),
            1 if chain.problem.event_id else 0,
        )
        for chain in verified.chains
        if chain.problem is not None
    )
    return Section("Integrity", (facts, Findings(found, "Every record verified."), chains),
                   "The hash chain recomputed over the period's records (gitaudit verify).")


def _verifier(options: ReportOptions) -> tuple[Any, str]:
    """The public key signatures are checked with (from ``checkpoint_key``), and a note."""
    path = options.settings.checkpoint_key
    if not path:
        return None, "signatures not checked (no checkpoint_key set)"
    from gitaudit.store.checkpoint_store import load_signer_key

    try:
        return load_signer_key(path).verifier(), "signatures checked with checkpoint_key"
    except ConfigError as exc:
        return None, f"signatures not checked ({exc.message})"


def checkpoints_section(conn: Connection, options: ReportOptions,
                        period: tuple[datetime | None, datetime | None]) -> Section:  # fmt: skip
    """Signed checkpoints made during the period and the first one after it, held against
    the store (heads still there, unchanged; signatures when the key is configured)."""
    from gitaudit.store.checkpoint_verify import LoadedNote, verify_checkpoints
    from gitaudit.store.checkpoints import CheckpointError, parse_body, split_note

    since, until = period
    created = signed_checkpoints.c.created_at
    query = select(signed_checkpoints).order_by(signed_checkpoints.c.number)
    if since is not None:
        query = query.where(created >= since)
    if until is not None:
        after = select(func.min(signed_checkpoints.c.number)).where(created >= until)
        query = query.where(or_(created < until, signed_checkpoints.c.number == after
                                .scalar_subquery()))  # fmt: skip
    listed = list(conn.execute(query.limit(MAX_ROWS)))
    total = len(listed) if len(listed) < MAX_ROWS else int(
        conn.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows: list[tuple[Cell, ...]] = []
    for row in listed:
        try:
            heads = len(parse_body(split_note(row.note)[0]).heads)
        except CheckpointError:
            heads = None
        rows.append((int(row.number), iso(row.created_at), row.key_name or "unsigned", heads))
    key, how = _verifier(options)
    notes = [LoadedNote(f"checkpoint {row.number}", row.note) for row in listed]
    checked = verify_checkpoints(conn, notes, key, datetime.now(UTC), CHECKPOINT_SKEW)
    found = [
        Finding(f"Checkpoint check failed: {item.kind}", "high",
                item.message + (f" (chain {item.chain_id}, seq {item.seq})" if item.chain_id
                                else ""))
        for item in checked.findings
    ]  # fmt: skip
    if not listed:
        found.append(Finding(
            "No signed checkpoint covers the period", "medium",
            "Nothing kept outside the store attests the period's records: run `gitaudit "
            "checkpoint` (or set checkpoint_interval) and keep the notes elsewhere.",
        ))
    signed = sum(1 for row in listed if row.key_name)
    facts = KeyValues((
        ("checkpoints", total), ("signed", signed),
        ("unsigned", len(listed) - signed),
        ("check", ("passed" if checked.ok else "FAILED") if listed else "nothing to check"),
        ("signatures", how),
        ("records of the store no checkpoint covers yet", sum(checked.unattested.values())),
    ))  # fmt: skip
    return Section(
        "Signed checkpoints",
        (facts, Findings(tuple(found), "Every checkpoint agrees with the store."),
         Table(("number", "time", "key", "chains"), tuple(rows),
               cut_note(len(rows), total))),
        "Checkpoints made during the period and the first one after it: each states every "
        "chain's head; the store must still hold those records, unchanged.",
    )  # fmt: skip


# --- retention ---------------------------------------------------------------------------


def retention_section(reader: Reader, flt: EventFilter, options: ReportOptions) -> Section:
    """The retention configuration in force and the retention runs of the period."""
    from gitaudit.store.retention import Policy

    settings = options.settings
    try:
        policy = Policy.from_settings(settings)
        default = policy.default_days
        patterns: tuple[tuple[str, int | None], ...] = policy.patterns
    except GitauditError:
        default, patterns = settings.retention_days, tuple(settings.retention)
    facts = KeyValues((
        ("default", "kept forever" if default is None else f"{default} days"),
        ("archive before deleting", "yes" if settings.archive else "no"),
        ("archive directory", settings.effective_archive_dir if settings.archive else None),
        ("records per transaction", settings.cleanup_batch_size),
        ("runs", f"every {settings.retention_interval:g} s in the daemon"
         if settings.retention_interval else "by gitaudit-retention.timer (daily)"),
    ))  # fmt: skip
    per_op = Table(("operations", "days"), tuple(
        (pattern, "forever" if days is None else days) for pattern, days in patterns))
    runs: list[tuple[Cell, ...]] = []
    total = 0
    for event in reader.events(narrowed(flt, ("audit.retention",))):
        details = event.get("details") or {}
        total += 1
        if len(runs) < MAX_ROWS:
            expired = sum(int(chain.get("expired") or 0) for chain in details.get("chains") or ()
                          if isinstance(chain, dict))  # fmt: skip
            runs.append((when(event), str(details.get("phase") or ""),
                         "yes" if details.get("dry_run") else "no", expired,
                         str(event.get("id"))))  # fmt: skip
    return Section(
        "Retention",
        (facts, per_op, Table(("time", "phase", "dry run", "records expired", "event id"),
                              tuple(runs), cut_note(len(runs), total))),
        "How long records are kept (settings in force now) and the retention runs recorded "
        "in the period.",
    )  # fmt: skip


# --- the report --------------------------------------------------------------------------


def _failures(flt: EventFilter) -> EventFilter | None:
    if flt.outcome not in (None, "failure"):
        return None
    return replace(flt, outcome="failure", limit=None)


def build(conn: Connection, flt: EventFilter, options: ReportOptions,
          progress: Progress) -> Report:  # fmt: skip
    """The SOC 2 evidence report for ``flt`` (its period and filters)."""
    reader = Reader(conn, progress)
    period = period_of(flt, options)
    integrity = Integrity(conn, options, period)  # workers verify while the events are read
    try:
        protected = ProtectedPushes(options)
        changes = RefChanges(options)
        for event in ref_events(reader, flt):
            changed = ref_changes(event)
            protected.feed(event, changed)
            changes.feed(event, changed)
        failures = Failures()
        for event in reader.events(_failures(flt)):
            failures.feed(event)
        access = access_section(reader, flt)
        retention = retention_section(reader, flt, options)
        verified = integrity.section(reader)
    finally:
        integrity.close()
    sections = (
        protected.section(),
        changes.section(),
        failures.section(),
        access,
        verified,
        checkpoints_section(conn, options, period),
        retention,
    )  # fmt: skip
    reader.done()
    matched = count_matching(conn, flt)
    scope = Section("Scope", (KeyValues((
        ("period", f"{iso(period[0]) or 'the beginning'} to {iso(period[1]) or 'now'}"),
        ("events in the period", matched),
        ("protected refs", ", ".join(options.protected_branches) or "(none)"),
    )),))  # fmt: skip
    return new_report("soc2", "SOC 2 change-management and access evidence", flt, options,
                      (scope, *sections), events_read=reader.read,
                      notes=() if matched else (NO_EVENTS,))
