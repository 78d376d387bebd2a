"""The daemon's OTLP/HTTP logs receiver: Claude Code's telemetry over real loopback HTTP,
into a real store (SQLite; PostgreSQL for the outage test)."""

from __future__ import annotations

import collections
import gzip
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitaudit.claude import otel_map
from tests.claude_code.otlp_client import (
    FIXTURES,
    JSON,
    PROTOBUF,
    OtlpClient,
    api_request,
    claude_record,
    export_request,
    post_once,
    to_json,
)
from tests.cli.helpers import isolated_env
from tests.daemon.daemon_harness import DaemonRun, Daemons, free_port, wait_for
from tests.daemon.test_faults import _pg_start, _pg_stop, _store_down
from tests.pg import PgServer

CLI_SESSION_JSON = FIXTURES / "cli-2.1.197-session.json"
CLI_SESSION_PB = FIXTURES / "cli-2.1.197-session.pb"
CLI_API_ERROR = FIXTURES / "cli-2.1.197-api-error.json"
NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-5c6d-9e0f-1a2b3c4d5e6f")


def prompt_anchor(session_id: str, prompt_id: str) -> str:
    """The contract's prompt event id (cc-shared: uuid5 over claude-code/prompt/...)."""
    return str(uuid.uuid5(NAMESPACE, f"claude-code/prompt/{session_id}/{prompt_id}"))


class Receiver:
    """A daemon with the OTLP receiver on a free loopback port."""

    def __init__(self, run: DaemonRun, port: int) -> None:
        self.run = run
        self.port = port

    def post(self, body: bytes, content_type: str = PROTOBUF, **kwargs: Any) -> Any:
        return post_once(self.port, body, content_type, **kwargs)

    def stored_session(self, session_id: str, count: int) -> list[dict[str, Any]]:
        def found() -> list[dict[str, Any]] | None:
            events = [e for e in self.run.stored() if e["correlation_id"] == session_id]
            return events if len(events) >= count else None

        events: list[dict[str, Any]] = wait_for(found, f"{count} event(s) of {session_id}")
        return events


def start_receiver(daemons: Daemons, **config: Any) -> Receiver:
    port = free_port()
    run = daemons(config={"otlp_address": f"127.0.0.1:{port}", **config}).start()
    return Receiver(run, port)


@pytest.fixture
def daemons() -> Iterator[Daemons]:
    """Daemons started by one test, stopped afterwards."""
    made = Daemons()
    yield made
    made.cleanup()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    made = Daemons()
    try:
        yield start_receiver(made)
    finally:
        made.cleanup()


def new_session() -> tuple[str, str]:
    return str(uuid.uuid4()), str(uuid.uuid4())


# --- bodies captured from the real CLI ------------------------------------------------------------


def _cli_session(path: Path) -> str:
    records = otel_map.decode(path.read_bytes(), JSON if path.suffix == ".json" else PROTOBUF)
    return str(records[0].attributes["session.id"])


def test_cli_json_body_becomes_requests_and_a_tool_decision(receiver: Receiver) -> None:
    answer = receiver.post(CLI_SESSION_JSON.read_bytes(), JSON)
    assert answer.status == 200, answer.body
    assert answer.headers["content-type"] == JSON
    partial = answer.json()["partialSuccess"]  # user_prompt, tool_result, assistant_response
    assert partial["rejectedLogRecords"] == "3"
    assert "claude_code.tool_result x1" in partial["errorMessage"]
    session = _cli_session(CLI_SESSION_JSON)
    events = receiver.stored_session(session, 3)
    assert collections.Counter(e["operation"] for e in events) == {
        "claude.request": 2, "claude.tool_use": 1,
    }  # fmt: skip
    prompt = "23e05194-dd60-49b8-8a06-4e72717180a9"
    for event in events:
        assert event["source"] == "claude_code"
        assert event["parent_id"] == prompt_anchor(session, prompt)
        assert event["details"]["prompt_id"] == prompt
        assert event["actor"]["uid"] == os.getuid() and event["actor"]["verified"] is True
        assert event["details"]["claude_code_version"] == "2.1.197"
    request = next(e for e in events if e["operation"] == "claude.request")
    found = request["details"]
    assert found["model"] == "claude-opus-4-8"
    assert (found["input_tokens"], found["output_tokens"]) == (120, 30)
    assert found["cache_read_input_tokens"] == 0 and found["cache_creation_input_tokens"] == 0
    assert found["cost_usd"] == pytest.approx(0.00135) and found["cost_source"] == "claude_code"
    assert found["request_id"] == "req_fake1" and found["latency_ms"] == 42.0
    assert request["outcome"] == "success"
    decision = next(e for e in events if e["operation"] == "claude.tool_use")
    assert decision["details"]["phase"] == "decision"
    assert decision["details"]["decision"] == "accept"
    assert decision["details"]["decision_source"] == "config"
    assert decision["details"]["tool"] == "Bash"
    assert decision["details"]["tool_use_id"] == "toolu_01ABC0"


