"""The audited client: the real SDK against a fake endpoint, events checked in the store."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types import Message

from gitaudit.claude import AuditedAnthropic
from tests.claude import fake
from tests.claude.fake import Endpoint, ask


def _only(audit: Any) -> dict[str, Any]:
    events = fake.stored(audit)
    assert len(events) == 1, events
    return events[0]


def test_success_records_one_event_with_usage_cost_and_ids(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)
    endpoint = Endpoint(fake.ok(request_id="req_0123"))
    seen: list[dict[str, Any]] = []
    client = fake.client(
        endpoint, audit, on_record=seen.append,
        audit_parent_id="parent-1", audit_correlation_id="corr-1",
    )  # fmt: skip

    result = client.messages.create(**ask())

    assert type(result) is Message and result.content[0].text == "Hello there"  # type: ignore[union-attr]
    assert result._request_id == "req_0123"
    event = _only(audit)
    assert [item["id"] for item in seen] == [event["id"]]
    assert event["operation"] == "claude.request" and event["source"] == "claude"
    assert event["outcome"] == "success"
    assert (event["parent_id"], event["correlation_id"]) == ("parent-1", "corr-1")
    assert event["actor"]["uid"] == os.getuid() and event["actor"]["host"]
    details = event["details"]
    assert details["model"] == fake.MODEL and details["response_model"] == fake.RESPONDED
    assert (details["input_tokens"], details["output_tokens"]) == (1200, 300)
    assert details["stop_reason"] == "end_turn" and details["streaming"] is False
    assert details["request_id"] == "req_0123" and details["attempts"] == 1
    sent = endpoint.requests[0].headers["x-client-request-id"]
    assert details["client_request_id"] == sent
    # Sonnet 4.5: $3 in, $15 out per million tokens
    assert details["cost_usd"] == pytest.approx((1200 * 3 + 300 * 15) / 1e6)
    assert details["cost_source"] == "estimate"
    assert details["price_table"].startswith("anthropic-")
    assert len(details["prompt_sha256"]) == 64 and len(details["response_sha256"]) == 64
    assert details["latency_ms"] >= 0 and event["duration_ms"] == details["latency_ms"]
    assert "input_messages" not in details and "output_text" not in details  # capture off


def test_ids_come_from_the_environment_else_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    audit = fake.settings(tmp_path)
    monkeypatch.setenv("GITAUDIT_PARENT_ID", "env-parent")
    monkeypatch.setenv("GITAUDIT_CORRELATION_ID", "env-corr")
    fake.client(Endpoint(), audit).messages.create(**ask())
    monkeypatch.delenv("GITAUDIT_PARENT_ID")
    monkeypatch.delenv("GITAUDIT_CORRELATION_ID")
    for name in ("GITHUB_ACTIONS", "GITLAB_CI", "CI", "BUILDKITE", "CIRCLECI", "JENKINS_URL"):
        monkeypatch.delenv(name, raising=False)
    fresh = fake.client(Endpoint(), audit)
    fresh.messages.create(**ask())
    first, second = fake.stored(audit)
    assert (first["parent_id"], first["correlation_id"]) == ("env-parent", "env-corr")
    assert second["parent_id"] is None
    assert second["correlation_id"] == fresh.audit_correlation_id != "env-corr"


def test_stream_manager_records_time_to_first_token(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)
    client = fake.client(Endpoint(fake.streamed(fake.sse_events(("Hel", "lo")))), audit)

    with client.messages.stream(**ask()) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "Hello" and final.usage.output_tokens == 7
    details = _only(audit)["details"]
    assert details["streaming"] is True and details["stop_reason"] == "end_turn"
    assert (details["input_tokens"], details["output_tokens"]) == (25, 7)
    assert details["time_to_first_token_ms"] is not None
    assert details["request_id"] == "req_stream"
    assert details["response_chars"] == 5


def test_create_with_stream_true_returns_the_sdk_stream(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)
    client = fake.client(Endpoint(fake.streamed(fake.sse_events())), audit)

    stream = client.messages.create(**ask(), stream=True)

    assert type(stream) is anthropic.Stream
    kinds = [event.type for event in stream]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    event = _only(audit)
    assert event["outcome"] == "success" and event["details"]["output_tokens"] == 7


def test_stream_cut_half_way_is_a_failure_and_the_caller_sees_the_sdk_error(
    tmp_path: Path,
) -> None:
    audit = fake.settings(tmp_path)
    chunks = fake.sse_events(("a", "b", "c", "d"))
    plain = anthropic.Anthropic(
        api_key="x", max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(
            Endpoint(fake.streamed(chunks, cut_after=4)))),
    )  # fmt: skip
    with pytest.raises(Exception) as expected, plain.messages.stream(**ask()) as stream:
        list(stream.text_stream)
    client = fake.client(Endpoint(fake.streamed(chunks, cut_after=4)), audit)

    got: list[str] = []
    with pytest.raises(type(expected.value)), client.messages.stream(**ask()) as stream:
        got.extend(stream.text_stream)

    assert got == ["a", "b"]
    assert isinstance(expected.value, httpx2.ReadError | anthropic.APIConnectionError)
    event = _only(audit)
    assert event["outcome"] == "failure"
    assert event["details"]["error_type"] == type(expected.value).__name__
    assert event["details"]["time_to_first_token_ms"] is not None
    assert event["result"]["error"]


def test_stream_that_ends_before_message_stop_is_a_failure(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)
    client = fake.client(Endpoint(fake.streamed(fake.sse_events()[:3])), audit)

    events = list(client.messages.create(**ask(), stream=True))

    assert len(events) == 3  # the SDK gives what came; the record says it was cut
    event = _only(audit)
    assert event["outcome"] == "failure"
    assert event["details"]["error_type"] == "IncompleteStream"


def test_429_then_success_after_the_sdk_retry(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)
    endpoint = Endpoint(fake.error(429, "rate_limit_error", **{"retry-after-ms": "1"}), fake.ok())
    client = fake.client(endpoint, audit, max_retries=2)

    client.messages.create(**ask())

    assert len(endpoint.requests) == 2
    ids = {request.headers["x-client-request-id"] for request in endpoint.requests}
    assert len(ids) == 1  # one call, one id over its retries
    event = _only(audit)
    assert event["outcome"] == "success" and event["details"]["attempts"] == 2
    assert event["details"]["client_request_id"] in ids


def test_429_after_the_last_retry_is_a_failure(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)
    endpoint = Endpoint(fake.error(429, "rate_limit_error", **{"retry-after-ms": "1"}))
    client = fake.client(endpoint, audit, max_retries=1)

    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(**ask())

    details = _only(audit)["details"]
    assert (details["status_code"], details["error_type"]) == (429, "RateLimitError")
    assert details["attempts"] == 2 and details["cost_source"] == "no_usage"
    assert details["cost_usd"] is None


def test_500_raises_unchanged_and_records_status(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)
    client = fake.client(Endpoint(fake.error(500, "api_error", request_id="req_500")), audit)

    with pytest.raises(anthropic.InternalServerError) as raised:
        client.messages.create(**ask())

    assert raised.value.status_code == 500
    event = _only(audit)
    assert event["outcome"] == "failure"
    assert event["details"]["status_code"] == 500
    assert event["details"]["error_type"] == "InternalServerError"
    assert event["details"]["request_id"] == "req_500"
    assert "InternalServerError" in event["result"]["error"]


def test_overloaded_529(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)
    client = fake.client(Endpoint(fake.error(529, "overloaded_error")), audit)
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(**ask())
    assert _only(audit)["details"]["status_code"] == 529


def test_timeout(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)
    client = fake.client(Endpoint(httpx2.ReadTimeout("read timed out")), audit)

    with pytest.raises(anthropic.APITimeoutError):
        client.messages.create(**ask())

    event = _only(audit)
    assert event["outcome"] == "failure"
    assert event["details"]["error_type"] == "APITimeoutError"
    assert event["details"]["status_code"] is None
    assert event["details"]["client_request_id"]  # the server never answered: ours is the id


def test_connection_refused_on_loopback(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = AuditedAnthropic(
        api_key="sk-ant-fake", base_url=f"http://127.0.0.1:{port}", max_retries=0,
        audit_settings=audit,
    )  # fmt: skip

    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(**ask())

    event = _only(audit)
    assert event["outcome"] == "failure"
    assert event["details"]["error_type"] == "APIConnectionError"
    assert event["details"]["server_address"] == "127.0.0.1"


SECRETS = {
    "token": "ghp_" + "Zx8Kq2Lm4Np6Rs8Tv0Wy2Ab4Cd6Ef8Gh0Ij2",
    "aws": "AKIA" + "QX7LMNB2RT4YZW6P",
    "aws_secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY",
    "key_body": "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM2n2bJ3bQ" + "XWkYq8s9Tn5v",
}
PROMPT = (
    "Merge these:\n"
    f"GITHUB_TOKEN={SECRETS['token']}\n"
    f"aws_access_key_id = {SECRETS['aws']}\n"
    f"aws_secret_access_key = {SECRETS['aws_secret']}\n"
    "-----BEGIN RSA PRIVATE KEY-----\n"
    f"{SECRETS['key_body']}\n"
    "-----END RSA PRIVATE KEY-----\n"
)


def test_leaked_secrets_in_the_prompt_are_redacted_in_the_event_and_side_copy(
    tmp_path: Path,
) -> None:
    prompt_dir = tmp_path / "prompts"
    audit = fake.settings(tmp_path, capture_prompts=True, prompt_dir=str(prompt_dir))
    answer = fake.ok(fake.message(f"done, kept {SECRETS['token']}"))
    client = fake.client(Endpoint(answer), audit)

    client.messages.create(**ask(PROMPT))

    event = _only(audit)
    text = json.dumps(event)
    for value in SECRETS.values():
        assert value not in text
    assert "[REDACTED" in json.dumps(event["details"]["input_messages"])
    assert "Merge these" in json.dumps(event["details"]["input_messages"])
    assert "[REDACTED" in event["details"]["output_text"]
    side = event["details"]["prompt_file"]
    path = prompt_dir / side["name"]
    assert stat.S_IMODE(prompt_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    import hashlib

    assert hashlib.sha256(data).hexdigest() == side["sha256"]
    for value in SECRETS.values():
        assert value.encode() not in data


def test_prompt_text_is_not_stored_by_default(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path, prompt_dir=str(tmp_path / "prompts"))
    fake.client(Endpoint(), audit).messages.create(**ask(PROMPT))
    details = _only(audit)["details"]
    assert "input_messages" not in details and "prompt_file" not in details
    assert not (tmp_path / "prompts").exists()
    assert details["prompt_bytes"] > len(PROMPT)


def test_daemon_down_events_are_spooled_and_nothing_is_lost(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    stale = socket.socket(socket.AF_UNIX)  # a daemon that died: its socket file is left
    stale.bind(str(run / "events.sock"))
    stale.close()
    client = fake.client(Endpoint(), audit)

    for _ in range(20):
        client.messages.create(**ask())

    events = fake.stored(audit)
    assert len(events) == 20
    assert len({event["details"]["client_request_id"] for event in events}) == 20


def test_unwritable_spool_goes_to_the_emergency_spool_and_warns_once(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the spool directory should be")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GITAUDIT_")},
        "GITAUDIT_SPOOL_DIR": str(blocked / "spool"),
        "GITAUDIT_RUNTIME_DIR": str(tmp_path / "run"),
        "TMPDIR": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    script = (
        "import httpx2\n"
        "from tests.claude import fake\n"
        "from gitaudit.claude import AuditedAnthropic\n"
        "c = AuditedAnthropic(api_key='k', max_retries=0, http_client=httpx2.Client("
        "transport=httpx2.MockTransport(fake.Endpoint())))\n"
        "for _ in range(3):\n"
        "    assert c.messages.create(**fake.ask()).content[0].text == 'Hello there'\n"
        "print('calls ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
        cwd=tmp_path,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "calls ok"
    assert done.stderr.count("gitaudit:") == 1, done.stderr
    emergency = tmp_path / f"gitaudit-{os.getuid()}" / "spool"
    lines = [
        json.loads(line)
        for path in emergency.glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert [event["operation"] for event in lines] == ["claude.request"] * 3


def test_failing_on_record_callback_never_breaks_the_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit = fake.settings(tmp_path)

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("caller bug")

    client = fake.client(Endpoint(), audit, on_record=broken)
    for _ in range(2):
        assert client.messages.create(**ask()).stop_reason == "end_turn"
    assert capsys.readouterr().err.count("on_record callback failed") == 1
    assert len(fake.stored(audit)) == 2


def test_disabled_records_nothing(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path, enabled=False)
    fake.client(Endpoint(), audit).messages.create(**ask())
    assert fake.stored(audit) == []


def test_with_options_keeps_recording(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)
    client = fake.client(Endpoint(), audit, audit_correlation_id="corr-x")
    client.with_options(max_retries=0).messages.create(**ask())
    assert _only(audit)["correlation_id"] == "corr-x"


def test_with_raw_response_is_recorded(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)
    client = fake.client(Endpoint(fake.ok(request_id="req_raw")), audit)
    raw = client.messages.with_raw_response.create(**ask())
    assert raw.parse().stop_reason == "end_turn"
    details = _only(audit)["details"]
    assert details["request_id"] == "req_raw" and details["output_tokens"] == 300


def test_unknown_model_has_no_cost(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)
    body = {**fake.message(), "model": "claude-imaginary-9"}
    client = fake.client(Endpoint(fake.ok(body)), audit)
    client.messages.create(**{**ask(), "model": "claude-imaginary-9"})
    details = _only(audit)["details"]
    assert details["cost_usd"] is None and details["cost_source"] == "unknown_model"


def test_async_client_create_and_stream(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)

    async def handler(request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        if b'"stream":true' in request.content.replace(b" ", b""):
            return httpx2.Response(
                200, headers={"content-type": "text/event-stream", "request-id": "req_as"},
                content=b"".join(fake.sse_events()),
            )  # fmt: skip
        return fake.ok(request_id="req_a")

    async def main() -> str:
        client = fake.async_client(handler, audit)
        first = await client.messages.create(**ask())
        async with client.messages.stream(**ask()) as stream:
            text = "".join([part async for part in stream.text_stream])
        return first.content[0].text + "|" + text  # type: ignore[union-attr]

    assert asyncio.run(main()) == "Hello there|Hello"
    first, second = fake.stored(audit)
    assert first["details"]["request_id"] == "req_a" and first["outcome"] == "success"
    assert second["details"]["streaming"] is True and second["outcome"] == "success"
    assert second["details"]["time_to_first_token_ms"] is not None


def test_a_price_table_file_prices_the_event(tmp_path: Path) -> None:
    table = tmp_path / "prices.toml"
    table.write_text(
        'version = "team-2027"\n[[model]]\npatterns = ["claude-sonnet-*"]\ninput = 1\n'
        "output = 1\ncache_write_5m = 0\ncache_write_1h = 0\ncache_read = 0\n"
    )
    audit = fake.settings(tmp_path, price_table=str(table))
    fake.client(Endpoint(), audit).messages.create(**ask())
    details = _only(audit)["details"]
    assert details["price_table"] == "team-2027"
    assert details["cost_usd"] == pytest.approx(1500 / 1e6)


def test_an_unreadable_price_table_is_reported_once_and_the_call_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit = fake.settings(tmp_path, price_table=str(tmp_path / "missing.toml"))
    client = fake.client(Endpoint(), audit)
    client.messages.create(**ask())
    client.messages.create(**ask())
    assert capsys.readouterr().err.count("cannot read price table") == 1
    events = fake.stored(audit)
    assert [event["details"]["cost_source"] for event in events] == ["price_table_unreadable"] * 2
    assert all(event["details"]["cost_usd"] is None for event in events)


def test_a_stream_dropped_unread_is_still_recorded(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)
    client = fake.client(Endpoint(fake.streamed(fake.sse_events())), audit)
    stream = client.messages.create(**ask(), stream=True)
    stream.close()
    del stream
    event = _only(audit)
    assert event["outcome"] == "success"
    assert event["details"]["stream_closed_early"] is True
    assert event["details"]["request_id"] == "req_stream"


def test_an_event_that_cannot_be_built_is_recorded_minimal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitaudit.claude.record import CallRecord

    def broken(self: CallRecord, *args: Any) -> dict[str, Any]:
        raise ValueError("details bug")

    monkeypatch.setattr(CallRecord, "details", broken)
    audit = fake.settings(tmp_path)
    reply = fake.client(Endpoint(), audit).messages.create(**ask())
    assert reply.stop_reason == "end_turn"
    assert "details bug" in capsys.readouterr().err
    event = _only(audit)
    assert event["details"]["audit_error"] == "ValueError: details bug"
    assert event["details"]["client_request_id"]


def test_async_raw_response_and_cut_stream(tmp_path: Path) -> None:
    audit = fake.settings(tmp_path)
    chunks = fake.sse_events(("a", "b", "c"))

    async def handler(request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        if b'"stream":true' not in request.content.replace(b" ", b""):
            return fake.ok(request_id="req_raw_async")

        async def body() -> Any:
            for chunk in chunks[:4]:
                yield chunk
            raise httpx2.ReadError("connection reset by peer")

        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    async def main() -> list[str]:
        client = fake.async_client(handler, audit)
        raw = await client.messages.with_raw_response.create(**ask())
        assert (await raw.parse()).stop_reason == "end_turn"
        got: list[str] = []
        with pytest.raises(Exception):  # noqa: B017 - whatever the SDK raises, unchanged
            async with client.messages.stream(**ask()) as stream:
                got.extend([part async for part in stream.text_stream])
        return got

    asyncio.run(main())
    first, second = fake.stored(audit)
    assert first["details"]["request_id"] == "req_raw_async" and first["outcome"] == "success"
    assert second["outcome"] == "failure" and second["details"]["streaming"] is True
