"""Prometheus metrics of the daemon (prometheus-client), one registry per daemon.

The endpoint is prometheus-client's WSGI app behind a small router of ours
rather than ``start_http_server``: that one answers the metrics on every URL
path, listens with ``socketserver``'s backlog of 5 and cannot bind a
bracketed IPv6 address (``[::1]:9464``). Here only ``/metrics`` answers
(anything else is 404), the listen queue is as long as the kernel allows
(:data:`~gitaudit.daemon.runtime.LISTEN_BACKLOG`) and the address is read by
:func:`parse_host_port`.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any, Final
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from gitaudit.daemon.runtime import LISTEN_BACKLOG

METRICS_PATH: Final = "/metrics"
DEFAULT_HOST: Final = "127.0.0.1"

# Why an event was rejected (gitaudit_events_rejected_total{reason}); README lists them all.
REJECT_REASONS: Final = {
    "utf8": "a line that is not UTF-8",
    "json": "a line that is not JSON",
    "type": "a JSON message of the wrong shape",
    "depth": "JSON nested deeper than 64 levels",
    "size": "a line longer than max_message_bytes",
    "truncated": "a connection closed in the middle of a line",
    "invalid": "an event that fails validation",
    "gitaudit_only": "a source or operation only gitaudit records (daemon, trace2, audit.*) "
    "sent by another uid or from a client spool",
    "store_down": "refused while the store is down (on_store_failure = reject)",
    "journal": "the journal could not be written",
    "backlog": "trace2 events past the delivery backlog (sink_backlog) of a stalled intake",
    "intake_error": "trace2 events the intake failed on",
}


def parse_host_port(address: str, default_host: str = DEFAULT_HOST) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, ``v6:port`` (the last colon starts the port) or
    ``port``; raises ValueError naming the problem."""
    host, colon, port = address.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif "[" in host or "]" in host:
        raise ValueError(f"unbalanced brackets in {address!r}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"no port (1-65535) at the end of {address!r}")
    return (host or default_host) if colon else default_host, int(port)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: scrapes are not events."""


class _MetricsServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, family: socket.AddressFamily, address: tuple[Any, ...]) -> None:
        self.address_family = family
        super().__init__(address, _QuietHandler)


def only_metrics(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """A WSGI app answering ``app`` at :data:`METRICS_PATH` and 404 everywhere else."""

    def route(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == METRICS_PATH:
            return app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [f"not found: the metrics are at {METRICS_PATH}\n".encode()]

    return route


class Metrics:
    """Every counter the daemon and its parts update.

    Counters carry a ``source`` label (socket, trace2, spool) where useful.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "gitaudit_events_received", "Events received", ["source"], registry=r
        )
        self.accepted = Counter(
            "gitaudit_events_accepted", "Events journaled", ["source"], registry=r
        )
        self.filtered = Counter(
            "gitaudit_events_filtered", "Events dropped by policy", ["source"], registry=r
        )
        self.sampled = Counter(
            "gitaudit_events_sampled", "Events dropped by sampling", ["source"], registry=r
        )
        self.duplicates = Counter(
            "gitaudit_events_duplicate", "Events already recorded", ["source"], registry=r
        )
        self.rejected = Counter(
            "gitaudit_events_rejected", "Messages rejected", ["source", "reason"], registry=r
        )
        self.quarantined = Counter(
            "gitaudit_events_quarantined",
            "Records stored as an audit.rejected event in their place",
            ["stage"],
            registry=r,
        )
        self.spooled = Counter(
            "gitaudit_events_spooled", "Events ingested from client spools", registry=r
        )
        self.written = Counter(
            "gitaudit_events_written", "Events committed to the store", registry=r
        )
        self.batch_latency = Histogram(
            "gitaudit_batch_seconds", "Time to commit one batch to the store", registry=r
        )
        self.ack_latency = Histogram(
            "gitaudit_ack_seconds",
            "Time from receiving an event to acknowledging it",
            registry=r,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
        )
        self.journal_backlog = Gauge(
            "gitaudit_journal_backlog", "Journaled events not yet in the store", registry=r
        )
        self.store_up = Gauge("gitaudit_store_up", "1 when the last store write worked", registry=r)
        self.subscriber_drops = Counter(
            "gitaudit_subscriber_drops",
            "Events a live subscriber missed",
            ["subscriber"],
            registry=r,
        )
        self.agent_joins = Counter(
            "gitaudit_agent_joins",
            "AI agent claims and ancestry joins of git events and tool calls, by result "
            "(verified, ancestry, claim_unproven, mismatch, tool_use, ambiguous)",
            ["result"], registry=r,
        )
        self.trace2_dropped = Counter(
            "gitaudit_trace2_detail_dropped",
            "git processes whose trace2 detail was dropped past trace2_max_bytes",
            registry=r,
        )
        self.sink_backlog = Gauge(
            "gitaudit_sink_backlog", "Events waiting for a sink", ["sink"], registry=r
        )
        self.sink_errors = Counter(
            "gitaudit_sink_errors", "Failed deliveries to a sink", ["sink"], registry=r
        )
        self.sink_sent = Counter(
            "gitaudit_sink_sent", "Events delivered to a sink", ["sink"], registry=r
        )
        self.sink_skipped = Counter(
            "gitaudit_sink_skipped",
            "Events a sink or live subscriber could not format, skipped",
            ["sink"],
            registry=r,
        )
        self.otlp_requests = Counter(
            "gitaudit_otlp_requests", "OTLP/HTTP requests answered, by status", ["status"],
            registry=r,
        )
        self.otlp_records = Counter(
            "gitaudit_otlp_records",
            "OTLP log records received, by event name and outcome (mapped, skipped)",
            ["event", "outcome"],
            registry=r,
        )
        self.otlp_bad_requests = Counter(
            "gitaudit_otlp_bad_requests", "OTLP/HTTP requests refused, by reason", ["reason"],
            registry=r,
        )
        self._http: _MetricsServer | None = None

    def agent_join(self, result: str) -> None:
        """Count one outcome of the AI agent join (``gitaudit.daemon.agents.RESULTS``)."""
        self.agent_joins.labels(result).inc()

    def serve(self, address: str) -> tuple[str, int]:
        """Serve ``/metrics`` on ``address`` (see :func:`parse_host_port`) in a thread;
        returns the bound host and port. Raises ValueError or OSError."""
        host, port = parse_host_port(address)
        family, _, _, _, sockaddr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        server = _MetricsServer(family, sockaddr)
        server.set_app(only_metrics(make_wsgi_app(self.registry)))
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
        self._http = server
        bound = server.socket.getsockname()
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        """Stop serving (the daemon's last step)."""
        server, self._http = self._http, None
        if server is not None:
            server.shutdown()
            server.server_close()
