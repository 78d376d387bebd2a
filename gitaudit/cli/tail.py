"""`gitaudit tail [-f]`: the most recent events, then (with -f) new ones as they are committed.

With a daemon, ``-f`` subscribes on its ``subscribe.sock`` (events arrive right
after each store commit); without one (embedded mode) it ingests the spool and
polls the store every :data:`POLL_INTERVAL` seconds for events recorded after
the last seen position of every hash chain. When the daemon goes away (stopped,
restarted), ``-f`` polls the store from where the feed left off and subscribes
again as soon as the daemon is back; nothing is shown twice or skipped.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from gitaudit.cli.common import OutputFormat, load_settings, open_store, warn_ingest_problems
from gitaudit.cli.log import (
    ActorOption,
    CorrelationOption,
    FormatOption,
    NoIngestOption,
    OpOption,
    OutcomeOption,
    RepoOption,
    SinceOption,
    event_filter,
)
from gitaudit.cli.output import CSV_COLUMNS, TABLE_COLUMNS, csv_row, render, table_row

if TYPE_CHECKING:
    from gitaudit.config import Settings
    from gitaudit.daemon.subscribers import Feed, SubscriptionFilter
    from gitaudit.store import EventFilter, Store

POLL_INTERVAL = 0.5
PRINTED_IDS = 10_000  # ids remembered so that a feed and a store poll never print twice
# Column widths of the -f table lines (the last column, summary, is not padded).
LINE_WIDTHS = (19, 18, 7, 6, 16, 16, 16, 6)


def format_line(cells: Sequence[str]) -> str:
    """One table row as a fixed-width line (``tail -f`` prints no table borders)."""
    padded = []
    for index, cell in enumerate(cells):
        if index >= len(LINE_WIDTHS):
            padded.append(cell)
            continue
        width = LINE_WIDTHS[index]
        text = cell if len(cell) <= width else cell[: width - 1] + "…"
        padded.append(text.rjust(width) if TABLE_COLUMNS[index] == "ms" else text.ljust(width))
    return "  ".join(padded).rstrip()


class Printer:
    """Writes events as they come, in the chosen format, one flush per batch."""

    def __init__(self, fmt: OutputFormat, *, follow: bool, out: TextIO, err: TextIO) -> None:
        self.fmt = fmt
        self.follow = follow
        self.out = out
        self.err = err
        self._header_done = False

    def emit(self, events: Sequence[dict[str, Any]]) -> None:
        """Print ``events`` (the whole output without -f; a chunk of the stream with it)."""
        if not self.follow:
            render(events, self.fmt, self.out)
            return
        if self.fmt in (OutputFormat.json, OutputFormat.jsonl):
            for event in events:
                self.out.write(json.dumps(event, sort_keys=True, ensure_ascii=False) + "\n")
        elif self.fmt is OutputFormat.csv:
            writer = csv.writer(self.out)
            if not self._header_done:
                writer.writerow(CSV_COLUMNS)
            writer.writerows(csv_row(event) for event in events)
        else:
            if not self._header_done:
                self.out.write(format_line(TABLE_COLUMNS) + "\n")
            self.out.writelines(format_line(table_row(event)) + "\n" for event in events)
        self._header_done = True
        self.out.flush()

    def dropped(self, count: int) -> None:
        """Tell the operator that the live feed lost events (this tail fell behind)."""
        self.err.write(f"gitaudit: {count} event(s) dropped: this tail fell behind the daemon\n")
        self.err.flush()


def subscription_filter(flt: EventFilter) -> SubscriptionFilter:
    """The live-feed filter equivalent of a store filter (time bounds do not apply)."""
    from gitaudit.daemon.subscribers import SubscriptionFilter

    return SubscriptionFilter(
        operations=flt.operations,
        actor=flt.actor,
        repo=flt.repo,
        outcome=flt.outcome,
        correlation_id=flt.correlation_id,
    )


class Printed:
    """The ids of the events printed lately (bounded): each event is printed once."""

    def __init__(self, ids: Sequence[str] = ()) -> None:
        self._order: deque[str] = deque()
        self._ids: set[str] = set()
        for event_id in ids:
            self.add(event_id)

    def add(self, event_id: str) -> None:
        """Remember ``event_id`` (forgetting the oldest past :data:`PRINTED_IDS`)."""
        if event_id in self._ids:
            return
        self._order.append(event_id)
        self._ids.add(event_id)
        while len(self._order) > PRINTED_IDS:
            self._ids.discard(self._order.popleft())

    def fresh(self, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """``events`` not printed yet (now remembered as printed)."""
        out = [event for event in events if str(event.get("id")) not in self._ids]
        for event in out:
            self.add(str(event.get("id")))
        return out


def connect_live(settings: Settings, flt: EventFilter, err: TextIO | None) -> Feed | None:
    """Subscribe to the daemon's live feed, or None when no daemon answers (said on ``err``)."""
    from gitaudit import paths
    from gitaudit.daemon.subscribers import connect_feed

    feed, notes = connect_feed(
        paths.client_runtime_dirs(settings.runtime_dir),
        subscription_filter(flt),
        max(settings.socket_timeout, 1.0),
    )
    if err is not None:
        for note in notes:
            err.write(f"gitaudit: {note}; polling the store instead\n")
    return feed


def follow_feed(feed: Feed, printer: Printer, printed: Printed, heads: dict[str, int]) -> None:
    """Print the daemon's live events until it hangs up (returns) or Ctrl-C; ``heads`` keeps
    the last position of every chain printed."""
    while (message := feed.next_message()) is not None:
        kind = message.get("type")
        if kind == "dropped":
            printer.dropped(int(message.get("count", 0)))
        elif kind == "event" and isinstance(message.get("event"), dict):
            event = message["event"]
            chain, seq = event.get("chain_id"), event.get("seq")
            if isinstance(chain, str) and isinstance(seq, int):
                heads[chain] = max(heads.get(chain, seq), seq)
            printer.emit(printed.fresh([event]))


