"""The live-subscriber hub: filters, bounded queues, drops, and the subscribe socket."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gitaudit.config import Settings
from gitaudit.daemon.metrics import Metrics
from gitaudit.daemon.subscribers import (
    MAX_SUBSCRIBE_BYTES,
    Dropped,
    Hub,
    SubscribeError,
    Subscription,
    SubscriptionFilter,
    delivery_message,
    matches,
    parse_subscribe,
)


def make_event(n: int = 0, operation: str = "git.push", **extra: Any) -> dict[str, Any]:
    """A committed-looking event; only the fields filters look at matter here."""
    event: dict[str, Any] = {
        "id": f"id-{n}",
        "operation": operation,
        "outcome": "success",
        "correlation_id": "job-1",
        "actor": {"user": "alice", "git_name": "Alice A", "git_email": "alice@x.org"},
        "repo": {"name": "app", "path": "/src/app"},
        "seq": n,
    }
    event.update(extra)
    return event


def drops(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(
        "gitaudit_subscriber_drops_total", {"subscriber": name}
    )
    return value or 0.0


# --- matches (pure) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (SubscriptionFilter(), True),
        (SubscriptionFilter(operations=("git.push",)), True),
        (SubscriptionFilter(operations=("git.*",)), True),
        (SubscriptionFilter(operations=("conflict.*", "git.pu?h")), True),
        (SubscriptionFilter(operations=("git.fetch",)), False),
        (SubscriptionFilter(operations=("GIT.PUSH",)), False),  # case-sensitive, like log
        (SubscriptionFilter(actor="alice"), True),
        (SubscriptionFilter(actor="Alice*"), True),
        (SubscriptionFilter(actor="*@x.org"), True),
        (SubscriptionFilter(actor="bob"), False),
        (SubscriptionFilter(repo="app"), True),
        (SubscriptionFilter(repo="/src/*"), True),
        (SubscriptionFilter(repo="lib"), False),
        (SubscriptionFilter(outcome="success"), True),
        (SubscriptionFilter(outcome="failure"), False),
        (SubscriptionFilter(correlation_id="job-1"), True),
        (SubscriptionFilter(correlation_id="job-*"), False),  # exact, like log
        (SubscriptionFilter(operations=("git.*",), actor="alice", outcome="failure"), False),
    ],
)
def test_matches_follows_log_semantics(flt: SubscriptionFilter, expected: bool) -> None:
    assert matches(make_event(), flt) is expected


def test_matches_tolerates_missing_fields() -> None:
    bare = {"id": "x"}
    assert matches(bare, SubscriptionFilter())
    assert not matches(bare, SubscriptionFilter(operations=("*",)))
    assert not matches({"actor": None, "repo": "odd"}, SubscriptionFilter(actor="*"))
    assert not matches({"repo": {"name": 7}}, SubscriptionFilter(repo="*"))


def test_filter_round_trips_through_json() -> None:
    flt = SubscriptionFilter(operations=("git.*",), actor="a", repo="r", outcome="failure")
    assert SubscriptionFilter.from_json(flt.to_json()) == flt
    assert SubscriptionFilter.from_json(None) == SubscriptionFilter()
    assert SubscriptionFilter.from_json({}) == SubscriptionFilter()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "must be an object"),
        ({"operation": ["x"]}, "unknown filter key"),
        ({"operations": "git.push"}, "list of strings"),
        ({"operations": [1]}, "list of strings"),
        ({"actor": 5}, "filter.actor"),
        ({"since": "2h"}, "unknown filter key"),
    ],
)
def test_filter_rejects_bad_json(raw: object, message: str) -> None:
    with pytest.raises(SubscribeError, match=message):
        SubscriptionFilter.from_json(raw)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json\n", "not JSON"),
        (b"\xff\xfe\n", "not JSON"),
        (b'{"type": "publish"}\n', "expected"),
        (b"[1]\n", "expected"),
        (b'{"type": "subscribe", "filter": {"nope": 1}}\n', "unknown filter key"),
        (b" " * (MAX_SUBSCRIBE_BYTES + 1) + b"\n", "longer than"),
        (b"[" * 30_000 + b"]" * 30_000 + b"\n", "nested too deeply"),
        (b'{"type": "subscribe", "n": ' + b"1" * 5000 + b"}\n", "not JSON"),
    ],
)
def test_parse_subscribe_rejects_bad_lines(line: bytes, message: str) -> None:
    with pytest.raises(SubscribeError, match=message):
        parse_subscribe(line)


def test_delivery_messages() -> None:
    assert delivery_message(Dropped(3)) == {"type": "dropped", "count": 3}
    assert delivery_message({"id": "a"}) == {"type": "event", "event": {"id": "a"}}


# --- one queue -------------------------------------------------------------------------------


def _queue(maxsize: int, *, drop_oldest: bool = False) -> tuple[Subscription, list[int]]:
    lost: list[int] = []
    return Subscription(
        "t", SubscriptionFilter(), maxsize, lost.append, drop_oldest=drop_oldest
    ), lost


def _ids(items: list[Any]) -> list[Any]:
    return [item.count if isinstance(item, Dropped) else item["id"] for item in items]


def test_full_queue_drops_new_events_and_marks_the_gap() -> None:
    queue, lost = _queue(3)
    for n in range(5):
        queue.offer(make_event(n))
    assert len(queue) == 3 and sum(lost) == 2
    assert _ids(queue.take(2)) == ["id-0", "id-1"]
    queue.offer(make_event(5))  # room again: the gap is marked before the next event
    queue.offer(make_event(6))
    assert _ids(queue.take(10)) == ["id-2", 2, "id-5", "id-6"]


def test_gap_at_the_end_is_reported_once_the_queue_is_empty() -> None:
    queue, _ = _queue(2)
    for n in range(10):
        queue.offer(make_event(n))
    assert _ids(queue.take(10)) == ["id-0", "id-1", 8]
    assert queue.take(10) == []


def test_drop_oldest_keeps_the_newest_events() -> None:
    queue, lost = _queue(3, drop_oldest=True)
    for n in range(10):
        queue.offer(make_event(n))
    assert sum(lost) == 7
    assert _ids(queue.take(10)) == ["id-7", "id-8", "id-9"]


def test_queue_applies_its_filter() -> None:
    lost: list[int] = []
    queue = Subscription("t", SubscriptionFilter(operations=("git.fetch",)), 5, lost.append)
    queue.offer(make_event(1, "git.push"))
    queue.offer(make_event(2, "git.fetch"))
    assert _ids(queue.take(5)) == ["id-2"]


def test_closed_queue_wakes_its_reader() -> None:
    async def scenario() -> list[Any]:
        queue, _ = _queue(2)
        waiter = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        queue.close()
        return await waiter

    assert asyncio.run(scenario()) == []


# --- the hub ---------------------------------------------------------------------------------


def _hub(queue_size: int = 1000) -> tuple[Hub, Metrics]:
    metrics = Metrics()
    return Hub(Settings({"subscriber_queue_size": queue_size}), metrics), metrics


def test_publish_without_subscribers_is_a_no_op() -> None:
    hub, _ = _hub()
    hub.publish([make_event()])
    hub.publish([])


def test_in_process_subscriber_gets_matching_events_and_drops_are_counted() -> None:
    async def scenario() -> tuple[list[Any], float]:
        hub, metrics = _hub(queue_size=4)
        sub = hub.subscribe("sink:test", SubscriptionFilter(operations=("git.push",)))
        hub.publish([make_event(n, "git.push" if n % 2 else "git.fetch") for n in range(20)])
        return _ids(await sub.get()), drops(metrics, "sink:test")

    got, dropped = asyncio.run(scenario())
    assert got == ["id-1", "id-3", "id-5", "id-7", 6]
    assert dropped == 6


def test_publish_from_another_thread_reaches_the_loop() -> None:
    async def scenario() -> list[Any]:
        hub, _ = _hub()
        sub = hub.subscribe("t")
        thread = threading.Thread(target=hub.publish, args=([make_event(1), make_event(2)],))
        thread.start()
        thread.join()
        return _ids(await sub.get())

    assert asyncio.run(scenario()) == ["id-1", "id-2"]


def test_close_ends_every_subscription() -> None:
    async def scenario() -> tuple[list[Any], bool]:
        hub, _ = _hub()
        sub = hub.subscribe("t")
        hub.close()
        late = hub.subscribe("late")
        return await sub.get(), late.closed

    assert asyncio.run(scenario()) == ([], True)


# --- the socket protocol ---------------------------------------------------------------------


async def _with_server(tmp_path: Path, hub: Hub, body: Callable[[str], Awaitable[Any]]) -> Any:
    path = str(tmp_path / "subscribe.sock")
    server = await asyncio.start_unix_server(hub.serve, path=path)
    try:
        return await body(path)
    finally:
        hub.close()
        server.close()
        await server.wait_closed()


async def _lines(reader: asyncio.StreamReader) -> list[dict[str, Any]]:
    out = []
    while line := await reader.readline():
        out.append(json.loads(line))
    return out


async def _subscribe(
    path: str, flt: dict[str, Any] | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, dict[str, Any]]:
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(json.dumps({"type": "subscribe", "filter": flt or {}}).encode() + b"\n")
    await writer.drain()
    return reader, writer, json.loads(await reader.readline())


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for a condition the event loop will make true (no wall-clock assertion)."""
    while not condition():
        await asyncio.sleep(0.01)


