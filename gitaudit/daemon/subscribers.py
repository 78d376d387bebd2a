"""Live subscribers: `gitaudit tail -f` clients and the forwarding sinks.

The :class:`Hub` is the daemon's :class:`~gitaudit.daemon.api.Publisher`: the
batch writer hands it every batch right after the store committed it, and the
hub copies each event into the bounded queue of every subscriber whose filter
matches. ``publish`` is O(subscribers) per event and never waits: a full queue
loses the event *for that subscriber only*, counts it
(``gitaudit_subscriber_drops{subscriber=...}``) and tells the subscriber where
the gap is.

Protocol on ``subscribe.sock`` (NDJSON, one JSON object per line, UTF-8)::

    client -> {"type": "subscribe", "filter": {"operations": ["git.*"], "actor": "alice",
               "repo": null, "outcome": null, "correlation_id": null}}
    daemon -> {"type": "subscribed", "queue_size": 1000}
    daemon -> {"type": "event", "event": {...}}          one per committed, matching event
    daemon -> {"type": "dropped", "count": 12}           12 events were lost right here
    daemon -> {"type": "error", "error": "..."}          bad subscribe line; then it hangs up

Filter keys are optional and mean what ``gitaudit log``'s options mean
(fnmatch globs, case-sensitive; ``actor`` matches the OS user, git name or git
email; ``repo`` the repository name or path). Unknown keys are an error. The
subscribe line must arrive within :data:`SUBSCRIBE_TIMEOUT` seconds and be at
most :data:`MAX_SUBSCRIBE_BYTES` long. Anything the client sends afterwards is
read and ignored; the subscription ends when either side closes.

An event that cannot be encoded for a subscriber is skipped like in the sinks
(``gitaudit_sink_skipped{sink=<subscriber>}``, a log line) and the client gets
``{"type": "dropped", "count": 1}`` in its place: the stream goes on. A string
with a lone surrogate is not such an event: it is sent as a ``\\uXXXX`` escape.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Final

import structlog

from gitaudit.errors import GitauditError

if TYPE_CHECKING:
    from gitaudit.config import Settings
    from gitaudit.daemon.metrics import Metrics

log = structlog.get_logger("gitaudit.subscribers")

SUBSCRIBE_TIMEOUT: Final = 10.0
MAX_SUBSCRIBE_BYTES: Final = 64 * 1024
_WRITE_BATCH: Final = 256  # deliveries written before one drain()

# --- filters (pure) -------------------------------------------------------------------------


class SubscribeError(ValueError):
    """A subscribe line or filter is unusable; the message is meant for the client."""


class FeedError(GitauditError):
    """The daemon's live feed refused us or sent something unreadable."""


@dataclass(frozen=True)
class SubscriptionFilter:
    """Which events a subscriber wants; empty fields do not filter (like ``EventFilter``)."""

    operations: tuple[str, ...] = ()
    actor: str | None = None
    repo: str | None = None
    outcome: str | None = None
    correlation_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``filter`` object of a subscribe line."""
        return {
            "operations": list(self.operations),
            "actor": self.actor,
            "repo": self.repo,
            "outcome": self.outcome,
            "correlation_id": self.correlation_id,
        }

    @classmethod
    def from_json(cls, raw: object) -> SubscriptionFilter:
        """Read a subscribe line's ``filter``; raises SubscribeError naming the bad key."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise SubscribeError("filter must be an object")
        unknown = set(raw) - {"operations", "actor", "repo", "outcome", "correlation_id"}
        if unknown:
            raise SubscribeError(f"unknown filter key(s): {', '.join(sorted(unknown))}")
        operations = raw.get("operations") or []
        if not isinstance(operations, list) or not all(isinstance(op, str) for op in operations):
            raise SubscribeError("filter.operations must be a list of strings")
        texts = {key: raw.get(key) for key in ("actor", "repo", "outcome", "correlation_id")}
        for key, value in texts.items():
            if value is not None and not isinstance(value, str):
                raise SubscribeError(f"filter.{key} must be a string or null")
        return cls(operations=tuple(operations), **texts)


def _field(event: Mapping[str, Any], group: str, key: str) -> Any:
    inner = event.get(group)
    return inner.get(key) if isinstance(inner, dict) else None