def follow_live(
    settings: Settings,
    flt: EventFilter,
    feed: Feed,
    printer: Printer,
    printed: Printed,
    heads: dict[str, int],
    *,
    ingest_spool: bool,
) -> None:
    """Follow the daemon's feed; while the daemon is away, the store (until Ctrl-C)."""
    while True:
        try:
            follow_feed(feed, printer, printed, heads)
        finally:
            feed.close()
        printer.err.write(
            f"gitaudit: the daemon closed the live feed on {feed.path} (stopped or "
            "restarted?); following the store until it is back\n"
        )
        feed = poll_until_live(settings, flt, printer, printed, heads, ingest_spool=ingest_spool)
        printer.err.write("gitaudit: the daemon is back; following its live feed again\n")


def poll_until_live(
    settings: Settings,
    flt: EventFilter,
    printer: Printer,
    printed: Printed,
    heads: dict[str, int],
    *,
    ingest_spool: bool,
) -> Feed:
    """Print what the store records after ``heads`` until the daemon's feed answers again."""
    store, _ = open_store(settings, ingest_first=False)
    with store:
        cursor = StoreCursor(dict(heads), set())
        while True:
            printer.emit(printed.fresh(poll_once(settings, store, flt, cursor, ingest_spool)))
            feed = connect_live(settings, flt, None)
            if feed is not None:
                # what was committed before the subscription took effect; the feed has the rest
                printer.emit(printed.fresh(cursor.advance(store, flt)))
                heads.update(cursor.heads)
                return feed
            time.sleep(POLL_INTERVAL)


@dataclasses.dataclass
class StoreCursor:
    """Where a polling tail is in the store: the last seq of every chain it has passed.

    ``seen`` holds the ids of the previous poll's results: an event committed
    between reading the chain heads and querying comes back once more and is
    skipped then.
    """

    heads: dict[str, int]
    seen: set[str]

    def advance(self, store: Store, flt: EventFilter) -> list[dict[str, Any]]:
        """Events matching ``flt`` recorded since the last call, oldest first."""
        heads = store.heads()
        after = tuple(sorted(self.heads.items()))
        rows = store.query(dataclasses.replace(flt, after=after, limit=None))
        fresh = [row for row in rows if row.get("id") not in self.seen]
        for row in rows:
            chain, seq = row.get("chain_id"), row.get("seq")
            if isinstance(chain, str) and isinstance(seq, int):
                heads[chain] = max(heads.get(chain, seq), seq)
        self.heads = heads
        self.seen = {str(row.get("id")) for row in rows}
        return fresh


def follow_store(
    settings: Settings,
    store: Store,
    flt: EventFilter,
    cursor: StoreCursor,
    printer: Printer,
    *,
    ingest_spool: bool,
) -> None:
    """Poll the store (ingesting the spool first) until Ctrl-C."""
    while True:
        fresh = poll_once(settings, store, flt, cursor, ingest_spool)
        if fresh:
            printer.emit(fresh)
        time.sleep(POLL_INTERVAL)


def poll_once(
    settings: Settings, store: Store, flt: EventFilter, cursor: StoreCursor, ingest_spool: bool
) -> list[dict[str, Any]]:
    """Ingest the spool (if asked), then the events recorded since the cursor."""
    from gitaudit.store import ingest

    if ingest_spool:
        warn_ingest_problems(ingest(settings, store))
    return cursor.advance(store, flt)


def _run(flt: EventFilter, printer: Printer, *, follow: bool, ingest_spool: bool) -> None:
    settings = load_settings()
    feed = connect_live(settings, flt, printer.err) if follow else None  # before the query: no gap
    try:
        store, _ = open_store(settings, ingest_first=ingest_spool)
        ingest_spool = ingest_spool and not store.read_only  # an archived copy: read only
        with store:
            heads = store.heads() if follow else {}
            recent = store.query(flt)
            printer.emit(recent)
            if follow and feed is None:
                cursor = StoreCursor(heads, {str(event.get("id")) for event in recent})
                follow_store(settings, store, flt, cursor, printer, ingest_spool=ingest_spool)
        if feed is not None:
            printed = Printed([str(event.get("id")) for event in recent])
            follow_live(settings, flt, feed, printer, printed, heads, ingest_spool=ingest_spool)
    finally:
        if feed is not None:
            feed.close()


def tail_command(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events as they are recorded.")
    ] = False,
    since: SinceOption = None,
    op: OpOption = None,
    actor: ActorOption = None,
    repo: RepoOption = None,
    outcome: OutcomeOption = None,
    correlation_id: CorrelationOption = None,
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="Recent events shown first.")] = 20,
    fmt: FormatOption = OutputFormat.table,
    no_ingest: NoIngestOption = False,
) -> None:
    """Show the most recent events; with -f, follow new ones until Ctrl-C."""
    flt = event_filter(
        since=since,
        op=op,
        actor=actor,
        repo=repo,
        outcome=outcome,
        correlation_id=correlation_id,
        limit=limit,
    )
    printer = Printer(fmt, follow=follow, out=sys.stdout, err=sys.stderr)
    try:
        _run(flt, printer, follow=follow, ingest_spool=not no_ingest)
    except KeyboardInterrupt:
        return  # Ctrl-C is how -f ends: a clean exit
    except BrokenPipeError:  # `gitaudit tail -f | head`: the reader is gone
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