def test_cli_protobuf_body_is_recorded_and_answered_in_protobuf(receiver: Receiver) -> None:
    answer = receiver.post(CLI_SESSION_PB.read_bytes(), PROTOBUF)
    assert answer.status == 200
    assert answer.headers["content-type"] == PROTOBUF
    assert answer.response().partial_success.rejected_log_records == 3
    events = receiver.stored_session(_cli_session(CLI_SESSION_PB), 3)
    assert sorted(e["operation"] for e in events) == [
        "claude.request", "claude.request", "claude.tool_use",
    ]  # fmt: skip


def test_cli_api_error_is_a_failed_request(receiver: Receiver) -> None:
    assert receiver.post(CLI_API_ERROR.read_bytes(), JSON).status == 200
    (event,) = receiver.stored_session(_cli_session(CLI_API_ERROR), 1)
    assert event["operation"] == "claude.request" and event["outcome"] == "failure"
    assert event["details"]["status_code"] == 400
    assert event["details"]["attempts"] == 1
    assert event["details"]["request_id"] == "req_err1"
    assert event["result"]["error"] == "prompt is too long"


def test_a_retried_batch_is_stored_once(receiver: Receiver) -> None:
    session, prompt = new_session()
    body = export_request([api_request(session, 1, prompt), api_request(session, 2, prompt)])
    for _ in range(3):
        assert receiver.post(body.SerializeToString()).status == 200
    receiver.stored_session(session, 2)
    time.sleep(0.5)  # give a wrong third row the chance to land (not a timing assertion)
    stored = [e for e in receiver.run.stored() if e["correlation_id"] == session]
    assert len(stored) == 2


# --- hand-built bodies from the documented shapes ----------------------------------------------


def test_documented_shapes_json_with_string_ints_and_account_attributes(
    receiver: Receiver,
) -> None:
    session, prompt = new_session()
    request = export_request(
        [
            api_request(session, 1, prompt, model="claude-sonnet-5-5", input_tokens=1000,
                        cache_read_tokens=5000, cache_creation_tokens=200, cost_usd=0.25),
            claude_record("tool_decision", session, 2, prompt_id=prompt, tool_name="Edit",
                          decision="reject", source="user_reject", tool_use_id="toolu_9"),
            claude_record("api_error", session, 3, prompt_id=prompt, model="claude-sonnet-5-5",
                          error="Overloaded", status_code="529", duration_ms="1500",
                          attempt=3),
            claude_record("some_future_event", session, 4, prompt_id=prompt),
        ],
        **{"user.email": "dev@example.com", "organization.id": "org-1",
           "user.account_uuid": "acc-1"},
    )  # fmt: skip
    body = to_json(request)
    assert b'"intValue": "1000"' in body  # the OTLP/JSON spelling of int64
    answer = receiver.post(body, JSON)
    assert answer.status == 200
    assert answer.json()["partialSuccess"]["rejectedLogRecords"] == "1"
    events = {e["details"]["event_sequence"]: e for e in receiver.stored_session(session, 3)}
    assert events[1]["details"]["cache_read_input_tokens"] == 5000
    assert events[1]["details"]["cost_usd"] == 0.25
    assert events[1]["details"]["claude_user"]["organization_id"] == "org-1"
    assert events[1]["details"]["claude_user"]["account_uuid"] == "acc-1"
    assert events[2]["operation"] == "claude.tool_use" and events[2]["outcome"] == "failure"
    assert events[2]["details"]["decision_source"] == "user_reject"
    assert events[3]["details"]["status_code"] == 529
    assert events[3]["details"]["latency_ms"] == 1500.0
    assert events[3]["details"]["attempts"] == 3
    metrics = receiver.run.metrics()
    assert metrics['gitaudit_otlp_records_total{event="other",outcome="skipped"}'] >= 1