def _any_glob(values: Iterable[Any], pattern: str) -> bool:
    return any(isinstance(value, str) and fnmatchcase(value, pattern) for value in values)


def matches(event: Mapping[str, Any], flt: SubscriptionFilter) -> bool:
    """Whether ``event`` passes ``flt`` (the semantics of ``gitaudit log``'s filters)."""
    operation = event.get("operation")
    if flt.operations and not (
        isinstance(operation, str) and any(fnmatchcase(operation, op) for op in flt.operations)
    ):
        return False
    if flt.outcome is not None and event.get("outcome") != flt.outcome:
        return False
    if flt.correlation_id is not None and event.get("correlation_id") != flt.correlation_id:
        return False
    if flt.actor is not None:
        actors = (_field(event, "actor", key) for key in ("user", "git_name", "git_email"))
        if not _any_glob(actors, flt.actor):
            return False
    if flt.repo is not None:
        repos = (_field(event, "repo", key) for key in ("name", "path"))
        if not _any_glob(repos, flt.repo):
            return False
    return True


# --- one subscriber's queue ------------------------------------------------------------------


@dataclass(frozen=True)
class Dropped:
    """``count`` events were lost at this point of a subscriber's stream."""

    count: int


Delivery = dict[str, Any] | Dropped


class Subscription:
    """A bounded queue of events for one subscriber.

    ``maxsize`` bounds the queued *events*. When it is full, ``drop_oldest``
    False (live clients) loses the new event and records a :class:`Dropped`
    marker at the gap; ``drop_oldest`` True (sinks: the newest data matters
    most) discards the oldest queued event instead. Either way ``on_drop`` is
    called with the number lost. Only the hub's event loop touches it.
    """

    def __init__(
        self,
        name: str,
        flt: SubscriptionFilter,
        maxsize: int,
        on_drop: Callable[[int], None],
        *,
        drop_oldest: bool = False,
    ) -> None:
        self.name = name
        self.filter = flt
        self.maxsize = maxsize
        self._on_drop = on_drop
        self._drop_oldest = drop_oldest
        self._items: deque[Delivery] = deque()
        self._events = 0
        self._gap = 0  # events lost since the last queued item (drop-newest mode)
        self._wakeup = asyncio.Event()
        self.closed = False

    def __len__(self) -> int:
        """Events waiting (notices not counted)."""
        return self._events

    def offer(self, event: dict[str, Any]) -> None:
        """Queue ``event`` if it matches; never blocks."""
        if self.closed or not matches(event, self.filter):
            return
        if self._events >= self.maxsize:
            if not self._drop_oldest:
                self._gap += 1
                self._on_drop(1)
                return
            self._items.popleft()
            self._events -= 1
            self._on_drop(1)
        if self._gap:
            self._items.append(Dropped(self._gap))
            self._gap = 0
        self._items.append(event)
        self._events += 1
        self._wakeup.set()

    def take(self, limit: int) -> list[Delivery]:
        """Up to ``limit`` queued deliveries, without waiting.

        A gap at the very end (the subscriber caught up with a full queue's
        worth of losses behind it) is reported as soon as the queue is empty.
        """
        out: list[Delivery] = []
        while self._items and len(out) < limit:
            item = self._items.popleft()
            if not isinstance(item, Dropped):
                self._events -= 1
            out.append(item)
        if not self._items and self._gap and len(out) < limit:
            out.append(Dropped(self._gap))
            self._gap = 0
        return out

    async def wait(self) -> bool:
        """Wait until something can be taken; False once the subscription is closed."""
        while not self._items and not self._gap:
            if self.closed:
                return False
            self._wakeup.clear()
            await self._wakeup.wait()
        return True

    async def get(self, limit: int = _WRITE_BATCH) -> list[Delivery]:
        """Wait for and take up to ``limit`` deliveries; an empty list means closed."""
        if not await self.wait():
            return []
        return self.take(limit)

    def close(self) -> None:
        """End the subscription: waiters wake up and see it closed."""
        self.closed = True
        self._wakeup.set()


# --- the hub ---------------------------------------------------------------------------------


def encode(message: Mapping[str, Any]) -> bytes:
    """One NDJSON protocol line (``\\uXXXX`` escapes if a string holds a lone surrogate)."""
    try:
        return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    except UnicodeEncodeError:
        return json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"