def test_socket_subscriber_receives_filtered_events(tmp_path: Path) -> None:
    hub, _ = _hub()

    async def body(path: str) -> list[dict[str, Any]]:
        reader, writer, hello = await _subscribe(path, {"operations": ["git.push"]})
        assert hello == {"type": "subscribed", "queue_size": 1000}
        hub.publish([make_event(1, "git.fetch"), make_event(2, "git.push")])
        hub.publish([make_event(3, "git.push")])
        first = [json.loads(await reader.readline()) for _ in range(2)]
        writer.close()
        return first

    got = asyncio.run(_with_server(tmp_path, hub, body))
    assert [message["type"] for message in got] == ["event", "event"]
    assert [message["event"]["id"] for message in got] == ["id-2", "id-3"]


def test_bad_subscribe_line_gets_an_error_and_the_connection_ends(tmp_path: Path) -> None:
    hub, _ = _hub()

    async def body(path: str) -> list[dict[str, Any]]:
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b'{"type": "subscribe", "filter": {"operation": "git.push"}}\n')
        await writer.drain()
        return await _lines(reader)

    got = asyncio.run(_with_server(tmp_path, hub, body))
    assert got == [{"type": "error", "error": "unknown filter key(s): operation"}]
    assert hub.subscriptions == ()


