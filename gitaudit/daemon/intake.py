"""Where every event enters the daemon: verified actor, policy, sanitizer, validation, journal.

For each submitted event, in order (:class:`EventIntake`):

0. what only gitaudit itself may say (sources ``daemon`` and ``trace2``,
   ``audit.*`` operations: :func:`gitaudit.events.gitaudit_only`) is refused
   from clients: socket peers of another uid than the daemon's, client spools;
1. the actor is stamped from the kernel's peer credentials (``SO_PEERCRED``):
   ``actor.uid``, ``actor.user``, ``actor.verified = true``, ``details.peer_pid``;
   a different uid/user claimed by the message is kept under
   ``details.claimed_actor``, which only the daemon writes (a client's own
   ``claimed_actor``/``peer_pid`` are dropped). Events without a peer (client
   spools) are marked unverified whatever they claim;
2. policy (:mod:`gitaudit.policy`) decides kept / filtered / sampled. Events
   from socket clients and client spools already went through the client's
   pipeline, sampling included, so the daemon re-applies level and exclusions
   but does not sample them a second time (that would square the rate);
3. the sanitizer redacts, and :func:`gitaudit.events.validate_event` checks;
4. duplicates (an id accepted before, or a git command another capture path
   already recorded, as ``trace2_receiver.Deduper`` tells) are acknowledged as
   such; so is a repo watcher's ``ref.update`` that git's own activity explains
   (every event feeds the :class:`~gitaudit.capture.watcher.ActivityLog` first,
   before policy);
5. the rest are appended to the journal through the group committer and
   acknowledged ``accepted`` once durable.

No event can stop the intake: one that makes a step fail (policy or sanitizer
choking on an odd shape) is answered ``rejected`` like an invalid one, and
validation refuses whatever a later stage (journal, writer, store) could not
take, so the only thing that reaches the journal is what it can hold.

``on_store_failure`` while the store is down: ``journal`` accepts as usual;
``block`` holds the answer until the store is back (clients time out and
spool); ``reject`` answers ``rejected`` with :data:`STORE_REFUSED`.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final

from pydantic import ValidationError

from gitaudit.capture.watcher import ActivityLog
from gitaudit.config import Settings
from gitaudit.daemon import api
from gitaudit.daemon.agents import AgentTracker
from gitaudit.daemon.api import Ack, Peer
from gitaudit.daemon.journal import GroupCommitter
from gitaudit.daemon.logging import get_logger
from gitaudit.daemon.metrics import Metrics
from gitaudit.daemon.writer import BatchWriter
from gitaudit.errors import SpoolError
from gitaudit.events import (
    DAEMON_DETAILS,
    agent_claim,
    describe_invalid,
    gitaudit_only,
    unverified,
    validate_event,
)
from gitaudit.pipeline import Pipeline
from gitaudit.policy import KEEP, SAMPLED, Policy

STORE_REFUSED: Final = (
    "store unavailable and on_store_failure=reject: keep the event (spool it) and retry later"
)
JOURNAL_FAILED: Final = "journal write failed: keep the event (spool it) and retry later"
# Sources whose events already passed a client-side pipeline (sampling included);
# they are also the clients, who may not say what only gitaudit says.
PRESAMPLED_SOURCES: Final = frozenset({"socket", "spool"})
CLIENT_SOURCES: Final = PRESAMPLED_SOURCES
# Ids remembered for the "duplicate" answer (the store skips stored ids regardless).
SEEN_IDS: Final = 200_000


def stamp_peer(raw: dict[str, Any], peer: Peer) -> dict[str, Any]:
    """A copy of ``raw`` whose actor is who the kernel says, with any other claim kept."""
    event = dict(raw)
    actor = raw.get("actor")
    actor = dict(agent_claim(actor)) if isinstance(actor, dict) else {}
    user = peer.user
    claimed = {key: actor.get(key) for key in ("uid", "user") if actor.get(key) is not None}
    actor.update(uid=peer.uid, user=user, verified=True)
    event["actor"] = actor
    details = raw.get("details")
    if details is None or isinstance(details, dict):
        details = {k: v for k, v in (details or {}).items() if k not in DAEMON_DETAILS}
        if peer.pid > 0:  # 0: the uid is proven but not the process (OTLP over loopback TCP)
            details["peer_pid"] = peer.pid
        if claimed and (claimed.get("uid", peer.uid), claimed.get("user", user)) != (
            peer.uid,
            user,
        ):
            details["claimed_actor"] = claimed
        event["details"] = details
    return event


def _unprocessable(raw: dict[str, Any], exc: Exception) -> str:
    """Why ``raw`` made a step fail: what validation says about it, else the failure."""
    try:
        validate_event(raw)
    except ValidationError as invalid:
        return describe_invalid(invalid)
    except Exception:  # noqa: BLE001, S110 - the failure below says enough
        pass
    return f"invalid event: cannot be processed ({type(exc).__name__}: {str(exc)[:120]})"


class Rules:
    """Pipeline and policies of one configuration (rebuilt on SIGHUP)."""

    def __init__(self, settings: Settings) -> None:
        self.pipeline = Pipeline(settings)
        unsampled = Settings({**settings.as_dict(), "sample_rate": 1.0})
        self.presampled = Policy(unsampled)

    def decide(self, event: dict[str, Any], source: str) -> str:
        """Policy decision; sampling only for events no client pipeline sampled."""
        policy = self.presampled if source in PRESAMPLED_SOURCES else self.pipeline.policy
        return policy.decide(event)

    def sanitize(self, event: dict[str, Any], valid_text: bool = False) -> dict[str, Any]:
        """The redacted event (valid UTF-8 everywhere)."""
        return self.pipeline.sanitize(event, valid_text=valid_text)


class _SeenIds:
    """The most recent accepted ids (bounded; oldest forgotten first)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        if len(self._ids) > self.limit:
            self._ids.popitem(last=False)

    def discard(self, event_id: str) -> None:
        self._ids.pop(event_id, None)


