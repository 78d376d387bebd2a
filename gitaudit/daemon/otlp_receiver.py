"""The OTLP/HTTP logs receiver: Claude Code's telemetry, into the same intake as everything else.

Claude Code exports its events as OpenTelemetry log records
(``OTEL_LOGS_EXPORTER=otlp``, ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=
http://127.0.0.1:PORT/v1/logs``). With ``otlp_address`` set, the daemon
listens there (loopback only unless ``otlp_allow_remote``) and answers:

- ``POST /v1/logs`` with ``Content-Type: application/x-protobuf`` or
  ``application/json`` (optionally ``Content-Encoding: gzip``): the records
  are decoded and mapped (:mod:`gitaudit.claude.otel_map`), the events go
  through :meth:`gitaudit.daemon.api.Intake.accept` (policy, sanitizer, size
  limits, validation, journal) and the answer is ``200`` once the journal has
  them (before the store commits). Records that are not mapped (prompts and
  tool results, which the hooks record; unknown events) are counted per event
  name and reported as rejected in the OTLP ``partial_success``, as are events
  the intake refused as invalid; an exporter does not retry those.
- ``503`` with ``Retry-After`` when the journal cannot take the events (or the
  store is down with ``on_store_failure = reject``): the exporter retries the
  batch later, and as event ids are derived from the records, the retry adds
  nothing twice.
- ``413`` past ``otlp_max_bytes`` (announced ``Content-Length``, streamed
  chunks, or gzip output: decompression stops there, a bomb never inflates),
  ``400`` for a body that is not an ``ExportLogsServiceRequest``, ``415`` for
  another content type or encoding, ``404`` for another path, ``405`` for
  another method. Error bodies are a ``google.rpc.Status`` in the request's
  format (protobuf or JSON), else plain text.

HTTP/1.1 is parsed by ``h11`` (already in the dependency set through httpx,
sans-I/O, so it runs on the daemon's asyncio streams): Claude Code's exporter
sends chunked bodies on kept-alive connections, which the standard library's
``http.server`` (threads, no asyncio) and a hand-written parser would handle
less well. Connections idle longer than :data:`IDLE_TIMEOUT` are closed.

**Who sent it.** Loopback TCP has no ``SO_PEERCRED``; the kernel still knows
who owns the client's socket: :func:`tcp_peer_uid` finds it in
``/proc/net/tcp{,6}`` (the row whose local end is the client's address and
remote end ours; its ``uid`` column). That uid is stamped as the verified
actor, as for the event socket; when it cannot be found the events are
recorded unverified. The Claude Code account the records name stays a claim
(``details.claude_user``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any, Final

import h11

from gitaudit.claude import otel_map
from gitaudit.config import Settings
from gitaudit.daemon import api
from gitaudit.daemon.api import Peer
from gitaudit.daemon.logging import get_logger
from gitaudit.daemon.metrics import Metrics, parse_host_port

SOURCE: Final = "otlp"  # the intake's label for metrics (events carry source claude_code)
LOGS_PATH: Final = "/v1/logs"
PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"
READ_CHUNK: Final = 64 * 1024
HEADER_MAX_BYTES: Final = 64 * 1024
IDLE_TIMEOUT: Final = 300.0  # a kept-alive connection with no request for this long is closed
READ_TIMEOUT: Final = 60.0  # a request whose next bytes take longer is abandoned
LINGER_SECONDS: Final = 2.0  # reading what a refused client still sends, before closing
LINGER_BYTES: Final = 8 * 1024 * 1024
RETRY_AFTER: Final = "5"  # seconds an exporter waits after a 503
INLINE_DECODE_BYTES: Final = 256 * 1024  # larger bodies are decoded off the event loop
# google.rpc.Code values used in error bodies
_INVALID_ARGUMENT, _NOT_FOUND, _RESOURCE_EXHAUSTED, _UNIMPLEMENTED, _UNAVAILABLE = 3, 5, 8, 12, 14

log = get_logger(component="otlp")


class HttpError(Exception):
    """An answer other than 200: status, gRPC code, message, metric reason."""

    def __init__(self, status: int, code: int, message: str, reason: str,
                 close: bool = False, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.reason = reason
        self.close = close
        self.headers = list(headers)


# --- settings ------------------------------------------------------------------------------


def listen_address(settings: Settings) -> tuple[str, int] | None:
    """Where to listen, or None when the receiver is off; raises ValueError when the
    address is unusable or not loopback (unless ``otlp_allow_remote``)."""
    address = (settings.otlp_address or "").strip()
    if not address:
        return None
    host, port = parse_host_port(address)
    if not settings.otlp_allow_remote:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        for info in infos:
            if not ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]).is_loopback:
                raise ValueError(
                    f"{host} is not a loopback address: Claude Code's telemetry would be "
                    "accepted from the network"
                )
    return host, port


# --- the sender's uid ------------------------------------------------------------------------


def _hex_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> str:
    """How ``/proc/net/tcp`` (IPv4) or ``tcp6`` spells ``ip:port`` (native-endian words)."""
    packed = ip.packed
    words = "".join(
        f"{int.from_bytes(packed[i : i + 4], sys.byteorder):08X}" for i in range(0, len(packed), 4)
    )
    return f"{words}:{port:04X}"


def _spellings(address: str) -> list[tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    """(table, address) pairs under which a connection end may be listed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address):  # an IPv6 socket lists IPv4 peers as ::ffff:a.b.c.d
        return [("tcp", ip), ("tcp6", ipaddress.IPv6Address(f"::ffff:{ip}"))]
    return [("tcp6", ip)]