def test_a_record_without_a_prompt_points_at_the_session(receiver: Receiver) -> None:
    session, _ = new_session()
    receiver.post(export_request([api_request(session, 1, None)]).SerializeToString())
    (event,) = receiver.stored_session(session, 1)
    assert event["parent_id"] == str(uuid.uuid5(NAMESPACE, f"claude-code/session/{session}/"))


def test_gzip_bodies_are_read(receiver: Receiver) -> None:
    session, prompt = new_session()
    body = export_request([api_request(session, 1, prompt)]).SerializeToString()
    assert receiver.post(body, gzipped=True).status == 200
    json_session, json_prompt = new_session()
    json_body = to_json(export_request([api_request(json_session, 1, json_prompt)]))
    assert receiver.post(json_body, JSON, gzipped=True).status == 200
    receiver.stored_session(session, 1)
    receiver.stored_session(json_session, 1)


def test_a_large_batch_is_read_whole(receiver: Receiver) -> None:
    session, prompt = new_session()
    body = export_request([api_request(session, n, prompt) for n in range(2000)])
    data = body.SerializeToString()
    assert 256 * 1024 < len(data) < 4 * 1024 * 1024  # decoded off the event loop
    assert receiver.post(data).status == 200
    events = receiver.stored_session(session, 2000)
    assert len({e["details"]["event_sequence"] for e in events}) == 2000


def test_keep_alive_connection_serves_many_requests(receiver: Receiver) -> None:
    session, prompt = new_session()
    client = OtlpClient(receiver.port)
    try:
        for sequence in range(20):
            body = export_request([api_request(session, sequence, prompt)]).SerializeToString()
            assert client.post(body).status == 200
        assert client.post(b"garbage").status == 400  # a bad body does not end the connection
        assert client.post(export_request([]).SerializeToString()).status == 200
    finally:
        client.close()
    receiver.stored_session(session, 20)


