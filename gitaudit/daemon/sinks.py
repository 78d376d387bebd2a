"""Forwarding committed events to the observability stack: an HTTP sink and a syslog sink.

Each sink subscribes to the :class:`~gitaudit.daemon.subscribers.Hub` with a
queue of its own (``sink_backlog`` events, the oldest dropped and counted under
``gitaudit_subscriber_drops{subscriber="sink:<name>"}`` when it is full), so a
sink that is down never slows the store or the other subscribers. ``run()``
takes batches from that queue and delivers each one until it succeeds,
retrying connection errors, timeouts, HTTP 5xx and 429 with exponential
backoff and full jitter (``Retry-After`` honoured); receivers de-duplicate on
the event ``id``. At-least-once across restarts and full queues too: each
sink keeps the position in the daemon's chain it delivered up to
(:class:`SinkCursor`, a small file under ``<journal_dir>/sinks/``); after a
restart, or when its queue lost events (or another writer added to the chain),
it reads what it missed from the store (``chain_after``) before going on
with the live queue. Metrics:
``gitaudit_sink_backlog{sink}`` (queued plus in flight), ``gitaudit_sink_sent``,
``gitaudit_sink_errors``, ``gitaudit_sink_skipped``.

Each event is rendered for its sink once, when its batch is taken
(:meth:`QueueSink.render`). An event that cannot be rendered is skipped:
counted in ``gitaudit_sink_skipped{sink}``, logged with its id, and passed
over in the sink's position, so one odd event never stops a sink (nor,
being stored, stops it again after a restart). Rendering is made total for
what the store can hold: strings with lone surrogates (invalid bytes git
reported) become JSON ``\\uXXXX`` escapes, and U+FFFD in syslog parameters.

HTTP: ``POST <http_sink_url>`` with a JSON array of event objects
(``Content-Type: application/json``), which Fluent Bit's ``http`` input and
generic webhooks accept; any 2xx is success. The token in
``http_sink_token_file`` is sent as ``http_sink_token_header`` (``Bearer
<token>`` for ``Authorization``).

Syslog: RFC 5424 messages (see :func:`format_syslog`) over ``udp://host:port``
(RFC 5426, one message per datagram), ``tcp://host:port`` (RFC 6587
octet-counting framing) or ``unix:///dev/log`` (datagrams). Syslog has no
acknowledgements: a message is "delivered" once the kernel took it, so
messages in flight when a TCP receiver drops the connection, or datagrams a
receiver never reads, can be lost; the HTTP sink is the one to use when
every event must arrive. Facility
``authpriv`` by default (audit records belong with the access-restricted
authentication log); ``?facility=local0`` (any of local0..local7, authpriv,
auth, daemon, user) in the address chooses another.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import os
import random
import re
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import parse_qs, urlsplit

import httpx
import structlog

from gitaudit.errors import ConfigError

if TYPE_CHECKING:
    from gitaudit.config import Settings
    from gitaudit.daemon.metrics import Metrics
    from gitaudit.daemon.subscribers import Hub, Subscription

log = structlog.get_logger("gitaudit.sinks")

HTTP_BATCH: Final = 500  # events per POST
SYSLOG_BATCH: Final = 100  # messages taken from the queue at a time
BACKOFF_BASE: Final = 0.5  # seconds before the first retry (upper bound of the jitter)
BACKOFF_CAP: Final = 60.0  # longest wait between two attempts
RETRY_AFTER_CAP: Final = 300.0  # a server asking for more is asked again after this
CATCH_UP_RETRY: Final = 5.0  # seconds between attempts to read a store that failed
DRAIN_TIMEOUT: Final = 5.0  # seconds close() lets a sink deliver what it holds
HTTP_TIMEOUT: Final = 10.0


class Sink(Protocol):
    """A forwarding target the daemon runs: ``run()`` until ``close()``."""

    name: str

    async def run(self) -> None: ...

    async def close(self) -> None: ...


ChainReader = Callable[[str, int, int], Awaitable[list[dict[str, Any]]]]
"""``(chain_id, after_seq, limit)`` -> the next stored events of that chain, in order."""


class SinkCursor:
    """How far a sink got in its daemon's chain, kept on disk so a restart resumes there.

    A sink delivers the chain in order, so ``seq`` (the last event it
    delivered) says everything up to it went out. The file is replaced (write
    and rename) after every delivered batch; one that cannot be read or names
    another chain starts over from the live queue (logged).
    """

    def __init__(self, path: str, chain_id: str) -> None:
        self.path = path
        self.chain_id = chain_id
        self.seq: int | None = None
        self._warned = False

    def load(self) -> SinkCursor:
        """Read the file (a missing one: no position yet)."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                saved = json.load(handle)
        except FileNotFoundError:
            return self
        except (OSError, ValueError) as exc:
            log.warning("sink cursor unreadable, following live events only",
                        path=self.path, error=str(exc))
            return self
        seq = saved.get("seq") if isinstance(saved, dict) else None
        if isinstance(saved, dict) and saved.get("chain_id") == self.chain_id and (
            isinstance(seq, int) and seq >= 0
        ):
            self.seq = seq
        return self

    def _position(self, event: Mapping[str, Any]) -> int | None:
        seq = event.get("seq")
        return seq if event.get("chain_id") == self.chain_id and isinstance(seq, int) else None

    def delivered(self, event: Mapping[str, Any]) -> bool:
        """Whether ``event`` is at or before the position (already sent)."""
        seq = self._position(event)
        return seq is not None and self.seq is not None and seq <= self.seq

    def gap_before(self, events: Sequence[Mapping[str, Any]]) -> bool:
        """Whether ``events`` (not yet delivered, in order) skip a position of the chain."""
        expected = None if self.seq is None else self.seq + 1
        for event in events:
            seq = self._position(event)
            if seq is None:
                continue
            if expected is not None and seq != expected:
                return True
            expected = seq + 1
        return False

    def start_at(self, events: Sequence[Mapping[str, Any]]) -> None:
        """With no position yet, take the one just before the first of ``events`` (saved at
        once, so that what follows is sent after a restart even if none of it went out)."""
        if self.seq is not None:
            return
        first = next((seq for seq in map(self._position, events) if seq is not None), None)
        if first is not None:
            self.seq = first - 1
            self._save()

    def advance(self, delivered: Sequence[Mapping[str, Any]]) -> None:
        """Move past ``delivered`` and save the position."""
        seqs = [seq for seq in map(self._position, delivered) if seq is not None]
        if not seqs:
            return
        self.seq = max(seqs if self.seq is None else [self.seq, *seqs])
        self._save()

    def _save(self) -> None:
        folder = os.path.dirname(self.path)
        temporary = f"{self.path}.tmp"
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump({"chain_id": self.chain_id, "seq": self.seq}, handle)
            os.replace(temporary, self.path)
        except OSError as exc:
            if not self._warned:  # once: a restart then resends from the last saved position
                log.warning("cannot save the sink cursor", path=self.path, error=str(exc))
                self._warned = True


