"""The fake Anthropic endpoint: an httpx2 transport injected into the real SDK (no network)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx2

from gitaudit import config
from gitaudit.claude import AsyncAuditedAnthropic, AuditedAnthropic, flush
from gitaudit.store import EventFilter, Store, ingest

MODEL = "claude-sonnet-4-5"
RESPONDED = "claude-sonnet-4-5-20250929"
Handler = Callable[[httpx2.Request], httpx2.Response]


def message(text: str = "Hello there", **usage: int) -> dict[str, Any]:
    """A Messages API response body."""
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": RESPONDED,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 1200,
            "output_tokens": 300,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            **usage,
        },
    }


def ok(body: dict[str, Any] | None = None, request_id: str = "req_ok") -> httpx2.Response:
    return httpx2.Response(200, json=body or message(), headers={"request-id": request_id})


def error(status: int, kind: str, request_id: str = "req_err", **headers: str) -> httpx2.Response:
    body = {"type": "error", "error": {"type": kind, "message": f"fake {kind}"}}
    return httpx2.Response(status, json=body, headers={"request-id": request_id, **headers})


def sse_events(text_parts: Sequence[str] = ("Hel", "lo"), output_tokens: int = 7) -> list[bytes]:
    """The server-sent events of one streamed message, one chunk each."""
    start = {**message(""), "content": [], "stop_reason": None}
    start["usage"] = {
        "input_tokens": 25,
        "output_tokens": 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]
    events += [
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": part},
            },
        )
        for part in text_parts
    ]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]


def streamed(chunks: Sequence[bytes], cut_after: int | None = None) -> httpx2.Response:
    """A text/event-stream response; ``cut_after`` chunks then the connection breaks."""

    def body() -> Iterator[bytes]:
        for index, chunk in enumerate(chunks):
            if cut_after is not None and index >= cut_after:
                raise httpx2.ReadError("connection reset by peer")
            yield chunk

    return httpx2.Response(
        200,
        headers={"content-type": "text/event-stream", "request-id": "req_stream"},
        content=body(),
    )


class Endpoint:
    """Answers each request with the next scripted response (the last one repeats)."""

    def __init__(self, *answers: httpx2.Response | Handler | BaseException) -> None:
        self.answers = list(answers) or [ok()]
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        request.read()
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, httpx2.Response):
            return answer
        return answer(request)

    def bodies(self) -> list[str]:
        return [request.content.decode() for request in self.requests]


def settings(tmp_path: Path, **values: Any) -> config.Settings:
    """Settings with every gitaudit path under ``tmp_path`` and no daemon running."""
    return config.Settings({
        "spool_dir": str(tmp_path / "spool"),
        "runtime_dir": str(tmp_path / "run"),
        "database_url": f"sqlite:///{tmp_path / 'audit.db'}",
        **values,
    })  # fmt: skip


def client(
    endpoint: Endpoint, audit: config.Settings, *, max_retries: int = 0, **kwargs: Any
) -> AuditedAnthropic:
    return AuditedAnthropic(
        api_key="sk-ant-fake",
        http_client=httpx2.Client(transport=httpx2.MockTransport(endpoint)),
        max_retries=max_retries,
        audit_settings=audit,
        **kwargs,
    )


def async_client(
    handler: Callable[[httpx2.Request], Any], audit: config.Settings, **kwargs: Any
) -> AsyncAuditedAnthropic:
    return AsyncAuditedAnthropic(
        api_key="sk-ant-fake",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
        max_retries=0,
        audit_settings=audit,
        **kwargs,
    )


def stored(audit: config.Settings) -> list[dict[str, Any]]:
    """Every claude.request in the store once the spool is ingested (the real pipeline)."""
    assert flush(30.0)
    with Store.from_settings(audit) as store:
        ingest(audit, store)
        return store.query(EventFilter(operations=("claude.request",)))


def ask(content: str = "Resolve this conflict") -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 1024, "messages": [{"role": "user", "content": content}]}
