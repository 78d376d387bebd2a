"""The syslog sink: RFC 5424 formatting (pure) and real UDP, TCP and Unix receivers."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gitaudit.config import Settings
from gitaudit.daemon.metrics import Metrics
from gitaudit.daemon.sinks import (
    FACILITIES,
    MAX_DATAGRAM,
    SyslogSink,
    SyslogTarget,
    build_sinks,
    escape_param,
    fit_datagram,
    format_syslog,
    frame_octet_counted,
    parse_syslog_address,
    sd_name,
    structured_data,
    syslog_timestamp,
)
from gitaudit.daemon.subscribers import Hub
from gitaudit.errors import ConfigError
from tests.daemon.daemon_harness import Daemons, wait_for
from tests.gitfixtures import GitSandbox

# RFC 5424 section 6 (ABNF), as a regular expression over one message.
_SD_PARAM_VALUE = r'(?:[^"\\\]]|\\["\\\]])*'
_SD_ELEMENT = rf'\[[!#-~&&[^= \]"]]{{1,32}}(?: [!-~]{{1,32}}="{_SD_PARAM_VALUE}")*\]'
SYSLOG_RE = re.compile(
    r"^<(?P<pri>\d{1,3})>1"
    r" (?P<ts>-|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d))"
    r" (?P<host>[!-~]{1,255})"
    r" (?P<app>[!-~]{1,48})"
    r" (?P<procid>[!-~]{1,128})"
    r" (?P<msgid>[!-~]{1,32})"
    r" (?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+)"
    r"(?: (?P<msg>.*))?$",
    re.DOTALL,
)


def parse_sd(sd: str) -> tuple[str, dict[str, str]]:
    """One SD-ELEMENT -> (SD-ID, params), unescaping values."""
    assert sd.startswith("[") and sd.endswith("]")
    sd_id, _, rest = sd[1:-1].partition(" ")
    params = {
        key: re.sub(r"\\([\"\\\]])", r"\1", value)
        for key, value in re.findall(r'([!-~]+?)="((?:[^"\\]|\\.)*)"', rest)
    }
    return sd_id, params


def make_event(n: int = 1, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"0190-{n}",
        "occurred_at": "2026-11-01T12:00:00.123456+00:00",
        "operation": "git.push",
        "outcome": "success",
        "severity": "high",
        "actor": {"user": "alice", "git_email": "alice@x.org"},
        "repo": {"name": "app", "path": "/src/app"},
        "details": {"note": "naïve ☃"},
    }
    event.update(extra)
    return event


def _format(event: dict[str, Any], facility: int = FACILITIES["authpriv"]) -> str:
    return format_syslog(event, hostname="build-1", procid=4242, facility=facility).decode()


# --- pure formatting -------------------------------------------------------------------------


def test_message_follows_the_rfc5424_grammar() -> None:
    text = _format(make_event())
    match = SYSLOG_RE.match(text)
    assert match, text
    assert match["pri"] == str(10 * 8 + 4)  # authpriv.warning for a high-severity event
    assert match["ts"] == "2026-11-01T12:00:00.123456Z"
    assert (match["host"], match["app"], match["procid"], match["msgid"]) == (
        "build-1",
        "gitaudit",
        "4242",
        "git.push",
    )
    sd_id, params = parse_sd(match["sd"])
    assert sd_id == "gitaudit@32473"
    assert params == {
        "op": "git.push",
        "outcome": "success",
        "actor": "alice",
        "repo": "app",
        "id": "0190-1",
    }
    assert json.loads(match["msg"]) == make_event()
    assert text.isascii()  # MSG-ANY: no BOM needed, non-ASCII escaped in the JSON


def test_header_layout_matches_the_rfc_example() -> None:
    # RFC 5424 6.5 example 3: <165>1 2003-10-11T22:14:15.003Z mymachine.example.com
    # evntslog - ID47 [exampleSDID@32473 iut="3" ...]: local4 (20) * 8 + notice (5) = 165
    event = make_event(operation="ID47", severity="medium", occurred_at="2003-10-11T22:14:15.003Z")
    text = format_syslog(
        event, hostname="mymachine.example.com", procid="-", facility=FACILITIES["local4"]
    ).decode()
    assert text.startswith(
        "<165>1 2003-10-11T22:14:15.003000Z mymachine.example.com gitaudit - ID47 [gitaudit@32473 "
    )


@pytest.mark.parametrize(("severity", "code"), [("high", 4), ("medium", 5), ("low", 6), (None, 6)])
def test_severity_mapping(severity: str | None, code: int) -> None:
    text = _format(make_event(severity=severity), facility=FACILITIES["local0"])
    assert text.startswith(f"<{16 * 8 + code}>1 ")


def test_sd_param_values_are_escaped() -> None:
    assert escape_param('a"b\\c]d') == 'a\\"b\\\\c\\]d'
    event = make_event(repo={"name": 'we"ird]\\repo'})
    sd = structured_data(event)
    assert 'repo="we\\"ird\\]\\\\repo"' in sd
    assert parse_sd(sd)[1]["repo"] == 'we"ird]\\repo'
    assert SYSLOG_RE.match(_format(event))


def test_non_ascii_values_are_utf8_sd_params_and_the_msg_stays_ascii() -> None:
    """RFC 5424 6.3.3: PARAM-VALUE is UTF-8. MSG is ASCII JSON (MSG-ANY: no BOM)."""
    event = make_event(repo={"name": "café", "path": "/src/café"},
                       actor={"user": "zoë", "git_email": "zoë@x.org"})
    message = format_syslog(event, hostname="build-1", procid=1, facility=10)
    text = message.decode("utf-8")
    match = SYSLOG_RE.match(text)
    assert match, text
    assert parse_sd(match["sd"])[1]["repo"] == "café"
    assert parse_sd(match["sd"])[1]["actor"] == "zoë"
    assert match["msg"].isascii() and not match["msg"].startswith("\ufeff")
    assert json.loads(match["msg"]) == event


def test_a_lone_surrogate_becomes_u_fffd_in_params_and_an_escape_in_the_msg() -> None:
    event = make_event(repo={"name": "caf\udce9"})  # invalid bytes git reported
    text = format_syslog(event, hostname="h", procid=1, facility=10).decode("utf-8")
    match = SYSLOG_RE.match(text)
    assert match, text
    assert parse_sd(match["sd"])[1]["repo"] == "caf\ufffd"
    assert json.loads(match["msg"]) == event


def test_sd_names_are_printable_ascii_without_specials_and_at_most_32() -> None:
    assert sd_name('a b=c]d"e') == "abcde"
    assert sd_name("é" + "x" * 40) == "x" * 32
    sd_id, params = parse_sd(structured_data(make_event()))
    for name in [sd_id, *params]:
        assert name == sd_name(name) and 0 < len(name) <= 32


def test_missing_values_are_left_out_or_nil() -> None:
    event = {"id": "x", "operation": None, "occurred_at": "not a time"}
    text = _format(event)
    match = SYSLOG_RE.match(text)
    assert match
    assert match["ts"] == "-" and match["msgid"] == "-"
    assert parse_sd(match["sd"]) == ("gitaudit@32473", {"id": "x"})


def test_header_fields_are_printable_ascii_and_bounded() -> None:
    text = format_syslog(
        make_event(operation="x" * 40), hostname="host name é", procid=1, facility=10
    ).decode()
    match = SYSLOG_RE.match(text)
    assert match
    assert match["host"] == "hostname" and match["msgid"] == "x" * 32


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-01T12:00:00Z", "2026-11-01T12:00:00.000000Z"),
        ("2026-11-01T14:00:00+02:00", "2026-11-01T12:00:00.000000Z"),
        ("2026-11-01T12:00:00", "2026-11-01T12:00:00.000000Z"),
        ("yesterday", "-"),
        (None, "-"),
    ],
)
def test_timestamps(value: object, expected: str) -> None:
    assert syslog_timestamp(value) == expected


def test_octet_counting_frame() -> None:
    assert frame_octet_counted(b"<14>1 - - - - - -") == b"17 <14>1 - - - - - -"


def test_oversized_events_lose_their_details_to_fit_a_datagram() -> None:
    big = make_event(details={"blob": "x" * (MAX_DATAGRAM * 2)})
    message = fit_datagram(big, lambda event: _format(dict(event)).encode())
    assert len(message) <= MAX_DATAGRAM
    body = json.loads(SYSLOG_RE.match(message.decode())["msg"])  # type: ignore[index]
    assert body["details"]["truncated"] is True
    small = make_event()
    assert (
        fit_datagram(small, lambda event: _format(dict(event)).encode()) == _format(small).encode()
    )


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("udp://127.0.0.1:514", SyslogTarget("udp", "127.0.0.1", 514, "", 10)),
        ("tcp://logs.example.com:601", SyslogTarget("tcp", "logs.example.com", 601, "", 10)),
        ("unix:///dev/log", SyslogTarget("unix", "", 0, "/dev/log", 10)),
        ("udp://[::1]:514?facility=local0", SyslogTarget("udp", "::1", 514, "", 16)),
        ("unix:///dev/log?facility=LOCAL7", SyslogTarget("unix", "", 0, "/dev/log", 23)),
    ],
)
def test_parse_syslog_address(address: str, expected: SyslogTarget) -> None:
    assert parse_syslog_address(address) == expected


@pytest.mark.parametrize(
    "address",
    [
        "udp://host",
        "tcp://:514",
        "udp://h:notaport",
        "http://h:1",
        "unix://",
        "udp://h:1?facility=x",
    ],
)
def test_bad_syslog_addresses(address: str) -> None:
    with pytest.raises(ConfigError, match="syslog"):
        parse_syslog_address(address)


def test_an_unbracketed_ipv6_syslog_address_is_refused_with_the_bracketed_form() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_syslog_address("udp://::1:514")
    assert "udp://[::1]:514" in (caught.value.hint or "")


# --- real receivers --------------------------------------------------------------------------


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.005)


async def _deliver(
    address: str, events: list[dict[str, Any]], received: Callable[[], int]
) -> Metrics:
    metrics = Metrics()
    hub = Hub(Settings(), metrics)
    (sink,) = build_sinks(Settings({"syslog_address": address}), hub, metrics, backoff_base=0.001)
    assert isinstance(sink, SyslogSink)
    task = asyncio.create_task(sink.run())
    hub.publish(events)
    await asyncio.wait_for(_until(lambda: received() >= len(events)), 30)
    await sink.close()
    await task
    return metrics


def _check(messages: list[bytes], events: list[dict[str, Any]], facility: int = 10) -> None:
    bodies = []
    for message in messages:
        match = SYSLOG_RE.match(message.decode())
        assert match, message
        assert match["pri"] == str(facility * 8 + 4)
        bodies.append(json.loads(match["msg"]))
    assert bodies == events


def _collector(receiver: socket.socket) -> tuple[list[bytes], Callable[[], int]]:
    """Datagrams read so far from a non-blocking ``receiver``, and a poll that reads more
    and returns how many there are."""
    got: list[bytes] = []

    def pull() -> int:
        try:
            while True:
                got.append(receiver.recv(70000))
        except BlockingIOError:
            return len(got)

    return got, pull


def test_udp_receiver_gets_one_datagram_per_event() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    port = receiver.getsockname()[1]
    got, pull = _collector(receiver)

    events = [make_event(n) for n in range(5)]
    asyncio.run(_deliver(f"udp://127.0.0.1:{port}?facility=local0", events, pull))
    receiver.close()
    _check(got, events, facility=16)


def test_unix_datagram_receiver(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.setblocking(False)
    got, pull = _collector(receiver)

    events = [make_event(n) for n in range(3)]
    asyncio.run(_deliver(f"unix://{path}", events, pull))
    receiver.close()
    _check(got, events)


class TcpReceiver:
    """An RFC 6587 octet-counting receiver; drops the first connection after one frame."""

    def __init__(self, hang_up_first: bool) -> None:
        self.frames: list[bytes] = []
        self.hang_up_first = hang_up_first
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        first = self.connections == 1
        try:
            while True:
                length = int((await reader.readuntil(b" "))[:-1])
                self.frames.append(await reader.readexactly(length))
                if first and self.hang_up_first:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


def _ids(frames: list[bytes]) -> list[str]:
    return [json.loads(SYSLOG_RE.match(f.decode())["msg"])["id"] for f in frames]  # type: ignore[index]


def test_tcp_receiver_gets_octet_counted_frames_in_order() -> None:
    events = [make_event(n) for n in range(50)]
    receiver = TcpReceiver(hang_up_first=False)

    async def main() -> Metrics:
        server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await _deliver(f"tcp://127.0.0.1:{port}", events, lambda: len(receiver.frames))

    metrics = asyncio.run(main())
    _check(receiver.frames, events)
    assert metrics.registry.get_sample_value("gitaudit_sink_sent_total", {"sink": "syslog"}) == 50


def test_tcp_sink_reconnects_when_the_receiver_hangs_up() -> None:
    receiver = TcpReceiver(hang_up_first=True)

    async def main() -> None:
        server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        metrics = Metrics()
        hub = Hub(Settings(), metrics)
        settings = Settings({"syslog_address": f"tcp://127.0.0.1:{port}"})
        (sink,) = build_sinks(settings, hub, metrics, backoff_base=0.001)
        task = asyncio.create_task(sink.run())
        async with server:
            n = 0
            # keep sending: frames in flight when the receiver hangs up may be lost (syslog
            # has no acknowledgements), but the sink must notice and reconnect
            while receiver.connections < 2 or f"0190-{n - 1}" not in _ids(receiver.frames):
                assert n < 5000, "the sink never reconnected"
                hub.publish([make_event(n)])
                n += 1
                await asyncio.sleep(0.01)
            await sink.close()
            await task

    asyncio.run(main())
    assert receiver.connections >= 2
    assert _ids(receiver.frames)[0] == "0190-0"


def test_tcp_receiver_down_at_first_is_retried() -> None:
    placeholder = socket.socket()
    placeholder.bind(("127.0.0.1", 0))
    port = placeholder.getsockname()[1]
    placeholder.close()  # nothing listens there now: connection refused
    events = [make_event(n) for n in range(3)]
    receiver = TcpReceiver(hang_up_first=False)

    async def main() -> Metrics:
        metrics = Metrics()
        hub = Hub(Settings(), metrics)
        settings = Settings({"syslog_address": f"tcp://127.0.0.1:{port}"})
        (sink,) = build_sinks(settings, hub, metrics, backoff_base=0.001)
        task = asyncio.create_task(sink.run())
        hub.publish(events)

        def errors() -> float:
            sample = "gitaudit_sink_errors_total"
            return metrics.registry.get_sample_value(sample, {"sink": "syslog"}) or 0.0

        await _until(lambda: errors() >= 2)
        server = await asyncio.start_server(receiver.handle, "127.0.0.1", port)
        async with server:
            await _until(lambda: len(receiver.frames) >= 3)
            await sink.close()
            await task
        return metrics

    asyncio.run(main())
    _check(receiver.frames, events)


# --- events that cannot be formatted, and the real thing ---------------------------------------


def test_an_event_that_cannot_be_formatted_is_skipped_and_the_sink_goes_on() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    got, pull = _collector(receiver)

    broken = make_event(1, details={("not", "a", "json", "key"): 1})
    events = [make_event(0), broken, make_event(2)]
    metrics = asyncio.run(
        _deliver(f"udp://127.0.0.1:{receiver.getsockname()[1]}", events, lambda: pull() + 1)
    )
    receiver.close()
    _check(got, [events[0], events[2]])
    sample = metrics.registry.get_sample_value
    assert sample("gitaudit_sink_skipped_total", {"sink": "syslog"}) == 1
    assert sample("gitaudit_sink_sent_total", {"sink": "syslog"}) == 2


def test_the_daemon_forwards_a_non_ascii_repository_and_goes_on(
    daemons: Daemons, tmp_path: Path
) -> None:
    """Issue 8, defect 10: `gitaudit git init café` stopped the syslog sink for good."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(60)
    run = daemons(config={"syslog_address": f"udp://127.0.0.1:{receiver.getsockname()[1]}"})
    run.start()
    sandbox = GitSandbox(tmp_path)
    env = {"GITAUDIT_RUNTIME_DIR": str(run.runtime), "GITAUDIT_SOCKET_TIMEOUT": "10",
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    assert sandbox.audited("init", "-q", "café", env=env).returncode == 0
    repo = sandbox.root / "café"
    result = sandbox.audited("commit", "-q", "--allow-empty", "-m", "x", cwd=repo, env=env)
    assert result.returncode == 0, result.stderr
    received: list[dict[str, Any]] = []
    while not any(event["operation"] == "git.commit" for event in received):
        try:
            text = receiver.recv(70000).decode("utf-8")
        except TimeoutError:
            pytest.fail(f"the syslog sink stopped forwarding; daemon log:\n{run.log()[-3000:]}")
        match = SYSLOG_RE.match(text)
        assert match, text
        received.append(json.loads(match["msg"]))
        if received[-1]["operation"] == "git.commit":
            assert parse_sd(match["sd"])[1]["repo"] == "café"
    receiver.close()
    assert run.metrics().get('gitaudit_sink_skipped_total{sink="syslog"}', 0.0) == 0.0
    wait_for(lambda: run.metrics().get('gitaudit_sink_backlog{sink="syslog"}') == 0.0,
             "the syslog backlog to drain")
    assert run.stop() == 0