def delivery_message(item: Delivery) -> dict[str, Any]:
    """The protocol message for one queued delivery."""
    if isinstance(item, Dropped):
        return {"type": "dropped", "count": item.count}
    return {"type": "event", "event": item}


def parse_subscribe(line: bytes) -> SubscriptionFilter:
    """Read a subscribe line; raises SubscribeError with a message for the client."""
    if len(line) > MAX_SUBSCRIBE_BYTES:
        raise SubscribeError(f"subscribe line longer than {MAX_SUBSCRIBE_BYTES} bytes")
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: also a 5,000-digit number
        raise SubscribeError(f"subscribe line is not JSON: {exc}") from None
    except RecursionError:
        raise SubscribeError("subscribe line is not JSON: nested too deeply") from None
    if not isinstance(message, dict) or message.get("type") != "subscribe":
        raise SubscribeError('expected {"type": "subscribe", "filter": {...}}')
    return SubscriptionFilter.from_json(message.get("filter"))


class Hub:
    """Fans committed events out to live subscribers; the daemon's Publisher."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._queue_size = settings.subscriber_queue_size
        self._metrics = metrics
        self._subscriptions: list[Subscription] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._closed = False

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """The current subscribers (closed ones are left out)."""
        return tuple(sub for sub in self._subscriptions if not sub.closed)

    def subscribe(
        self,
        name: str,
        flt: SubscriptionFilter | None = None,
        *,
        maxsize: int | None = None,
        drop_oldest: bool = False,
    ) -> Subscription:
        """Add a subscriber (call from the event loop); drops are counted under ``name``."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
        counter = self._metrics.subscriber_drops.labels(subscriber=name)
        subscription = Subscription(
            name,
            flt or SubscriptionFilter(),
            maxsize or self._queue_size,
            counter.inc,
            drop_oldest=drop_oldest,
        )
        if self._closed:
            subscription.close()
        else:
            self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Remove a subscriber and close its queue."""
        subscription.close()
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(subscription)

    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        """Offer committed events to every subscriber; never blocks or raises.

        Safe to call from another thread: the work is then handed to the loop.
        """
        if not self._subscriptions or not events:
            return
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            with contextlib.suppress(RuntimeError):  # loop already closed: nobody listens
                loop.call_soon_threadsafe(self._fan_out, list(events))
            return
        self._fan_out(events)

    def _fan_out(self, events: Sequence[dict[str, Any]]) -> None:
        subscriptions = self._subscriptions
        if any(sub.closed for sub in subscriptions):  # closed by their owner (a sink)
            subscriptions = self._subscriptions = [sub for sub in subscriptions if not sub.closed]
        for event in events:
            for subscription in subscriptions:
                subscription.offer(event)

    def close(self) -> None:
        """Close every subscription (daemon shutdown); ``serve`` calls then return."""
        self._closed = True
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions.clear()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Handle one connection on ``subscribe.sock`` until either side ends it."""
        try:
            flt = await self._handshake(reader, writer)
            if flt is None:
                return
            subscription = self.subscribe(_client_name(writer), flt)
            try:
                await _send(writer, [{"type": "subscribed", "queue_size": subscription.maxsize}])
                await _stream(subscription, reader, writer, self.lines)
            finally:
                self.unsubscribe(subscription)
        except (ConnectionError, OSError):
            pass  # the client went away: nothing to tell anyone
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def lines(self, subscription: Subscription, batch: Iterable[Delivery]) -> bytes:
        """The protocol lines of ``batch``; an event that cannot be encoded is counted,
        logged and sent as a one-event gap instead."""
        out = []
        for item in batch:
            try:
                out.append(encode(delivery_message(item)))
            except Exception:  # whatever it is, skip this one event (logged with its traceback)
                self._metrics.sink_skipped.labels(sink=subscription.name).inc()
                event_id = item.get("id") if isinstance(item, dict) else None
                log.exception("subscriber cannot be sent an event; skipped",
                              subscriber=subscription.name, id=str(event_id))
                out.append(encode(delivery_message(Dropped(1))))
        return b"".join(out)

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> SubscriptionFilter | None:
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), timeout=SUBSCRIBE_TIMEOUT)
            return parse_subscribe(line)
        except SubscribeError as exc:
            problem = str(exc)
        except TimeoutError:
            problem = f"no subscribe line within {SUBSCRIBE_TIMEOUT:g} s"
        except asyncio.LimitOverrunError:
            problem = f"subscribe line longer than {MAX_SUBSCRIBE_BYTES} bytes"
        except asyncio.IncompleteReadError:
            return None
        await _send(writer, [{"type": "error", "error": problem}])
        return None