def tcp_peer_uid(peer: tuple[Any, ...], local: tuple[Any, ...],
                 proc_net: str = "/proc/net") -> int | None:
    """The uid owning the client end of a TCP connection from ``peer`` to ``local``, as
    the kernel lists it in ``/proc/net/tcp`` or ``tcp6``; None unless found exactly once."""
    try:
        clients = _spellings(str(peer[0]))
        servers = dict(_spellings(str(local[0])))
    except ValueError:
        return None
    found: set[int] = set()
    for table, client_ip in clients:
        server_ip = servers.get(table)
        if server_ip is None:
            continue
        client = _hex_address(client_ip, int(peer[1]))
        server = _hex_address(server_ip, int(local[1]))
        try:
            with open(os.path.join(proc_net, table), encoding="ascii") as rows:
                next(rows, None)
                for line in rows:
                    fields = line.split()
                    if len(fields) > 7 and fields[1] == client and fields[2] == server:
                        found.add(int(fields[7]))
        except (OSError, ValueError):
            continue
    return found.pop() if len(found) == 1 else None


# --- bodies --------------------------------------------------------------------------------


def gunzip(data: bytes, limit: int) -> bytes:
    """``data`` decompressed, refusing more than ``limit`` bytes of output (HttpError)."""
    out: list[bytes] = []
    size = 0
    rest = data
    while rest:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(rest, limit - size + 1)
        except zlib.error as exc:
            raise HttpError(400, _INVALID_ARGUMENT, f"bad gzip body: {exc}", "gzip") from exc
        size += len(chunk)
        if size > limit or inflater.unconsumed_tail:
            raise HttpError(413, _RESOURCE_EXHAUSTED,
                            f"decompressed body larger than otlp_max_bytes ({limit})",
                            "too_large")  # fmt: skip
        if not inflater.eof:
            raise HttpError(400, _INVALID_ARGUMENT, "gzip body cut short", "gzip")
        out.append(chunk)
        rest = inflater.unused_data  # another gzip member follows
    return b"".join(out)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def status_body(code: int, message: str, content_type: str | None) -> tuple[bytes, str]:
    """A ``google.rpc.Status`` (code, message) in the request's format, else plain text."""
    if content_type == JSON:
        return json.dumps({"code": code, "message": message}).encode(), JSON
    if content_type == PROTOBUF:
        text = message.encode("utf-8", "replace")
        return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text, PROTOBUF
    return (message + "\n").encode("utf-8", "replace"), "text/plain; charset=utf-8"


def success_body(rejected: int, message: str, content_type: str) -> bytes:
    """An ``ExportLogsServiceResponse``, with ``partial_success`` when records were rejected."""
    if content_type == JSON:
        if not rejected:
            return b"{}"
        partial = {"rejectedLogRecords": str(rejected), "errorMessage": message}
        return json.dumps({"partialSuccess": partial}).encode()
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

    response = ExportLogsServiceResponse()
    if rejected:
        response.partial_success.rejected_log_records = rejected
        response.partial_success.error_message = message
    data: bytes = response.SerializeToString()
    return data


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


# --- the receiver ----------------------------------------------------------------------------


class ConnectionState:
    """What shutdown needs to know of one connection: is a request being answered?"""

    __slots__ = ("busy",)

    def __init__(self) -> None:
        self.busy = False

    @property
    def idle(self) -> bool:
        """Waiting for the client's next request (shutdown may close it)."""
        return not self.busy


