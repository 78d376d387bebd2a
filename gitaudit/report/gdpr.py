"""The ``gdpr`` report: every event that identifies a data subject (an access request).

``gitaudit report gdpr --subject EMAIL|USER`` finds the subject as ``forget`` does
(:func:`gitaudit.store.subjects.plan`: the identity asked for, any case for an
email, plus the identities seen only with it, e.g. its git name and OS user), then
streams through the query layer every event in the period (and the other filters)
that holds any of their tokens, in an actor field or in free text: the full-text
index holds each token as a word, so this is one indexed ``--grep-syntax`` query
(:func:`gitaudit.store.subjects.token_grep`). The events come revealed (the clear
identities), as ``log`` shows them. Events stored before revision 0007, which name
identities in clear, follow in a section of their own (found by ``--actor`` on each
identity, a second indexed pass).

Nothing is held: both sections are :class:`~gitaudit.report.model.EventStream` blocks
the renderer streams. A subject not found is exit code 3, one forgotten already 4
(as ``forget``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from sqlalchemy import Connection

from gitaudit.errors import UsageError
from gitaudit.report.model import EventStream, KeyValues, Report, Section, Table
from gitaudit.store.reader import EventFilter, count_matching, iter_bodies, iter_events
from gitaudit.store.subjects import (
    ACTOR_FIELDS,
    Revealer,
    Subject,
    preview,
    token_grep,
)

PROGRESS_EVERY: Final = 1000


class Options(Protocol):
    """What this kind reads of :class:`gitaudit.report.options.ReportOptions`."""

    @property
    def subject(self) -> str | None:
        """The data subject (``--subject``)."""


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _counted(events: Iterator[dict[str, Any]], progress: Callable[[int], None]
             ) -> Iterator[dict[str, Any]]:  # fmt: skip
    read = 0
    for event in events:
        read += 1
        if read % PROGRESS_EVERY == 0:
            progress(read)
        yield event
    progress(read)


def _clear_events(conn: Connection, flt: EventFilter, identities: list[Subject],
                  tokens: tuple[str, ...]) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Events naming the subject's identities in clear (stored before revision 0007): one
    ``--actor`` pass per identity, skipping what an earlier pass or the token section
    already gave, so each event comes once and nothing is remembered."""
    import json

    revealer = Revealer(conn)
    for index, subject in enumerate(identities):
        earlier = {str(other.identity) for other in identities[:index]}
        for body in iter_bodies(conn, replace(flt, actor=subject.identity)):
            if any(token in body for token in tokens):
                continue  # written after 0007: in the first section
            actor = json.loads(body).get("actor") or {}
            if earlier.intersection(str(actor.get(name)) for name, _ in ACTOR_FIELDS):
                continue
            yield json.loads(revealer.body(body))


def build(conn: Connection, flt: EventFilter, options: Options,
          progress: Callable[[int], None]) -> Report:  # fmt: skip
    """The gdpr report of ``options.subject`` over the events ``flt`` selects."""
    asked = options.subject
    if not asked:
        raise UsageError("the gdpr report needs --subject EMAIL|USER",
                         "e.g. gitaudit report gdpr --subject alice@example.com")  # fmt: skip
    if flt.grep is not None:
        raise UsageError(
            "--grep cannot narrow the gdpr report: it exports all the subject's events",
            "leave --grep out; narrow with --since/--until or --op",
        )
    shown = preview(conn, asked)
    identities = list(shown.plan.subjects)
    tokens = shown.plan.tokens
    by_token = replace(flt, grep=token_grep(conn.dialect.name, tokens), grep_raw=True)
    count = count_matching(conn, by_token)
    summary = KeyValues((
        ("subject", asked),
        ("identities", len(identities)),
        ("events (identities as pseudonyms)", count),
        ("events stored before revision 0007 naming them in clear (whole store)",
         shown.clear_events),
        ("period", f"{_iso(flt.since) or 'start'} .. {_iso(flt.until) or 'now'}"),
    ))  # fmt: skip
    table = Table(
        ("kind", "identity", "pseudonym"),
        tuple((s.kind, s.identity, s.token) for s in identities),
        note="the identity asked for, and those seen with it and with no one else",
    )
    sections = [
        Section("Subject", (summary, table)),
        Section("Events", (EventStream(lambda: _counted(iter_events(conn, by_token), progress)),),
                "Every event holding one of the identities above, oldest first."),
    ]  # fmt: skip
    if shown.clear_events:
        sections.append(Section(
            "Events stored before revision 0007",
            (EventStream(lambda: _clear_events(conn, flt, identities, tokens)),),
            "Written before identities were pseudonymized: they name the subject in clear "
            "(in actor fields; free text of these is not searched).",
        ))  # fmt: skip
    filters = {key: value for key, value in vars(flt).items()
               if value not in (None, (), False) and key not in ("since", "until")}  # fmt: skip
    return Report(
        kind="gdpr",
        title=f"Data subject access: {asked}",
        generated_at=datetime.now(UTC).isoformat(),
        period=(_iso(flt.since), _iso(flt.until)),
        filters={"subject": asked, **filters},
        sections=tuple(sections),
        events_read=count,
        notes=(
            "Identities are found in actor fields, in emails anywhere in an event and in "
            "'Name <email>'; a bare name or user name inside other text (a path such as "
            "/home/alice) is not.",
        ),
    )
