"""Prometheus metrics of the daemon (prometheus-client), one registry per daemon."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


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

    def serve(self, address: str) -> None:
        """Expose ``/metrics`` on ``host:port`` (a loopback address in the defaults)."""
        host, _, port = address.rpartition(":")
        start_http_server(int(port), addr=host or "127.0.0.1", registry=self.registry)
