"""The HTTP sink: batches, token header, retries with backoff, bounded backlog, a real server."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from gitaudit.config import Settings
from gitaudit.daemon.metrics import Metrics
from gitaudit.daemon.sinks import (
    BACKOFF_CAP,
    DROP,
    OK,
    RETRY,
    RETRY_AFTER_CAP,
    HttpSink,
    SinkCursor,
    SyslogSink,
    auth_header_value,
    backoff_delay,
    batch_body,
    build_sinks,
    classify_status,
    parse_retry_after,
)
from gitaudit.daemon.subscribers import Hub
from gitaudit.daemon.writer import committed
from gitaudit.errors import ConfigError
from gitaudit.store import Store
from tests.daemon.daemon_harness import DaemonRun, wait_for
from tests.daemon.daemon_harness import make_event as client_event
from tests.store.helpers import make_records


def make_event(n: int) -> dict[str, Any]:
    return {"id": f"id-{n:06d}", "operation": "git.push", "severity": "low", "seq": n}


def metric(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


# --- pure helpers ----------------------------------------------------------------------------


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    rng = random.Random(7)
    for attempt in range(12):
        ceiling = min(BACKOFF_CAP, 0.5 * 2**attempt)
        delays = [backoff_delay(attempt, rng) for _ in range(50)]
        assert all(0 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1  # jittered
    assert backoff_delay(10_000, rng) <= BACKOFF_CAP


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        ("0", 0.0),
        ("100000", RETRY_AFTER_CAP),
        ("soon", None),
        ("Wed, 21 Oct 2026 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),  # in the past: retry now
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2026, 10, 21, 7, 28, tzinfo=UTC)
    assert parse_retry_after(value, now) == expected


def test_token_header_values() -> None:
    assert auth_header_value("Authorization", "s3cr3t") == "Bearer s3cr3t"
    assert auth_header_value("authorization", "s3cr3t") == "Bearer s3cr3t"
    assert auth_header_value("X-Fluent-Token", "s3cr3t") == "s3cr3t"


def test_batch_body_is_a_json_array_of_events() -> None:
    events = [make_event(1), {"id": "é", "x": None}]
    assert json.loads(batch_body(events)) == events


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, OK), (201, OK), (204, OK),
        (500, RETRY), (502, RETRY), (503, RETRY), (429, RETRY), (408, RETRY),
        (401, RETRY), (403, RETRY),
        (400, DROP), (404, DROP), (413, DROP), (422, DROP),
    ],
)  # fmt: skip
def test_classify_status(status: int, verdict: str) -> None:
    assert classify_status(status) == verdict


# --- the sink against httpx.MockTransport ----------------------------------------------------


def _settings(**values: Any) -> Settings:
    return Settings({"http_sink_url": "http://sink.test/ingest", **values})


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for the event loop to make ``condition`` true (no wall-clock assertion)."""
    while not condition():
        await asyncio.sleep(0.005)