class OtlpReceiver:
    """Serves OTLP/HTTP logs connections (:meth:`handle`) into an :class:`api.Intake`."""

    def __init__(self, intake: api.Intake, settings: Settings, metrics: Metrics,
                 host: str | None = None) -> None:
        self.intake = intake
        self.settings = settings
        self.metrics = metrics
        self.host = host or os.uname().nodename
        self.pseudonym = _pseudonym(settings)

    def reconfigure(self, settings: Settings) -> None:
        """Reloaded settings (the size limit and user id hashing apply to the next request)."""
        self.pseudonym = _pseudonym(settings)
        self.settings = settings

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     state: ConnectionState | None = None) -> None:
        """One connection: requests in turn (keep-alive) until the client or a timeout ends it.

        ``state.busy`` is true while a request is being answered."""
        state = state or ConnectionState()
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=HEADER_MAX_BYTES)
        peer: tuple[Peer | None, dict[str, Any]] | None = None
        try:
            while True:
                event = await self._next(conn, reader, IDLE_TIMEOUT)
                if not isinstance(event, h11.Request):
                    return  # closed, or nothing more to read
                state.busy = True
                if peer is None:
                    peer = await asyncio.to_thread(self._peer, writer)
                try:
                    keep = await self._serve(conn, reader, writer, event, peer)
                finally:
                    state.busy = False
                if not keep or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    await _linger(reader, writer, conn.their_state is not h11.DONE)
                    return
                conn.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            self.metrics.otlp_bad_requests.labels("http").inc()
            if conn.our_state in {h11.IDLE, h11.SEND_RESPONSE}:
                await self._answer(conn, writer, exc.error_status_hint, b"bad HTTP request\n",
                                   "text/plain; charset=utf-8", close=True)  # fmt: skip
                await _linger(reader, writer, True)
        except (TimeoutError, ConnectionError, OSError):
            return
        finally:
            writer.close()

    def _peer(self, writer: asyncio.StreamWriter) -> tuple[Peer | None, dict[str, Any]]:
        """The sender's uid from the kernel's socket table (None: unverified), and the
        actor's host: this one for a loopback peer, else the peer's address."""
        try:
            remote = writer.get_extra_info("peername")
            local = writer.get_extra_info("sockname")
            loopback = bool(remote) and ipaddress.ip_address(
                str(remote[0]).split("%", 1)[0]).is_loopback
            uid = tcp_peer_uid(remote, local) if loopback and local else None
        except Exception:  # no proof is an unverified record, not a failure
            log.exception("otlp_peer_lookup_failed")
            return None, {"host": self.host}
        actor = {"host": self.host if loopback else str(remote[0])}
        return (None if uid is None else Peer(pid=0, uid=uid, gid=-1)), actor

    async def _next(self, conn: h11.Connection, reader: asyncio.StreamReader,
                    timeout: float) -> Any:
        """The next h11 event, reading from the socket as needed."""
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(reader.read(READ_CHUNK), timeout)
            conn.receive_data(data)

    async def _serve(self, conn: h11.Connection, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter, request: h11.Request,
                     peer: tuple[Peer | None, dict[str, Any]]) -> bool:
        """Answer one request; False when the connection must close afterwards."""
        headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                   for name, value in request.headers}  # fmt: skip
        media = _media_type(headers.get("content-type", ""))
        answer_type = media if media in {JSON, PROTOBUF} else None
        try:
            body = await self._checked_body(conn, reader, writer, request, headers, media)
            status, data = await self._export(body, media, peer)
        except HttpError as exc:
            self.metrics.otlp_bad_requests.labels(exc.reason).inc()
            self.metrics.otlp_requests.labels(str(exc.status)).inc()
            data, kind = status_body(exc.code, exc.message, answer_type)
            close = exc.close or conn.their_state is not h11.DONE
            await self._answer(conn, writer, exc.status, data, kind, close=close,
                               extra=exc.headers)  # fmt: skip
            return not close
        self.metrics.otlp_requests.labels(str(status)).inc()
        await self._answer(conn, writer, status, data, media)
        return True

    async def _checked_body(self, conn: h11.Connection, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter, request: h11.Request,
                            headers: dict[str, str], media: str) -> bytes:
        target = request.target.decode("latin-1").split("?", 1)[0]
        if target != LOGS_PATH:
            raise HttpError(404, _NOT_FOUND, f"not found: OTLP logs are received at {LOGS_PATH}",
                            "not_found", close=True)  # fmt: skip
        if request.method != b"POST":
            raise HttpError(405, _UNIMPLEMENTED, f"{LOGS_PATH} takes POST only", "method",
                            close=True, headers=[("Allow", "POST")])  # fmt: skip
        if media not in {JSON, PROTOBUF}:
            raise HttpError(415, _UNIMPLEMENTED,
                            f"unsupported content type {media[:60]!r}: send {PROTOBUF} or {JSON}",
                            "content_type", close=True)  # fmt: skip
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in {"identity", "gzip", ""}:
            raise HttpError(415, _UNIMPLEMENTED,
                            f"unsupported content encoding {encoding[:40]!r}: send gzip or none",
                            "encoding", close=True)  # fmt: skip
        limit = self.settings.otlp_max_bytes
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise HttpError(413, _RESOURCE_EXHAUSTED,
                            f"body of {length} bytes is larger than otlp_max_bytes ({limit})",
                            "too_large", close=True)  # fmt: skip
        if conn.they_are_waiting_for_100_continue:
            writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        parts: list[bytes] = []
        size = 0
        while True:
            event = await self._next(conn, reader, READ_TIMEOUT)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    raise HttpError(413, _RESOURCE_EXHAUSTED,
                                    f"body larger than otlp_max_bytes ({limit})", "too_large",
                                    close=True)  # fmt: skip
                parts.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # the client went away mid-body
                raise ConnectionResetError("connection closed in the middle of a request body")
        body = b"".join(parts)
        return gunzip(body, limit) if encoding == "gzip" else body

    async def _export(self, body: bytes, media: str,
                      sender: tuple[Peer | None, dict[str, Any]]) -> tuple[int, bytes]:
        """Decode, map, hand to the intake; (status, response body)."""
        peer, actor = sender
        try:
            if len(body) > INLINE_DECODE_BYTES:  # a big batch is read off the event loop
                events, skipped = await asyncio.to_thread(self._events, body, media, actor)
            else:
                events, skipped = self._events(body, media, actor)
        except otel_map.OtlpDecodeError as exc:
            raise HttpError(400, _INVALID_ARGUMENT, str(exc)[:300], exc.reason) from exc
        refused: list[str] = []
        if events:
            acks = await self.intake.accept(events, peer=peer, source=SOURCE)
            if any(_transient(ack) for ack in acks):
                raise HttpError(503, _UNAVAILABLE,
                                "the audit journal cannot take events now; retry later",
                                "unavailable", headers=[("Retry-After", RETRY_AFTER)])
            refused = [ack.error or "rejected" for ack in acks if ack.status == api.REJECTED]
        rejected = sum(skipped.values()) + len(refused)
        message = _partial_message(skipped, refused)
        return 200, success_body(rejected, message, media)

    def _events(self, body: bytes, media: str, actor: dict[str, Any]
                ) -> tuple[list[dict[str, Any]], Counter[str]]:
        """The events of a body and the records skipped, by event name (counted)."""
        records = otel_map.decode(body, media)
        received = time.time()
        events: list[dict[str, Any]] = []
        skipped: Counter[str] = Counter()
        for record in records:
            label = record.label
            try:
                mapped = otel_map.map_record(record, actor=actor, received=received,
                                             error_max_chars=self.settings.error_max_chars,
                                             pseudonym=self.pseudonym)
            except Exception:  # one odd record is skipped, not the batch
                log.exception("otlp_record_unmappable", event=label)
                mapped = otel_map.Mapped(None, "unmappable")
            if mapped.event is None:
                skipped[label] += 1
                self.metrics.otlp_records.labels(label, "skipped").inc()
            else:
                events.append(mapped.event)
                self.metrics.otlp_records.labels(label, "mapped").inc()
        return events, skipped

    async def _answer(self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int,
                      data: bytes, content_type: str, *, close: bool = False,
                      extra: Sequence[tuple[str, str]] = ()) -> None:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(data))),
                   *extra]  # fmt: skip
        if close:
            headers.append(("Connection", "close"))
        try:
            reason = HTTPStatus(status).phrase.encode()
            writer.write(conn.send(h11.Response(status_code=status, headers=headers,
                                                reason=reason)))
            writer.write(conn.send(h11.Data(data=data)))
            writer.write(conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:
            return
        await writer.drain()


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  unread: bool) -> None:
    """Before closing on a client still sending (a refused body): say we are done writing,
    then read and drop what comes for a moment. Closing with unread bytes would reset the
    connection, and the client could lose the answer explaining the refusal."""
    if not unread:
        return
    try:
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(LINGER_SECONDS):
            dropped = 0
            while dropped < LINGER_BYTES and (data := await reader.read(READ_CHUNK)):
                dropped += len(data)
    except (TimeoutError, ConnectionError, OSError):
        return


def _pseudonym(settings: Settings) -> Callable[[str], str] | None:
    """With ``hash_user_ids``: the keyed pseudonym the sanitizer gives actor names."""
    from gitaudit.pipeline import user_id_key
    from gitaudit.sanitize import pseudonymize

    key = user_id_key(settings)
    if key is None:
        return None
    return lambda value: pseudonymize(value, key)


def _transient(ack: api.Ack) -> bool:
    from gitaudit.daemon.intake import EventIntake

    return EventIntake.transient(ack)


def _partial_message(skipped: Counter[str], refused: list[str]) -> str:
    parts = []
    if skipped:
        listed = ", ".join(f"{name} x{count}" for name, count in sorted(skipped.items()))
        parts.append(f"not recorded from telemetry (the hooks record prompts and tool "
                     f"results; other events are not audited): {listed}")  # fmt: skip
    if refused:
        parts.append(f"{len(refused)} record(s) refused: {refused[0][:200]}")
    return "; ".join(parts)