class RetryableError(Exception):
    """Delivery failed for a reason that may pass; ``after`` is the server's wish, if any."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


# --- pure helpers ----------------------------------------------------------------------------


def backoff_delay(attempt: int, rng: random.Random, base: float = BACKOFF_BASE) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): full jitter, capped."""
    ceiling = min(BACKOFF_CAP, base * (2 ** min(attempt, 30)))
    return rng.uniform(0, ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` (delay-seconds or an HTTP-date) as seconds, capped; None if unusable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), RETRY_AFTER_CAP)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def auth_header_value(header: str, token: str) -> str:
    """The header value carrying ``token``: ``Bearer <token>`` for Authorization, else raw."""
    return f"Bearer {token}" if header.lower() == "authorization" else token


def event_json(event: Mapping[str, Any]) -> bytes:
    """``event`` as compact UTF-8 JSON; a string with a lone surrogate (not encodable as
    UTF-8) makes it ASCII JSON with ``\\uXXXX`` escapes instead, which decodes the same."""
    try:
        return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        return json.dumps(event, ensure_ascii=True, separators=(",", ":")).encode()


def json_array(items: Sequence[bytes]) -> bytes:
    """A JSON array of already encoded JSON values."""
    return b"[" + b",".join(items) + b"]"


def batch_body(events: Sequence[Mapping[str, Any]]) -> bytes:
    """A POST body: a JSON array of event objects (Fluent Bit: one record per element)."""
    return json_array([event_json(event) for event in events])


# --- the common loop -------------------------------------------------------------------------


class QueueSink(abc.ABC):
    """Takes batches from its hub subscription and delivers each until it succeeds.

    Subclasses implement :meth:`render` (one event's bytes on the wire) and
    :meth:`deliver`, which removes from the front of ``payloads`` what it
    delivered (a None is an event that could not be rendered: removed, not
    sent) and raises :class:`RetryableError` to be called again later with
    the rest.
    """

    name = "sink"
    batch_size = HTTP_BATCH

    def __init__(
        self,
        subscription: Subscription,
        metrics: Metrics,
        *,
        rng: random.Random | None = None,
        backoff_base: float = BACKOFF_BASE,
    ) -> None:
        self._subscription = subscription
        self._metrics = metrics
        self._cursor: SinkCursor | None = None
        self._reader: ChainReader | None = None
        self._catching_up = False
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._backoff_base = backoff_base
        self._batch: list[dict[str, Any]] = []
        self._payloads: list[bytes | None] = []  # self._batch rendered, None: skipped
        self._stopping = asyncio.Event()
        self._finished = asyncio.Event()
        self._running = False

    def resume(self, cursor: SinkCursor, reader: ChainReader) -> QueueSink:
        """Keep this sink's position in ``cursor`` and catch up through ``reader`` (call
        before :meth:`run`); a saved position first sends what the store holds after it."""
        self._cursor = cursor
        self._reader = reader
        self._catching_up = cursor.seq is not None
        return self

    @property
    def backlog(self) -> int:
        """Events waiting for this sink: queued plus the batch in flight."""
        return len(self._subscription) + len(self._batch)

    @abc.abstractmethod
    def render(self, event: Mapping[str, Any]) -> bytes:
        """``event`` as this sink sends it (may raise: the event is then skipped)."""

    @abc.abstractmethod
    async def deliver(self, payloads: list[bytes | None]) -> None:
        """Deliver ``payloads`` (removing what went out, and the Nones); raise
        RetryableError to retry the rest."""

    def _take(self, events: list[dict[str, Any]]) -> None:
        """Make ``events`` the batch in hand, each rendered once; one that cannot be is
        counted, logged and kept as None (passed over in order, so the cursor moves on)."""
        self._batch = events
        self._payloads = []
        for event in events:
            try:
                payload: bytes | None = self.render(event)
            except Exception:  # whatever it is, skip this one event (logged with its traceback)
                payload = None
                self._metrics.sink_skipped.labels(sink=self.name).inc()
                log.exception("sink cannot format an event; skipped", sink=self.name,
                              id=str(event.get("id")), seq=event.get("seq"))
            self._payloads.append(payload)

    async def run(self) -> None:
        """Deliver until :meth:`close`; then try once more to empty the queue."""
        self._running = True
        try:
            while not self._stopping.is_set():
                if not self._batch and not await self._next_batch():
                    break
                await self._attempt_until_delivered()
            await self._final_flush()
        finally:
            self._update_gauge()
            self._finished.set()

    async def close(self) -> None:
        """Stop: what cannot be delivered within DRAIN_TIMEOUT waits for the next start
        (with a cursor), or is dropped and counted."""
        self._stopping.set()
        self._subscription.close()
        if self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), DRAIN_TIMEOUT)
        lost = self.backlog
        if lost and self._cursor is not None and self._cursor.seq is not None:
            log.info("sink stopped with undelivered events: sent after the next start",
                     sink=self.name, events=lost, after_seq=self._cursor.seq)
        elif lost:
            self._metrics.subscriber_drops.labels(subscriber=f"sink:{self.name}").inc(lost)
            log.warning("sink closed with undelivered events", sink=self.name, dropped=lost)
        await self.aclose()

    async def aclose(self) -> None:  # noqa: B027 - optional hook: most sinks hold nothing
        """Release connections (subclasses that hold any override this)."""

    async def _next_batch(self) -> bool:
        if self._catching_up:
            stored = await self._from_store()
            if stored:
                self._take(stored)
                self._update_gauge()
                return True
            if stored is not None:
                self._catching_up = False  # caught up: the live queue has the rest
            return not self._stopping.is_set()
        items = await self._subscription.get(self.batch_size)
        live = [item for item in items if isinstance(item, dict)]
        if self._cursor is not None:
            self._cursor.start_at(live)
            live = [event for event in live if not self._cursor.delivered(event)]
            if self._cursor.gap_before(live):
                # the queue was full and lost events, or another writer added to the
                # chain: the store has them all, in order
                self._catching_up = True
                live = []
        self._take(live)
        self._update_gauge()
        return bool(items)

    async def _from_store(self) -> list[dict[str, Any]] | None:
        """The next stored events after the cursor ([] when caught up, None if unreadable)."""
        cursor, reader = self._cursor, self._reader
        if cursor is None or reader is None:
            return []
        try:
            return await reader(cursor.chain_id, cursor.seq or 0, self.batch_size)
        except Exception as exc:  # noqa: BLE001 - any store trouble: wait and read again
            log.warning("sink cannot read the store to catch up, will retry",
                        sink=self.name, error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), CATCH_UP_RETRY)
            return None

    async def _attempt_until_delivered(self) -> None:
        attempt = 0
        while self._batch and not self._stopping.is_set():
            delivered, server_delay = await self._attempt()
            if delivered:
                return
            if server_delay is None:
                server_delay = backoff_delay(attempt, self._rng, self._backoff_base)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), server_delay)

    async def _attempt(self) -> tuple[bool, float | None]:
        """One delivery attempt of the batch in hand: (all of it delivered, server's delay)."""
        size = len(self._payloads)
        rendered = [payload is not None for payload in self._payloads]
        failure: RetryableError | None = None
        try:
            await self.deliver(self._payloads)
        except RetryableError as exc:
            failure = exc
        done = size - len(self._payloads)
        self._metrics.sink_sent.labels(sink=self.name).inc(sum(rendered[:done]))
        if self._cursor is not None:
            self._cursor.advance(self._batch[:done])
        self._batch = self._batch[done:]
        self._update_gauge()
        if failure is None:
            return True, None
        self._metrics.sink_errors.labels(sink=self.name).inc()
        log.warning("sink delivery failed, will retry", sink=self.name, error=str(failure))
        return False, failure.after

    async def _final_flush(self) -> None:
        """After close(): one attempt per batch for what is still here, no retries."""
        while True:
            if not self._batch:
                taken = self._subscription.take(self.batch_size)
                self._take([item for item in taken if isinstance(item, dict)])
            if not self._batch or not (await self._attempt())[0]:
                return

    def _update_gauge(self) -> None:
        self._metrics.sink_backlog.labels(sink=self.name).set(self.backlog)


# --- HTTP ------------------------------------------------------------------------------------


def read_token(path: str) -> str:
    """The sink token from its file (surrounding whitespace stripped); ConfigError if unusable."""
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read http_sink_token_file {path}: {exc}",
            "point GITAUDIT_HTTP_SINK_TOKEN_FILE at a readable file holding the token",
        ) from exc
    if not token:
        raise ConfigError(f"http_sink_token_file {path} is empty", "write the token into it")
    return token


OK, RETRY, DROP = "ok", "retry", "drop"


def classify_status(status: int) -> str:
    """What a sink response means: OK (2xx), RETRY (5xx, 408, 429, and 401/403: the
    token may be being rotated) or DROP (other 4xx: this batch will never be taken)."""
    if 200 <= status < 300:
        return OK
    if status >= 500 or status in {401, 403, 408, 429}:
        return RETRY
    return DROP


class HttpSink(QueueSink):
    """POSTs batches of events as a JSON array to ``url``."""

    name = "http"
    batch_size = HTTP_BATCH

    def __init__(
        self,
        url: str,
        subscription: Subscription,
        metrics: Metrics,
        *,
        token_header: str = "Authorization",  # noqa: S107 - a header name, not a secret
        token_file: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        backoff_base: float = BACKOFF_BASE,
    ) -> None:
        super().__init__(subscription, metrics, rng=rng, backoff_base=backoff_base)
        self.url = url
        self._token_header = token_header
        self._token_file = token_file
        self._token = read_token(token_file) if token_file else None
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=HTTP_TIMEOUT,
            headers={"Content-Type": "application/json", "User-Agent": "gitaudit"},
        )

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            return {}
        return {self._token_header: auth_header_value(self._token_header, self._token)}

    def render(self, event: Mapping[str, Any]) -> bytes:
        """One element of the posted JSON array."""
        return event_json(event)

    async def deliver(self, payloads: list[bytes | None]) -> None:
        """POST the batch; a receiver refusing it for good drops it (logged and counted)."""
        elements = [payload for payload in payloads if payload is not None]
        if not elements:
            payloads.clear()
            return
        try:
            response = await self._client.post(
                self.url, content=json_array(elements), headers=self._headers()
            )
        except httpx.TransportError as exc:  # connect, read, write, timeouts, protocol
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
        verdict = classify_status(response.status_code)
        if verdict == RETRY:
            if response.status_code in {401, 403} and self._token_file:
                with contextlib.suppress(ConfigError):  # keep the old one if unreadable now
                    self._token = read_token(self._token_file)  # it may have been rotated
            raise RetryableError(
                f"HTTP {response.status_code} from the sink",
                parse_retry_after(response.headers.get("retry-after")),
            )
        if verdict == DROP:
            self._metrics.sink_errors.labels(sink=self.name).inc()
            self._metrics.subscriber_drops.labels(subscriber=f"sink:{self.name}").inc(
                len(elements)
            )
            log.error("sink refused a batch; dropped", sink=self.name, status=response.status_code)
        payloads.clear()

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


# --- syslog (RFC 5424) -----------------------------------------------------------------------

FACILITIES: Final = {
    "user": 1, "daemon": 3, "auth": 4, "authpriv": 10,
    "local0": 16, "local1": 17, "local2": 18, "local3": 19,
    "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}  # fmt: skip
SEVERITIES: Final = {"high": 4, "medium": 5, "low": 6}  # warning, notice, informational
SD_ID: Final = "gitaudit@32473"  # 32473: the private enterprise number for examples (RFC 5612)
MAX_DATAGRAM: Final = 65000  # below the 65507-byte UDP payload limit


_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def escape_param(value: str) -> str:
    r"""An SD-PARAM value: ``"``, ``\`` and ``]`` escaped (RFC 5424 section 6.3.3), and
    lone surrogates, which UTF-8 cannot hold, replaced by U+FFFD."""
    text = _SURROGATE.sub("\ufffd", value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def sd_name(name: str) -> str:
    """An SD-NAME (SD-ID, PARAM-NAME): printable US-ASCII but ``=``, space, ``]`` and
    ``"``, at most 32 characters (RFC 5424 section 6.3)."""
    return "".join(ch for ch in name if 33 <= ord(ch) <= 126 and ch not in '= ]"')[:32]