class Recorder:
    """A MockTransport handler answering from a script of statuses (then 200)."""

    def __init__(self, script: list[int | Exception] | None = None, retry_after: str = "0"):
        self.script = list(script or [])
        self.retry_after = retry_after
        self.requests: list[httpx.Request] = []
        self.delivered: list[list[dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if self.script else 200
        if isinstance(step, Exception):
            raise step
        if step == 200:
            self.delivered.append(json.loads(request.content))
        return httpx.Response(step, headers={"Retry-After": self.retry_after})

    def ids(self) -> list[str]:
        return [event["id"] for batch in self.delivered for event in batch]


def _http_sink(hub: Hub, metrics: Metrics, recorder: Recorder, settings: Settings) -> HttpSink:
    transport = httpx.MockTransport(recorder)
    (sink,) = build_sinks(settings, hub, metrics, http_transport=transport, backoff_base=0.001)
    assert isinstance(sink, HttpSink)
    return sink


def _run(scenario: Callable[[Hub, Metrics], Any], queue_size: int = 1000) -> Any:
    async def main() -> Any:
        metrics = Metrics()
        hub = Hub(Settings({"subscriber_queue_size": queue_size}), metrics)
        return await scenario(hub, metrics)

    return asyncio.run(main())


def test_posts_batches_as_json_arrays_with_the_token(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cr3t\n")
    recorder = Recorder()

    async def scenario(hub: Hub, metrics: Metrics) -> None:
        sink = _http_sink(hub, metrics, recorder, _settings(http_sink_token_file=str(token)))
        task = asyncio.create_task(sink.run())
        hub.publish([make_event(n) for n in range(1200)])
        await _until(lambda: len(recorder.ids()) == 1200)
        await sink.close()
        await task
        assert metric(metrics, "gitaudit_sink_sent_total", sink="http") == 1200
        assert metric(metrics, "gitaudit_sink_backlog", sink="http") == 0

    _run(scenario)
    assert recorder.ids() == [f"id-{n:06d}" for n in range(1200)]
    assert max(len(batch) for batch in recorder.delivered) <= 500
    request = recorder.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "http://sink.test/ingest"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer s3cr3t"


def test_custom_token_header_carries_the_raw_token(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("abc")
    recorder = Recorder()
    settings = _settings(http_sink_token_file=str(token), http_sink_token_header="X-Token")

    async def scenario(hub: Hub, metrics: Metrics) -> None:
        sink = _http_sink(hub, metrics, recorder, settings)
        task = asyncio.create_task(sink.run())
        hub.publish([make_event(1)])
        await _until(lambda: bool(recorder.delivered))
        await sink.close()
        await task

    _run(scenario)
    assert recorder.requests[0].headers["x-token"] == "abc"
    assert "authorization" not in recorder.requests[0].headers


def test_retries_5xx_429_and_connection_errors_until_delivered() -> None:
    recorder = Recorder([503, 429, httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), 502])

    async def scenario(hub: Hub, metrics: Metrics) -> None:
        sink = _http_sink(hub, metrics, recorder, _settings())
        task = asyncio.create_task(sink.run())
        hub.publish([make_event(n) for n in range(10)])
        await _until(lambda: len(recorder.ids()) == 10)
        await sink.close()
        await task
        assert metric(metrics, "gitaudit_sink_errors_total", sink="http") == 5
        assert metric(metrics, "gitaudit_sink_sent_total", sink="http") == 10

    _run(scenario)
    assert len(recorder.requests) == 6
    assert recorder.ids() == [f"id-{n:06d}" for n in range(10)]


def test_retry_after_is_honoured() -> None:
    recorder = Recorder([503], retry_after="0")
    waits: list[float] = []

    async def scenario(hub: Hub, metrics: Metrics) -> None:
        transport = httpx.MockTransport(recorder)
        # only Retry-After can make this quick
        (sink,) = build_sinks(_settings(), hub, metrics, http_transport=transport, backoff_base=1e3)
        original = asyncio.wait_for

        async def recording_wait_for(aw: Any, timeout: float | None) -> Any:
            waits.append(timeout or 0.0)
            return await original(aw, timeout)

        asyncio.wait_for = recording_wait_for  # type: ignore[assignment]
        try:
            task = asyncio.create_task(sink.run())
            hub.publish([make_event(1)])
            await _until(lambda: bool(recorder.delivered))
            await sink.close()
            await task
        finally:
            asyncio.wait_for = original

    _run(scenario)
    assert 0.0 in waits


def test_a_refused_batch_is_dropped_and_counted_and_the_next_one_goes() -> None:
    recorder = Recorder([400])

    async def scenario(hub: Hub, metrics: Metrics) -> None:
        sink = _http_sink(hub, metrics, recorder, _settings())
        task = asyncio.create_task(sink.run())
        hub.publish([make_event(1)])
        await _until(lambda: len(recorder.requests) == 1)
        hub.publish([make_event(2)])
        await _until(lambda: bool(recorder.delivered))
        await sink.close()
        await task
        assert metric(metrics, "gitaudit_subscriber_drops_total", subscriber="sink:http") == 1

    _run(scenario)
    assert recorder.ids() == ["id-000002"]


def test_backlog_is_bounded_oldest_dropped_and_never_blocks_publish() -> None:
    recorder = Recorder([503] * 1_000_000)  # the sink is down for the whole test

    async def scenario(hub: Hub, metrics: Metrics) -> None:
        sink = _http_sink(hub, metrics, recorder, _settings(sink_backlog=10))
        hub.publish([make_event(n) for n in range(100)])  # returns at once, sink not running
        drops = metric(metrics, "gitaudit_subscriber_drops_total", subscriber="sink:http")
        assert drops == 90
        task = asyncio.create_task(sink.run())
        await _until(lambda: len(recorder.requests) >= 3)
        assert metric(metrics, "gitaudit_sink_backlog", sink="http") == 10
        body = json.loads(recorder.requests[0].content)
        assert [event["id"] for event in body] == [f"id-{n:06d}" for n in range(90, 100)]
        hub.publish([make_event(n) for n in range(100, 200)])
        assert metric(metrics, "gitaudit_sink_backlog", sink="http") <= 20
        await sink.close()
        await task
        lost = metric(metrics, "gitaudit_subscriber_drops_total", subscriber="sink:http")
        assert lost == 200  # every event is accounted for: nothing got through

    _run(scenario)


def test_close_before_run_counts_what_was_queued() -> None:
    async def scenario(hub: Hub, metrics: Metrics) -> None:
        sink = _http_sink(hub, metrics, Recorder(), _settings())
        hub.publish([make_event(1), make_event(2)])
        await sink.close()
        assert metric(metrics, "gitaudit_subscriber_drops_total", subscriber="sink:http") == 2
        assert hub.subscriptions == ()

    _run(scenario)


# --- wiring ----------------------------------------------------------------------------------


def test_build_sinks_from_settings(tmp_path: Path) -> None:
    async def scenario(hub: Hub, metrics: Metrics) -> list[str]:
        assert build_sinks(Settings(), hub, metrics) == []
        settings = _settings(syslog_address="udp://127.0.0.1:514")
        sinks = build_sinks(settings, hub, metrics)
        names = [sink.name for sink in sinks]
        assert isinstance(sinks[1], SyslogSink)
        assert [s.maxsize for s in hub.subscriptions] == [10000, 10000]
        for sink in sinks:
            await sink.close()
        return names

    assert _run(scenario) == ["http", "syslog"]


@pytest.mark.parametrize(
    "values",
    [
        {"syslog_address": "smtp://x:1"},
        {"http_sink_url": "http://x/", "syslog_address": "udp://nohost"},
        {"http_sink_url": "http://x/", "http_sink_token_file": "/nonexistent/token"},
    ],
)
def test_bad_sink_settings_fail_before_subscribing(values: dict[str, str]) -> None:
    async def scenario(hub: Hub, metrics: Metrics) -> None:
        with pytest.raises(ConfigError):
            build_sinks(Settings(values), hub, metrics)
        assert hub.subscriptions == ()

    _run(scenario)


# --- a real HTTP server that is down for a while ---------------------------------------------


class FlakyServer:
    """127.0.0.1:<free port>: answers 503 to the first ``failures`` POSTs, then 201."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.bodies: list[list[dict[str, Any]]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    failing = len(outer.statuses) < outer.failures
                    status = 503 if failing else 201
                    outer.statuses.append(status)
                    if not failing:
                        outer.bodies.append(json.loads(body))
                self.send_response(status)
                if failing:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/gitaudit"

    def ids(self) -> list[str]:
        with self.lock:
            return [event["id"] for body in self.bodies for event in body]


@pytest.fixture
def flaky_server() -> Iterator[FlakyServer]:
    server = FlakyServer(failures=3)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_real_server_failing_then_accepting_gets_every_event_in_order(
    flaky_server: FlakyServer,
) -> None:
    published = [make_event(n) for n in range(1300)]

    async def scenario(hub: Hub, metrics: Metrics) -> None:
        (sink,) = build_sinks(Settings({"http_sink_url": flaky_server.url}), hub, metrics)
        task = asyncio.create_task(sink.run())
        for start in range(0, len(published), 100):
            hub.publish(published[start : start + 100])
            await asyncio.sleep(0)
        await _until(lambda: set(flaky_server.ids()) >= {e["id"] for e in published})
        await sink.close()
        await task

    _run(scenario)
    assert flaky_server.statuses[:3] == [503, 503, 503]
    for body in flaky_server.bodies:  # each batch in publish order
        seqs = [event["seq"] for event in body]
        assert seqs == sorted(seqs)
    delivered = flaky_server.ids()
    assert list(dict.fromkeys(delivered)) == [event["id"] for event in published]


# --- the cursor: at-least-once across full queues and restarts --------------------------------


def test_cursor_file_round_trip_and_what_it_ignores(tmp_path: Path) -> None:
    path = tmp_path / "sinks" / "http.json"
    cursor = SinkCursor(str(path), "host-a").load()
    assert cursor.seq is None  # no file yet: follow the live queue
    cursor.advance([{"chain_id": "host-a", "seq": 4}, {"chain_id": "other", "seq": 99},
                    {"chain_id": "host-a", "seq": 5}])
    assert json.loads(path.read_text()) == {"chain_id": "host-a", "seq": 5}
    assert SinkCursor(str(path), "host-a").load().seq == 5
    assert SinkCursor(str(path), "host-b").load().seq is None  # another chain's position
    path.write_text("{not json")
    assert SinkCursor(str(path), "host-a").load().seq is None


def test_cursor_knows_what_was_sent_and_spots_gaps(tmp_path: Path) -> None:
    cursor = SinkCursor(str(tmp_path / "c.json"), "a")
    cursor.seq = 10
    assert cursor.delivered({"chain_id": "a", "seq": 10})
    assert not cursor.delivered({"chain_id": "a", "seq": 11})
    assert not cursor.delivered({"chain_id": "b", "seq": 3})
    assert not cursor.gap_before([{"chain_id": "a", "seq": 11}, {"chain_id": "a", "seq": 12}])
    assert cursor.gap_before([{"chain_id": "a", "seq": 13}])  # 11 and 12 were lost
    assert cursor.gap_before([{"chain_id": "a", "seq": 11}, {"chain_id": "a", "seq": 13}])


def test_an_unwritable_cursor_never_stops_delivery(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cursor = SinkCursor(str(blocker / "sinks" / "http.json"), "a")
    cursor.advance([{"chain_id": "a", "seq": 1}])  # logged once, not raised
    assert cursor.seq == 1


def _stored(tmp_path: Path, count: int) -> tuple[Store, list[dict[str, Any]]]:
    """A real SQLite store holding ``count`` events of chain ``host-a``, as committed."""
    store = Store.open(f"sqlite:///{tmp_path / 'audit.db'}", chain_id="host-a")
    records = make_records(count)
    result = store.append(records)
    return store, committed(records, result)


def _reader(store: Store) -> Callable[[str, int, int], Any]:
    async def read(chain_id: str, seq: int, limit: int) -> list[dict[str, Any]]:
        return await asyncio.to_thread(store.chain_after, chain_id, seq, limit)

    return read


def test_a_full_queue_loses_nothing_the_store_holds(tmp_path: Path) -> None:
    store, events = _stored(tmp_path, 60)
    recorder = Recorder([503, 503, 503])  # down while the queue overflows
    cursor = SinkCursor(str(tmp_path / "sinks" / "http.json"), "host-a")

    async def scenario(hub: Hub, metrics: Metrics) -> None:
        (sink,) = build_sinks(_settings(sink_backlog=5, chain_id="host-a"), hub, metrics,
                              http_transport=httpx.MockTransport(recorder), backoff_base=0.001,
                              reader=_reader(store), cursor_dir=str(tmp_path / "sinks"))
        hub.publish(events[:5])
        task = asyncio.create_task(sink.run())
        await asyncio.wait_for(_until(lambda: len(recorder.requests) >= 1), 30)
        for start in range(5, 60, 5):
            hub.publish(events[start : start + 5])  # the queue keeps only the newest 5
        everything = {e["id"] for e in events}
        await asyncio.wait_for(_until(lambda: set(recorder.ids()) >= everything), 30)
        await sink.close()
        await task

    _run(scenario)
    store.close()
    assert list(dict.fromkeys(recorder.ids())) == [e["id"] for e in events]  # all, in order
    assert cursor.load().seq == 60
    sent = [event for batch in recorder.delivered for event in batch]
    assert all(event["hash"] and event["seq"] for event in sent)  # live and caught up alike


def test_a_restart_sends_what_the_last_run_could_not(tmp_path: Path) -> None:
    store, events = _stored(tmp_path, 30)
    cursor = SinkCursor(str(tmp_path / "sinks" / "http.json"), "host-a")
    cursor.advance(events[:10])  # the previous run delivered 1..10, then stopped
    recorder = Recorder()

    async def scenario(hub: Hub, metrics: Metrics) -> None:
        (sink,) = build_sinks(_settings(chain_id="host-a"), hub, metrics,
                              http_transport=httpx.MockTransport(recorder), backoff_base=0.001,
                              reader=_reader(store), cursor_dir=str(tmp_path / "sinks"))
        task = asyncio.create_task(sink.run())
        await asyncio.wait_for(_until(lambda: len(recorder.ids()) >= 20), 30)
        later = make_records(2, start=30)
        hub.publish(committed(later, store.append(later)))  # live again afterwards
        await asyncio.wait_for(_until(lambda: len(recorder.ids()) >= 22), 30)
        await sink.close()
        await task

    _run(scenario)
    store.close()
    assert recorder.ids()[:20] == [e["id"] for e in events[10:]]
    assert len(recorder.ids()) == 22


def test_a_daemon_restart_forwards_what_the_sink_could_not_send(
    flaky_server: FlakyServer,
) -> None:
    flaky_server.failures = 10**9  # down for the whole first run
    run = DaemonRun(config={"http_sink_url": flaky_server.url, "chain_id": "host-a"})
    try:
        run.start()
        events = [client_event(n) for n in range(20)]
        assert {a["status"] for a in run.send(events)} == {"accepted"}
        run.wait_stored([e["id"] for e in events])
        wait_for(lambda: len(flaky_server.statuses) >= 2, "the sink to try and fail")
        assert run.stop() == 0
        assert flaky_server.ids() == []
        with flaky_server.lock:
            flaky_server.failures = 0  # back up
        run.start()  # nothing new arrives: what the first run stored is sent from the store
        wait_for(lambda: set(flaky_server.ids()) >= {e["id"] for e in events} or None,
                 "every stored event at the sink after the restart")
        assert list(dict.fromkeys(flaky_server.ids())) == [e["id"] for e in events]
        assert run.stop() == 0
    finally:
        run.cleanup()


def test_sighup_moves_the_sink_to_its_new_settings(tmp_path: Path) -> None:
    first, second = FlakyServer(failures=0), FlakyServer(failures=0)
    threads = [threading.Thread(target=s.server.serve_forever, daemon=True)
               for s in (first, second)]
    for thread in threads:
        thread.start()
    token = tmp_path / "token"
    token.write_text("second-token\n")
    run = DaemonRun(config={"http_sink_url": first.url})
    try:
        run.start()
        before = [client_event(n) for n in range(5)]
        run.send(before)
        wait_for(lambda: set(first.ids()) >= {e["id"] for e in before} or None,
                 "the first receiver to get the first events")
        run.write_config(http_sink_url=second.url, http_sink_token_file=str(token))
        run.signal(signal.SIGHUP)
        wait_for(lambda: "config_change_recorded" in run.log() or None, "the reload")
        after = [client_event(n) for n in range(5, 10)]
        run.send(after)
        wait_for(lambda: set(second.ids()) >= {e["id"] for e in after} or None,
                 "the second receiver to get what came after the reload")
        assert not set(first.ids()) & {e["id"] for e in after}
        reloads = [json.loads(line) for line in run.log().splitlines()
                   if line.startswith("{") and '"reloaded"' in line]
        assert reloads[-1]["restart_needed"] == []  # the sink keys apply on reload
        assert run.stop() == 0
    finally:
        run.cleanup()
        for server in (first, second):
            server.server.shutdown()
            server.server.server_close()


# --- events a sink cannot format -------------------------------------------------------------


def test_a_lone_surrogate_is_posted_as_a_json_escape() -> None:
    """Invalid bytes git reported reach the store as lone surrogates; the body is then
    ASCII JSON, which decodes to the same event."""
    odd = {**make_event(1), "repo": {"name": "caf\udce9"}}
    recorder = Recorder()

    async def scenario(hub: Hub, metrics: Metrics) -> None:
        sink = _http_sink(hub, metrics, recorder, _settings())
        task = asyncio.create_task(sink.run())
        hub.publish([odd, make_event(2)])
        await asyncio.wait_for(_until(lambda: len(recorder.ids()) >= 2), 30)
        await sink.close()
        await task
        assert metric(metrics, "gitaudit_sink_skipped_total", sink="http") == 0

    _run(scenario)
    assert recorder.delivered[0][0] == odd


def test_an_event_that_cannot_be_formatted_is_skipped_and_counted_and_the_sink_goes_on(
    tmp_path: Path,
) -> None:
    bad = {**make_event(2), "details": {("not", "a", "json", "key"): 1}}
    events = [make_event(1), bad, make_event(3)]
    for event in events:
        event["chain_id"] = "host-a"
    recorder = Recorder()

    async def scenario(hub: Hub, metrics: Metrics) -> None:
        (sink,) = build_sinks(_settings(chain_id="host-a"), hub, metrics,
                              http_transport=httpx.MockTransport(recorder), backoff_base=0.001,
                              reader=_reader_of([]), cursor_dir=str(tmp_path / "sinks"))
        task = asyncio.create_task(sink.run())
        hub.publish(events[:2])
        await asyncio.wait_for(_until(lambda: len(recorder.ids()) >= 1), 30)
        hub.publish(events[2:])
        await asyncio.wait_for(_until(lambda: len(recorder.ids()) >= 2), 30)
        await sink.close()
        await task
        assert metric(metrics, "gitaudit_sink_skipped_total", sink="http") == 1
        assert metric(metrics, "gitaudit_sink_sent_total", sink="http") == 2
        assert metric(metrics, "gitaudit_sink_backlog", sink="http") == 0

    _run(scenario)
    assert recorder.ids() == ["id-000001", "id-000003"]
    # passed over in the sink's position: not read back and skipped again after a restart
    assert SinkCursor(str(tmp_path / "sinks" / "http.json"), "host-a").load().seq == 3


def _reader_of(events: list[dict[str, Any]]) -> Callable[[str, int, int], Any]:
    async def read(chain_id: str, seq: int, limit: int) -> list[dict[str, Any]]:
        return [e for e in events if e["chain_id"] == chain_id and e["seq"] > seq][:limit]

    return read