def _client_name(writer: asyncio.StreamWriter) -> str:
    """Metric label of a socket subscriber: by uid, so the label set stays small."""
    from gitaudit.daemon.api import Peer

    sock = writer.get_extra_info("socket")
    try:
        return f"socket:uid={Peer.of(sock).uid}"
    except (OSError, AttributeError, TypeError):
        return "socket"


async def _send(writer: asyncio.StreamWriter, messages: Iterable[Mapping[str, Any]]) -> None:
    writer.write(b"".join(encode(message) for message in messages))
    await writer.drain()


async def _stream(
    subscription: Subscription,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    lines: Callable[[Subscription, Iterable[Delivery]], bytes],
) -> None:
    """Write deliveries until the hub closes the subscription or the client hangs up."""
    hangup = asyncio.ensure_future(_until_eof(reader))
    try:
        while not hangup.done():
            batch_task = asyncio.ensure_future(subscription.get())
            await asyncio.wait({batch_task, hangup}, return_when=asyncio.FIRST_COMPLETED)
            if not batch_task.done():
                batch_task.cancel()
                return
            batch = batch_task.result()
            if not batch:
                return
            writer.write(lines(subscription, batch))
            await writer.drain()
    finally:
        hangup.cancel()


async def _until_eof(reader: asyncio.StreamReader) -> None:
    """Read and discard whatever the client sends until it closes its side."""
    with contextlib.suppress(ConnectionError, OSError):
        while await reader.read(65536):
            pass


# --- the client side (`gitaudit tail -f`) ----------------------------------------------------


class Feed:
    """A connected, subscribed client of ``subscribe.sock`` (blocking, for the CLI)."""

    def __init__(self, sock: socket.socket, path: str) -> None:
        self.path = path
        self._sock = sock
        self._reader = sock.makefile("rb")

    @classmethod
    def open(cls, path: str, flt: SubscriptionFilter, timeout: float) -> Feed:
        """Connect and subscribe; raises OSError (no daemon) or FeedError (refused)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(encode({"type": "subscribe", "filter": flt.to_json()}))
            feed = cls(sock, path)
            answer = feed.next_message()
        except BaseException:
            sock.close()
            raise
        if answer is None or answer.get("type") != "subscribed":
            feed.close()
            problem = answer.get("error") if answer else "it hung up"
            raise FeedError(
                f"the daemon refused the subscription on {path}: {problem}",
                "check the filter options; see the daemon's log",
            )
        sock.settimeout(None)
        return feed

    def next_message(self) -> dict[str, Any] | None:
        """The next protocol message; None when the daemon closed the connection."""
        line = self._reader.readline()
        if not line:
            return None
        try:
            message = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FeedError(f"unreadable line from {self.path}: {exc}") from exc
        if not isinstance(message, dict):
            raise FeedError(f"unexpected message from {self.path}: {line[:200]!r}")
        return message

    def close(self) -> None:
        """Hang up."""
        self._reader.close()
        self._sock.close()


def connect_feed(
    runtime_dirs: Sequence[str], flt: SubscriptionFilter, timeout: float
) -> tuple[Feed | None, list[str]]:
    """Subscribe at the first ``subscribe.sock`` that answers.

    Returns the feed (None: no daemon) and notes on sockets that exist but
    could not be used (e.g. permission denied: not in the ``gitaudit`` group).
    """
    from gitaudit.paths import SUBSCRIBE_SOCKET

    notes: list[str] = []
    for directory in runtime_dirs:
        path = os.path.join(directory, SUBSCRIBE_SOCKET)
        if not os.path.exists(path):
            continue
        try:
            return Feed.open(path, flt, timeout), notes
        except PermissionError as exc:
            notes.append(f"cannot read the daemon's live feed {path}: {exc.strerror}")
        except OSError:
            continue  # a stale socket: nobody is listening
    return None, notes