def _header_field(value: object, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, at most ``limit`` long, or ``-``."""
    text = "".join(ch for ch in str(value or "") if 33 <= ord(ch) <= 126)[:limit]
    return text or "-"


def syslog_timestamp(value: object) -> str:
    """An RFC 3339 timestamp as RFC 5424 allows it (UTC, at most 6 fraction digits) or ``-``."""
    if not isinstance(value, str):
        return "-"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _group(event: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = event.get(key)
    return value if isinstance(value, dict) else {}


def structured_data(event: Mapping[str, Any]) -> str:
    """``[gitaudit@32473 op=".." outcome=".." actor=".." repo=".." id=".."]`` (nulls left out)."""
    actor, repo = _group(event, "actor"), _group(event, "repo")
    params = {
        "op": event.get("operation"),
        "outcome": event.get("outcome"),
        "actor": actor.get("user") or actor.get("git_email"),
        "repo": repo.get("name") or repo.get("path"),
        "id": event.get("id"),
    }
    parts = [
        f'{sd_name(key)}="{escape_param(str(value))}"' for key, value in params.items() if value
    ]
    return "[" + " ".join([sd_name(SD_ID), *parts]) + "]"


def format_syslog(
    event: Mapping[str, Any], *, hostname: str, procid: int | str, facility: int
) -> bytes:
    """One RFC 5424 message::

        <PRI>1 TIMESTAMP HOSTNAME gitaudit PROCID MSGID [gitaudit@32473 ...] JSON

    PRI = facility * 8 + severity (high: warning, medium: notice, low: info);
    MSGID is the operation; the SD-PARAM values are UTF-8 (as RFC 5424 has them);
    MSG is the event as ASCII-only JSON (non-ASCII as ``\\uXXXX``): MSG-ANY, which
    takes no BOM.
    """
    severity = SEVERITIES.get(str(event.get("severity")), 6)
    header = " ".join(
        (
            f"<{facility * 8 + severity}>1",
            syslog_timestamp(event.get("occurred_at")),
            _header_field(hostname, 255),
            "gitaudit",
            _header_field(procid, 128),
            _header_field(event.get("operation"), 32),
        )
    )
    body = json.dumps(event, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    return f"{header} {structured_data(event)} {body}".encode()


def fit_datagram(event: Mapping[str, Any], render: Callable[[Mapping[str, Any]], bytes]) -> bytes:
    """``render(event)``, with ``details`` replaced by a marker if it would not fit a datagram."""
    message = render(event)
    if len(message) <= MAX_DATAGRAM:
        return message
    slim = {**event, "details": {"truncated": True, "reason": "too large for a syslog datagram"}}
    return render(slim)[:MAX_DATAGRAM]


def frame_octet_counted(message: bytes) -> bytes:
    """RFC 6587 octet-counting framing for syslog over TCP: ``LEN SP MSG``."""
    return str(len(message)).encode() + b" " + message


@dataclass(frozen=True)
class SyslogTarget:
    """A parsed ``syslog_address``."""

    transport: str  # udp, tcp, unix
    host: str
    port: int
    path: str
    facility: int


def parse_syslog_address(address: str) -> SyslogTarget:
    """Read ``udp://host:port``, ``tcp://host:port`` or ``unix:///dev/log`` (+ ``?facility=``)."""
    parts = urlsplit(address)
    hint = (
        "use udp://host:514, tcp://host:601 (an IPv6 host in brackets: udp://[::1]:514) or "
        "unix:///dev/log, optionally ?facility=local0"
    )
    options = parse_qs(parts.query)
    name = (options.get("facility") or ["authpriv"])[0].lower()
    if name not in FACILITIES:
        raise ConfigError(f"unknown syslog facility {name!r} in {address!r}", hint)
    if parts.scheme == "unix":
        if not parts.path:
            raise ConfigError(f"syslog_address {address!r} names no socket path", hint)
        return SyslogTarget("unix", "", 0, parts.path, FACILITIES[name])
    if parts.scheme not in {"udp", "tcp"}:
        raise ConfigError(f"unsupported syslog_address {address!r}", hint)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ConfigError(f"syslog_address {address!r} needs a host and a port", hint)
    return SyslogTarget(parts.scheme, parts.hostname, port, "", FACILITIES[name])


class SyslogSink(QueueSink):
    """Sends each event as one RFC 5424 message to a syslog receiver."""

    name = "syslog"
    batch_size = SYSLOG_BATCH

    def __init__(
        self,
        target: SyslogTarget,
        subscription: Subscription,
        metrics: Metrics,
        *,
        hostname: str | None = None,
        rng: random.Random | None = None,
        backoff_base: float = BACKOFF_BASE,
    ) -> None:
        super().__init__(subscription, metrics, rng=rng, backoff_base=backoff_base)
        self.target = target
        self._hostname = hostname or socket.gethostname()
        self._procid = os.getpid()
        self._dgram: socket.socket | None = None
        self._stream: asyncio.StreamWriter | None = None
        self._stream_reader: asyncio.StreamReader | None = None

    def message(self, event: Mapping[str, Any]) -> bytes:
        """The RFC 5424 message of ``event`` for this sink."""
        return format_syslog(
            event, hostname=self._hostname, procid=self._procid, facility=self.target.facility
        )

    def render(self, event: Mapping[str, Any]) -> bytes:
        """The message as sent: octet-counted over TCP, else fitted to one datagram."""
        if self.target.transport == "tcp":
            return frame_octet_counted(self.message(event))
        return fit_datagram(event, self.message)

    async def deliver(self, payloads: list[bytes | None]) -> None:
        """Send the messages in order, removing each once it is out."""
        try:
            if self.target.transport == "tcp":
                await self._send_tcp(payloads)
            else:
                self._send_datagrams(payloads)
        except OSError as exc:
            await self.aclose()  # reconnect on the next attempt
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc

    async def _tcp_stream(self) -> asyncio.StreamWriter:
        """The open connection; a new one if the receiver hung up (its FIN seen as EOF)."""
        if self._stream is not None and not self._stream.is_closing():
            if self._stream_reader is None or not self._stream_reader.at_eof():
                return self._stream
            await self.aclose()
        reader, stream = await asyncio.wait_for(
            asyncio.open_connection(self.target.host, self.target.port), HTTP_TIMEOUT
        )
        self._stream_reader, self._stream = reader, stream
        return stream

    async def _send_tcp(self, payloads: list[bytes | None]) -> None:
        stream = await self._tcp_stream()
        while payloads:
            if payloads[0] is not None:
                stream.write(payloads[0])
                await asyncio.wait_for(stream.drain(), HTTP_TIMEOUT)
            payloads.pop(0)

    def _datagram_socket(self) -> socket.socket:
        if self._dgram is None:
            if self.target.transport == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.connect(self.target.path)
            else:
                info = socket.getaddrinfo(
                    self.target.host, self.target.port, type=socket.SOCK_DGRAM
                )[0]
                sock = socket.socket(info[0], socket.SOCK_DGRAM)
                sock.connect(info[4])
            sock.setblocking(False)
            self._dgram = sock
        return self._dgram

    def _send_datagrams(self, payloads: list[bytes | None]) -> None:
        sock = self._datagram_socket()
        while payloads:
            if payloads[0] is not None:
                sock.send(payloads[0])  # BlockingIOError: retried later
            payloads.pop(0)

    async def aclose(self) -> None:
        """Close the connection or socket (reopened on the next delivery)."""
        if self._dgram is not None:
            self._dgram.close()
            self._dgram = None
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.close()
            with contextlib.suppress(OSError):
                await stream.wait_closed()


# --- wiring ----------------------------------------------------------------------------------


def check_sink_settings(settings: Settings) -> SyslogTarget | None:
    """Raise ConfigError if the sink settings cannot work (before anything subscribes);
    the syslog target, if one is configured."""
    target = parse_syslog_address(settings.syslog_address) if settings.syslog_address else None
    if settings.http_sink_url and settings.http_sink_token_file:
        read_token(settings.http_sink_token_file)
    return target


def build_sinks(
    settings: Settings,
    hub: Hub,
    metrics: Metrics,
    *,
    http_transport: httpx.AsyncBaseTransport | None = None,
    backoff_base: float = BACKOFF_BASE,
    reader: ChainReader | None = None,
    cursor_dir: str | None = None,
) -> list[Sink]:
    """The sinks the settings ask for, each already subscribed to ``hub`` (call in the loop).

    With ``reader`` and ``cursor_dir`` each sink keeps its position in
    ``<cursor_dir>/<name>.json`` and catches up from the store (see
    :class:`SinkCursor`). ``http_transport`` and ``backoff_base`` exist for
    tests (no network, quick retries).
    """

    def resume(sink: QueueSink) -> QueueSink:
        if reader is None or cursor_dir is None:
            return sink
        path = os.path.join(cursor_dir, f"{sink.name}.json")
        return sink.resume(SinkCursor(path, settings.effective_chain_id).load(), reader)

    target = check_sink_settings(settings)
    sinks: list[Sink] = []
    if settings.http_sink_url:
        http = HttpSink(
            settings.http_sink_url,
            _subscribe(hub, settings, "http"),
            metrics,
            token_header=settings.http_sink_token_header,
            token_file=settings.http_sink_token_file,
            transport=http_transport,
            backoff_base=backoff_base,
        )
        sinks.append(resume(http))
    if target is not None:
        subscription = _subscribe(hub, settings, "syslog")
        sinks.append(resume(SyslogSink(target, subscription, metrics, backoff_base=backoff_base)))
    return sinks


class StoreChainReader:
    """The sinks' :data:`ChainReader`: reads the store from the daemon's own process.

    The store is opened on the first read (in a worker thread, like every
    read), not at start: most runs never need to catch up.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._store: Any = None
        self._lock = threading.Lock()

    async def __call__(self, chain_id: str, seq: int, limit: int) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._read, chain_id, seq, limit)

    def _read(self, chain_id: str, seq: int, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            if self._store is None:
                from gitaudit.store import Store  # only when catching up: SQLAlchemy's cost

                self._store = Store.open(
                    self._settings.effective_database_url,
                    chain_id=self._settings.effective_chain_id,
                    migrate=False,
                )
            result: list[dict[str, Any]] = self._store.chain_after(chain_id, seq, limit)
            return result

    def close(self) -> None:
        """Release the store's connections (if it was opened)."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def _subscribe(hub: Hub, settings: Settings, name: str) -> Subscription:
    return hub.subscribe(f"sink:{name}", maxsize=settings.sink_backlog, drop_oldest=True)