class EventIntake:
    """The daemon's :class:`gitaudit.daemon.api.Intake`."""

    def __init__(
        self,
        settings: Settings,
        committer: GroupCommitter,
        writer: BatchWriter,
        metrics: Metrics,
        deduper: Any = None,
        activity: ActivityLog | None = None,
        agents: AgentTracker | None = None,
    ) -> None:
        self.settings = settings
        self.rules = Rules(settings)
        self.committer = committer
        self.writer = writer
        self.metrics = metrics
        self.deduper = deduper
        self.activity = activity  # what git did where, for the repo watcher's dedupe
        # which git operations an AI agent ran (proven by ancestry; claims only without peers)
        self.agents = agents if agents is not None else AgentTracker(metrics.agent_join)
        self.seen = _SeenIds(SEEN_IDS)
        self.log = get_logger(component="intake")

    def reconfigure(self, settings: Settings) -> None:
        """Apply reloaded settings (policy and sanitizer rebuilt)."""
        self.rules = Rules(settings)
        self.settings = settings

    @staticmethod
    def transient(ack: Ack) -> bool:
        """Whether a rejection is temporary (store or journal down): retry the event later."""
        return ack.status == api.REJECTED and ack.error in {STORE_REFUSED, JOURNAL_FAILED}

    async def accept(
        self,
        events: Sequence[dict[str, Any]],
        *,
        peer: Peer | None,
        source: str,
        valid_text: bool = False,
    ) -> list[Ack]:
        """Process ``events``; one :class:`Ack` each, in order, once the accepted are durable."""
        acks: list[Ack] = []
        records: list[dict[str, Any]] = []
        slots: list[int] = []
        self.metrics.received.labels(source).inc(len(events))
        for raw in events:
            ack, record = self._prepare(raw, peer, source, valid_text)
            if record is not None:
                slots.append(len(acks))
                records.append(record)
            acks.append(ack)
        if records:
            refusal = await self._journal(records, source)
            if refusal is not None:
                for slot, record in zip(slots, records, strict=True):
                    acks[slot] = Ack(record["id"], api.REJECTED, refusal)
        return acks

    def _prepare(
        self, raw: dict[str, Any], peer: Peer | None, source: str, valid_text: bool = False
    ) -> tuple[Ack, dict[str, Any] | None]:
        """The ack of a dropped event, or a provisional ``accepted`` ack and its record."""
        raw_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        if source in CLIENT_SOURCES and (peer is None or peer.uid != os.getuid()):
            forged = gitaudit_only(raw)
            if forged is not None:
                self.metrics.rejected.labels(source, "gitaudit_only").inc()
                self.log.warning(
                    "gitaudit_only_refused", id=raw_id, error=forged, uid=peer and peer.uid
                )
                return Ack(raw_id, api.REJECTED, forged), None
        try:
            return self._process(raw, raw_id, peer, source, valid_text)
        except Exception as exc:  # noqa: BLE001 - one odd event must not stop the intake
            self.metrics.rejected.labels(source, "invalid").inc()
            self.log.warning(  # a shape a step did not expect: say which, keep going
                "event_unprocessable", id=raw_id, error=f"{type(exc).__name__}: {exc}"[:200]
            )
            return Ack(raw_id, api.REJECTED, _unprocessable(raw, exc)), None

    def _process(
        self,
        raw: dict[str, Any],
        raw_id: str | None,
        peer: Peer | None,
        source: str,
        valid_text: bool,
    ) -> tuple[Ack, dict[str, Any] | None]:
        event = stamp_peer(raw, peer) if peer is not None else unverified(raw)
        event = self._join_agent(event, peer, source)
        if self.activity is not None and self._explained(event):
            self.metrics.duplicates.labels(source).inc()
            return Ack(raw_id, api.DUPLICATE), None
        decision = self.rules.decide(event, source)
        if decision != KEEP:
            counter = self.metrics.sampled if decision == SAMPLED else self.metrics.filtered
            counter.labels(source).inc()
            return Ack(raw_id, api.SAMPLED if decision == SAMPLED else api.FILTERED), None
        try:
            record = validate_event(self.rules.sanitize(event, valid_text)).to_record()
        except ValidationError as exc:
            self.metrics.rejected.labels(source, "invalid").inc()
            return Ack(raw_id, api.REJECTED, describe_invalid(exc)), None
        event_id = str(record["id"])
        if event_id in self.seen or self._known_command(record):
            self.metrics.duplicates.labels(source).inc()
            self.agents.dropped(event_id)
            return Ack(event_id, api.DUPLICATE), None
        self.seen.add(event_id)
        self.agents.accepted(event_id)
        return Ack(event_id, api.ACCEPTED), record

    def _join_agent(self, event: dict[str, Any], peer: Peer | None, source: str
                    ) -> dict[str, Any]:
        """The event with its AI agent proven or refused (``gitaudit.daemon.agents``)."""
        try:
            return self.agents.process(event, peer, source)
        except Exception as exc:  # noqa: BLE001 - a join bug must not lose the event
            self.log.error(  # noqa: TRY400 - expected failure, message suffices
                "agent_join_failed", error=f"{type(exc).__name__}: {exc}"[:200],
                id=event.get("id"),
            )
            actor = event.get("actor")
            return {**event, "actor": agent_claim(actor)} if isinstance(actor, dict) else event

    def _explained(self, event: dict[str, Any]) -> bool:
        """Feed the repo watcher's activity log (before policy: a git command dropped by
        policy still made its own ref changes); True for a watcher event git explains."""
        assert self.activity is not None  # noqa: S101 - checked by the caller
        try:
            self.activity.note(event)
            return self.activity.explains(event)
        except Exception as exc:  # noqa: BLE001 - a dedupe bug must not lose the event
            self.log.error(  # noqa: TRY400 - expected failure, message suffices
                "activity_log_failed", error=str(exc), id=event.get("id")
            )
            return False

    def _known_command(self, record: dict[str, Any]) -> bool:
        if self.deduper is None:
            return False
        try:
            return bool(self.deduper.is_duplicate(record))
        except Exception as exc:  # noqa: BLE001 - a deduper bug must not lose the event
            self.log.error(  # noqa: TRY400 - expected failure, message suffices
                "deduper_failed", error=str(exc), id=record.get("id")
            )
            return False

    async def _journal(self, records: list[dict[str, Any]], source: str) -> str | None:
        """Journal ``records``; None when durable, else why they were refused."""
        mode = self.settings.on_store_failure
        if not self.writer.store_up.is_set():
            if mode == "block":
                await self.writer.store_up.wait()
            elif mode == "reject":
                return self._refuse(records, source, STORE_REFUSED, "store_down")
        try:
            await self.committer.submit(records)
        except (SpoolError, OSError) as exc:
            self.log.error(  # noqa: TRY400 - expected failure, message suffices
                "journal_write_failed", error=str(exc), events=len(records)
            )
            return self._refuse(records, source, JOURNAL_FAILED, "journal")
        self.metrics.accepted.labels(source).inc(len(records))
        return None

    def _refuse(self, records: list[dict[str, Any]], source: str, error: str, reason: str) -> str:
        for record in records:
            self.seen.discard(str(record["id"]))
        self.metrics.rejected.labels(source, reason).inc(len(records))
        return error