def test_chunked_body_like_the_cli_sends(receiver: Receiver) -> None:
    session, prompt = new_session()
    body = export_request([api_request(session, 1, prompt)]).SerializeToString()
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=30) as sock:
        head = (b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
        half = len(body) // 2
        parts = (body[:half], body[half:])
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)
        sock.sendall(head + chunks + b"0\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
    receiver.stored_session(session, 1)


# --- refusals ---------------------------------------------------------------------------------


def _raw(port: int, data: bytes) -> bytes:
    """Send ``data``, read the answer until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        answer = b""
        while True:
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
        return answer


def test_oversize_body_is_refused_413_without_being_read(daemons: Daemons) -> None:
    small = start_receiver(daemons, otlp_max_bytes=10_000)
    # announced too large: answered from the headers alone (the body never comes)
    head = (b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 50000000\r\n\r\n")  # fmt: skip
    assert _raw(small.port, head + b"\x0a" * 100).startswith(b"HTTP/1.1 413 ")
    # chunked past the limit: refused once it is passed
    big = b"\x00" * 20_000
    chunked = (b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n" % (len(big), big))  # fmt: skip
    answer = _raw(small.port, chunked)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"otlp_max_bytes" in answer
    # a gzip bomb: under 10,000 bytes on the wire, 9 MB inflated, refused at 10,000 inflated
    bomb = gzip.compress(b"\x00" * 9_000_000)
    assert len(bomb) < 10_000
    answer_bomb = small.post(bomb, gzipped=False, headers={"Content-Encoding": "gzip"})
    assert answer_bomb.status == 413
    metrics = small.run.metrics()
    assert metrics['gitaudit_otlp_bad_requests_total{reason="too_large"}'] == 3
    small.run.assert_running()


def test_garbage_is_400_with_a_status(receiver: Receiver) -> None:
    answer = receiver.post(b"\xff\xff\xff\xff not protobuf", PROTOBUF)
    assert answer.status == 400
    assert b"not an OTLP protobuf" in answer.body
    answer_json = receiver.post(b"{not json", JSON)
    assert answer_json.status == 400
    status = answer_json.json()
    assert status["code"] == 3 and "not JSON" in status["message"]
    assert receiver.post(b'{"resourceLogs": 5}', JSON).status == 400
    assert receiver.post(b"not gzip at all", PROTOBUF, headers={"Content-Encoding": "gzip"}
                         ).status == 400  # fmt: skip


def test_wrong_content_type_path_and_method(receiver: Receiver) -> None:
    answer = receiver.post(b"hello", "text/plain")
    assert answer.status == 415
    assert b"application/x-protobuf" in answer.body
    assert receiver.post(b"x", PROTOBUF, headers={"Content-Encoding": "br"}).status == 415
    assert receiver.post(b"", PROTOBUF, path="/v1/traces").status == 404
    answer_get = receiver.post(b"", PROTOBUF, method="GET")
    assert answer_get.status == 405
    assert answer_get.headers["allow"] == "POST"
    metrics = receiver.run.metrics()
    assert metrics['gitaudit_otlp_bad_requests_total{reason="content_type"}'] >= 1
    assert metrics['gitaudit_otlp_bad_requests_total{reason="not_found"}'] >= 1
    assert metrics['gitaudit_otlp_bad_requests_total{reason="method"}'] >= 1


def test_off_unless_configured(daemons: Daemons) -> None:
    run = daemons().start()
    assert '"otlp"' not in run.log()
    assert "gitaudit_otlp_requests_total" not in str(run.metrics())
    assert run.stop() == 0


def test_ipv6_loopback_with_the_uid_from_tcp6(daemons: Daemons) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    port = free_port()
    run = daemons(config={"otlp_address": f"[::1]:{port}"}).start()
    session, prompt = new_session()
    conn = http.client.HTTPConnection("::1", port, timeout=30)
    conn.request("POST", "/v1/logs", headers={"Content-Type": PROTOBUF},
                 body=export_request([api_request(session, 1, prompt)]).SerializeToString())
    assert conn.getresponse().status == 200
    conn.close()
    (event,) = Receiver(run, port).stored_session(session, 1)
    assert event["actor"]["uid"] == os.getuid() and event["actor"]["verified"] is True


def test_non_loopback_address_is_refused_at_start(daemons: Daemons) -> None:
    run = daemons(config={"otlp_address": f"0.0.0.0:{free_port()}"})
    run.start(wait=False)
    assert run.process is not None
    assert run.process.wait(60) != 0
    assert "not a loopback address" in run.log()
    assert "GITAUDIT_OTLP_ALLOW_REMOTE" in run.log()


# --- who sent it --------------------------------------------------------------------------------

SENDER = """
import encodings.idna, http.client, os, sys
body = open(sys.argv[2], "rb").read()
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
os.setgid(65534); os.setuid(65534)
conn.request("POST", "/v1/logs", body=body, headers={"Content-Type": "application/x-protobuf"})
print(conn.getresponse().status)
"""


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to send as another user")
def test_sender_uid_comes_from_the_kernel_socket_table(receiver: Receiver,
                                                       tmp_path: Path) -> None:
    session, prompt = new_session()
    body = tmp_path / "body.pb"
    body.write_bytes(export_request([api_request(session, 1, prompt)]).SerializeToString())
    sent = subprocess.run(
        [sys.executable, "-c", SENDER, str(receiver.port), str(body)],
        capture_output=True, text=True, check=False, cwd="/",
    )  # fmt: skip
    assert sent.stdout.strip() == "200", sent.stderr
    (event,) = receiver.stored_session(session, 1)
    assert event["actor"]["uid"] == 65534
    assert event["actor"]["verified"] is True
    assert "peer_pid" not in event["details"]


def test_tcp_peer_uid_reads_the_kernel_table() -> None:
    from gitaudit.daemon.otlp_receiver import tcp_peer_uid

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            accepted, _ = server.accept()
            with accepted:
                assert tcp_peer_uid(accepted.getpeername(), accepted.getsockname()) == os.getuid()
                del client
    assert tcp_peer_uid(("127.0.0.1", 1), ("127.0.0.1", 2)) is None


# --- secrets ------------------------------------------------------------------------------------


def test_secrets_in_attributes_are_redacted(receiver: Receiver) -> None:
    token = "ghp_" + "Zq9" * 12
    session, prompt = new_session()
    request = export_request([
        claude_record("api_error", session, 1, prompt_id=prompt, model="claude-opus-4-8",
                      error=f"401 from proxy: Authorization: Bearer {token}", status_code=401),
        api_request(session, 2, prompt, request_id=f"req_{token}"),
    ], **{"user.email": f"{token}@example.com"})  # fmt: skip
    assert receiver.post(request.SerializeToString()).status == 200
    receiver.stored_session(session, 2)
    receiver.run.stop()
    try:
        for path in receiver.run.root.rglob("*"):
            if path.is_file():
                assert token.encode() not in path.read_bytes(), path
    finally:
        receiver.run.start()


# --- fuzz -----------------------------------------------------------------------------------------

_CAPTURED = CLI_SESSION_PB.read_bytes()
_mutated = st.lists(st.tuples(st.integers(0, len(_CAPTURED) - 1), st.integers(0, 255)),
                    min_size=1, max_size=8).map(
    lambda edits: bytes(_apply(bytearray(_CAPTURED), edits)))  # fmt: skip


def _apply(data: bytearray, edits: list[tuple[int, int]]) -> bytearray:
    for index, value in edits:
        data[index] = value
    return data


_shapes = st.one_of(
    st.binary(max_size=300),
    _mutated,
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                  st.floats(allow_nan=False)),
        lambda inner: st.one_of(st.lists(inner, max_size=4),
                                st.dictionaries(st.sampled_from(
                                    ["resourceLogs", "scopeLogs", "logRecords", "attributes",
                                     "key", "value", "stringValue", "intValue", "body",
                                     "kvlistValue", "arrayValue", "values", "timeUnixNano"]),
                                    inner, max_size=4)),
        max_leaves=20,
    ).map(lambda value: json.dumps(value).encode()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=_shapes, content_type=st.sampled_from([JSON, PROTOBUF]), gzipped=st.booleans())
def test_fuzzed_bodies_never_break_the_receiver(receiver: Receiver, body: bytes,
                                                content_type: str, gzipped: bool) -> None:
    answer = receiver.post(body, content_type, gzipped=gzipped)
    assert answer.status in {200, 400}, (answer.status, answer.body)
    if answer.status == 200 and content_type == PROTOBUF:
        answer.response()  # a well-formed ExportLogsServiceResponse


def test_canary_lands_after_the_fuzz(receiver: Receiver) -> None:
    session, prompt = new_session()
    assert receiver.post(export_request([api_request(session, 1, prompt)]).SerializeToString()
                         ).status == 200  # fmt: skip
    receiver.stored_session(session, 1)
    receiver.run.assert_running()


# --- the store goes away -------------------------------------------------------------------------


def test_store_down_1000_requests_answered_from_the_journal_none_lost(
    daemons: Daemons, pg_server: PgServer, pg_fresh_url: str
) -> None:
    port = free_port()
    run = daemons(database_url=pg_fresh_url,
                  config={"otlp_address": f"127.0.0.1:{port}"}).start()  # fmt: skip
    session, prompt = new_session()
    client = OtlpClient(port)
    assert client.post(export_request([api_request(session, 0, prompt)]).SerializeToString()
                       ).status == 200  # fmt: skip
    Receiver(run, port).stored_session(session, 1)  # the store works
    _pg_stop(pg_server)
    try:
        for sequence in range(1, 1001):
            body = export_request([api_request(session, sequence, prompt)]).SerializeToString()
            answer = client.post(body)
            assert answer.status == 200, answer.body
        wait_for(lambda: _store_down(run), "the daemon to notice the store is down")
    finally:
        _pg_start(pg_server)
        client.close()

    def all_there() -> bool:
        try:
            stored = [e for e in run.stored() if e["correlation_id"] == session]
        except Exception:  # noqa: BLE001 - the server is still starting
            return False
        return len(stored) >= 1001

    wait_for(all_there, "1001 rows once the store is back", timeout=180)
    stored = [e for e in run.stored() if e["correlation_id"] == session]
    counts = collections.Counter(e["details"]["event_sequence"] for e in stored)
    assert sorted(counts) == list(range(1001))
    assert max(counts.values()) == 1
    assert run.stop() == 0


def test_fixture_files_are_what_the_cli_sent() -> None:
    """The fixtures are raw bodies of Claude Code 2.1.197 (see README); both formats decode."""
    assert [r.name for r in otel_map.decode(CLI_SESSION_PB.read_bytes(), PROTOBUF)] == [
        "claude_code.user_prompt", "claude_code.tool_decision", "claude_code.api_request",
        "claude_code.tool_result", "claude_code.api_request", "claude_code.assistant_response",
    ]  # fmt: skip


def test_store_down_with_reject_mode_answers_503_retry_after_then_recovers(
    daemons: Daemons, pg_server: PgServer, pg_fresh_url: str
) -> None:
    port = free_port()
    run = daemons(database_url=pg_fresh_url,
                  config={"otlp_address": f"127.0.0.1:{port}", "on_store_failure": "reject"}
                  ).start()  # fmt: skip
    session, prompt = new_session()
    client = OtlpClient(port)
    sequence = iter(range(1_000_000))

    def send() -> Any:
        body = export_request([api_request(session, next(sequence), prompt)])
        return client.post(body.SerializeToString())

    assert send().status == 200
    Receiver(run, port).stored_session(session, 1)
    _pg_stop(pg_server)
    try:
        refused = wait_for(lambda: (answer := send()).status == 503 and answer,
                           "a 503 while the store is down")  # fmt: skip
        assert refused.headers["retry-after"] == "5"
        assert refused.body.startswith(b"\x08\x0e")  # google.rpc.Status code 14, UNAVAILABLE
        assert run.metrics()['gitaudit_otlp_bad_requests_total{reason="unavailable"}'] >= 1
    finally:
        _pg_start(pg_server)
    wait_for(lambda: send().status == 200, "200 again once the store is back")
    client.close()
    assert run.stop() == 0


def test_claude_usage_sums_requests_recorded_from_telemetry(daemons: Daemons,
                                                             tmp_path: Path) -> None:

    receiver_run = start_receiver(daemons)
    session, prompt = new_session()
    body = export_request([
        api_request(session, 1, prompt, model="claude-haiku-5-5", input_tokens=1000,
                    output_tokens=100, cost_usd=0.25),
        api_request(session, 2, prompt, model="claude-haiku-5-5", input_tokens=500,
                    output_tokens=50, cost_usd=0.125),
    ])  # fmt: skip
    assert receiver_run.post(body.SerializeToString()).status == 200
    receiver_run.stored_session(session, 2)
    env = isolated_env(tmp_path, GITAUDIT_DATABASE_URL=receiver_run.run.database_url)
    done = subprocess.run(
        [sys.executable, "-m", "gitaudit", "claude", "usage", "--by", "model", "--format",
         "json", "--no-ingest"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    row = {row["key"]: row for row in json.loads(done.stdout)["rows"]}[
        "claude-haiku-5-5"]
    assert row["requests"] == 2 and row["input_tokens"] == 1500 and row["unpriced"] == 0
    assert row["cost_usd"] == pytest.approx(0.375)


def test_hash_user_ids_pseudonymizes_the_claude_account(daemons: Daemons,
                                                         tmp_path: Path) -> None:
    from gitaudit.sanitize import pseudonymize

    key_file = tmp_path / "user-id.key"
    key_file.write_bytes(b"k" * 32)
    hashed = start_receiver(daemons, hash_user_ids=True, user_id_key_file=str(key_file))
    session, prompt = new_session()
    request = export_request([api_request(session, 1, prompt)],
                             **{"user.email": "Dev@Example.com", "organization.id": "org-7",
                                "user.account_uuid": "acc-7"})  # fmt: skip
    assert hashed.post(request.SerializeToString()).status == 200
    (event,) = hashed.stored_session(session, 1)
    account = event["details"]["claude_user"]
    assert account["email"] == pseudonymize("dev@example.com", b"k" * 32)
    assert account["account_uuid"] == pseudonymize("acc-7", b"k" * 32)
    assert account["id"].startswith("anon:")
    assert account["organization_id"] == "org-7"
    assert b"Example.com" not in (hashed.run.root / "audit.db").read_bytes()
