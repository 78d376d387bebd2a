"""NDJSON framing and request parsing of the event socket (pure functions, no sockets)."""

from __future__ import annotations

import json

import pytest

from gitaudit.daemon import protocol
from gitaudit.daemon.api import Ack


def test_framer_splits_lines_across_chunks() -> None:
    framer = protocol.Framer(100)
    assert framer.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert framer.pending
    assert framer.feed(b":2}\n\n  \n") == [b'{"b":2}']
    assert not framer.pending


def test_framer_reports_an_overlong_line_once_and_resyncs() -> None:
    framer = protocol.Framer(10)
    frames = framer.feed(b"x" * 8)
    assert frames == []
    frames = framer.feed(b"x" * 8)
    assert frames == [protocol.Overlong(10)]
    assert framer.buffered == 0  # nothing of the long line is kept
    assert framer.feed(b"y" * 50) == []
    assert framer.feed(b"zz\nok\n") == [b"ok"]


def test_framer_overlong_line_complete_in_one_chunk() -> None:
    framer = protocol.Framer(4)
    assert framer.feed(b"12345\n1234\n") == [protocol.Overlong(4), b"1234"]


def test_parse_single_and_batch() -> None:
    assert protocol.parse_request(b'{"type":"event","event":{"id":"x"}}') == [{"id": "x"}]
    assert protocol.parse_request(b'{"type":"events","events":[{},{"a":1}]}') == [{}, {"a": 1}]
    assert protocol.parse_request(b'{"type":"events","events":[]}') == []


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"\xff\xfe{}", "utf8"),
        (b'{"type":"event","event":{"x":"\xc3("}}', "utf8"),
        (b"not json", "json"),
        (b'{"type":"event"', "json"),
        (b"[1,2]", "type"),
        (b'"text"', "type"),
        (b'{"type":5}', "type"),
        (b'{"type":"eventz","event":{}}', "type"),
        (b'{"type":"event","event":[1]}', "type"),
        (b'{"type":"events","events":{"a":1}}', "type"),
        (b'{"type":"events","events":[1]}', "type"),
        (b'{"no":"type"}', "type"),
    ],
)
def test_malformed_requests(line: bytes, reason: str) -> None:
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.parse_request(line)
    assert caught.value.reason == reason
    assert str(caught.value)


@pytest.mark.parametrize("depth", [65, 500, 100_000])
def test_nesting_deeper_than_64_is_refused(depth: int) -> None:
    inner = "[" * depth + "]" * depth
    line = f'{{"type":"event","event":{{"details":{{"x":{inner}}}}}}}'.encode()
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.parse_request(line)
    assert caught.value.reason == "depth"


def test_nesting_of_64_is_allowed() -> None:
    # message (1) > event (2) > details (3) > 61 nested lists
    inner = "[" * 61 + "]" * 61
    line = f'{{"type":"event","event":{{"details":{{"x":{inner}}}}}}}'.encode()
    assert len(protocol.parse_request(line)) == 1


def test_answers_are_single_json_lines() -> None:
    acks = protocol.encode_acks([Ack("a", "accepted"), Ack(None, "rejected", "bad\nthing")])
    assert acks.endswith(b"\n") and acks.count(b"\n") == 1
    assert json.loads(acks) == {
        "type": "ack",
        "acks": [
            {"id": "a", "status": "accepted", "error": None},
            {"id": None, "status": "rejected", "error": "bad\nthing"},
        ],
    }
    error = protocol.encode_error("not JSON", 7)
    assert protocol.parse_answer(error.rstrip(b"\n")) == {
        "type": "error",
        "error": "not JSON",
        "line": 7,
    }


def test_request_round_trip() -> None:
    line = protocol.encode_request([{"id": "1"}])
    assert protocol.parse_request(line.rstrip(b"\n")) == [{"id": "1"}]


@pytest.mark.parametrize(
    ("line", "free"),
    [
        (b'{"type":"event","event":{"x":"caf\xc3\xa9 \\u00e9"}}', True),
        (b'{"type":"event","event":{"x":"\\ud800"}}', False),
        (b'{"type":"event","event":{"x":"\\uDC80"}}', False),
        (b'{"type":"event","event":{"x":"\\\\ud800 is text"}}', False),  # conservative
    ],
)
def test_surrogate_free_lines(line: bytes, free: bool) -> None:
    assert protocol.surrogate_free(line) is free
    if free:
        for event in protocol.parse_request(line):
            json.dumps(event, ensure_ascii=False).encode("utf-8")  # no lone surrogate