def test_disconnected_client_is_unsubscribed(tmp_path: Path) -> None:
    hub, _ = _hub()

    async def body(path: str) -> None:
        _, writer, _ = await _subscribe(path)
        await _until(lambda: len(hub.subscriptions) == 1)
        writer.close()
        await _until(lambda: len(hub.subscriptions) == 0)

    asyncio.run(_with_server(tmp_path, hub, body))


def test_stalled_subscriber_never_slows_publish(tmp_path: Path) -> None:
    """100k events to a client that does not read: publish keeps going, drops are counted,
    and once the client reads, every event is either delivered or reported as dropped."""
    hub, metrics = _hub(queue_size=1000)
    total = 100_000

    async def body(path: str) -> list[dict[str, Any]]:
        stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # nobody reads it (yet)
        stalled.connect(path)
        stalled.sendall(b'{"type": "subscribe", "filter": {}}\n')
        stalled.setblocking(False)
        await _until(lambda: len(hub.subscriptions) == 1)
        name = hub.subscriptions[0].name
        for start in range(0, total, 1000):
            hub.publish([make_event(n) for n in range(start, start + 1000)])
            await asyncio.sleep(0)  # let the server fill the socket buffer, as in the daemon
        assert drops(metrics, name) > total / 2  # the stalled client lost most of them
        hub.close()  # the server finishes what it queued, then hangs up
        reader, _ = await asyncio.open_unix_connection(sock=stalled)
        messages = await _lines(reader)
        assert messages[0]["type"] == "subscribed"
        assert sum(m["count"] for m in messages if m["type"] == "dropped") == drops(metrics, name)
        return messages

    messages = asyncio.run(_with_server(tmp_path, hub, body))
    delivered = [m["event"]["seq"] for m in messages if m["type"] == "event"]
    dropped = sum(m["count"] for m in messages if m["type"] == "dropped")
    assert delivered == sorted(delivered)
    assert len(delivered) + dropped == total


def test_subscriber_name_is_the_peer_uid(tmp_path: Path) -> None:
    hub, _ = _hub()

    async def body(path: str) -> str:
        _, writer, _ = await _subscribe(path)
        await _until(lambda: len(hub.subscriptions) == 1)
        name = hub.subscriptions[0].name
        writer.close()
        return name

    import os

    assert asyncio.run(_with_server(tmp_path, hub, body)) == f"socket:uid={os.getuid()}"


def test_silent_client_socket_is_plain_unix_stream(tmp_path: Path) -> None:
    """A client that connects and sends half a line, then hangs up, leaves nothing behind."""
    hub, _ = _hub()

    async def body(path: str) -> None:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(path)
        client.sendall(b'{"type": "subs')
        client.close()
        await asyncio.sleep(0.05)
        assert hub.subscriptions == ()

    asyncio.run(_with_server(tmp_path, hub, body))


def test_an_event_that_cannot_be_encoded_is_a_gap_not_the_end_of_the_stream(
    tmp_path: Path,
) -> None:
    """A lone surrogate (invalid bytes git reported) goes out as a JSON escape; an event
    that cannot be encoded at all is counted and sent as a one-event gap, and the stream
    goes on with the next one."""
    hub, metrics = _hub()
    odd = make_event(1, repo={"name": "caf\udce9", "path": "/src/caf\udce9"})
    broken = make_event(2, details={("not", "a", "json", "key"): 1})

    async def body(path: str) -> list[dict[str, Any]]:
        reader, writer, _ = await _subscribe(path)
        hub.publish([odd, broken, make_event(3)])
        got = [json.loads(await reader.readline()) for _ in range(3)]
        writer.close()
        return got

    got = asyncio.run(_with_server(tmp_path, hub, body))
    assert got[0] == {"type": "event", "event": odd}
    assert got[1] == {"type": "dropped", "count": 1}
    assert got[2]["event"]["id"] == "id-3"
    skipped = metrics.registry.get_sample_value(
        "gitaudit_sink_skipped_total", {"sink": f"socket:uid={os.getuid()}"}
    )
    assert skipped == 1
