"""A fake Anthropic Messages API on loopback that drives Claude Code through one tool call.

The real Claude Code CLI is pointed at it with ``ANTHROPIC_BASE_URL``. The first
``POST /v1/messages`` that offers the ``Bash`` tool (and does not carry a
``tool_result`` yet) is answered with one ``tool_use`` running :attr:`command`;
every other one with the text ``done`` and ``end_turn``. Answers stream as
server-sent events when the request asks for ``stream`` (Claude Code does), and
carry a ``request-id`` header and token usage, as the real API does;
``/v1/messages/count_tokens`` answers a count. Every request is kept in
:attr:`FakeStream.requests` (path, headers, body) for the test to look at.

Run as a script (``python -m tests.claude_code.fake_stream 'git status'``) it
prints its port and serves until killed, for probing the CLI by hand.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USAGE = {"input_tokens": 120, "output_tokens": 30, "cache_creation_input_tokens": 0,
         "cache_read_input_tokens": 0}
REQUEST_ID = "req_fake_stream_1"


class FakeStream:
    """The fake endpoint; a context manager that serves on ``127.0.0.1:port`` meanwhile."""

    def __init__(self, command: str, description: str = "run git") -> None:
        self.command = command
        self.description = description
        self.requests: list[dict[str, Any]] = []
        self.tool_uses = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The loopback port it listens on."""
        return int(self._server.server_address[1])

    def __enter__(self) -> FakeStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        """The content blocks and stop reason for one request body."""
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        content = last.get("content") if isinstance(last, dict) else None
        has_result = isinstance(content, list) and any(
            isinstance(block, dict) and block.get("type") == "tool_result" for block in content
        )
        tools = [tool.get("name") for tool in body.get("tools") or [] if isinstance(tool, dict)]
        if "Bash" in tools and not has_result:
            with self._lock:
                self.tool_uses += 1
                tool_id = f"toolu_fake{self.tool_uses:04d}"
            tool_input = {"command": self.command, "description": self.description}
            return [{"type": "tool_use", "id": tool_id, "name": "Bash", "input": tool_input}], (
                "tool_use"
            )
        return [{"type": "text", "text": "done"}], "end_turn"


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _stream(message: dict[str, Any], content: list[dict[str, Any]], stop: str) -> Iterator[bytes]:
    """The server-sent events of one streamed answer."""
    yield _sse("message_start", {"type": "message_start", "message": message})
    for index, block in enumerate(content):
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield _sse("content_block_start",
                   {"type": "content_block_start", "index": index, "content_block": start})
        yield _sse("content_block_delta",
                   {"type": "content_block_delta", "index": index, "delta": delta})
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
    yield _sse("message_delta", {"type": "message_delta",
                                 "delta": {"stop_reason": stop, "stop_sequence": None},
                                 "usage": {"output_tokens": USAGE["output_tokens"]}})
    yield _sse("message_stop", {"type": "message_stop"})


def _handler_for(fake: FakeStream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            fake.requests.append({"path": self.path, "headers": dict(self.headers),
                                  "body": body})
            if "count_tokens" in self.path:
                self._json({"input_tokens": 10})
                return
            content, stop = fake.answer(body if isinstance(body, dict) else {})
            message = {
                "id": f"msg_fake{len(fake.requests)}", "type": "message", "role": "assistant",
                "model": body.get("model", "claude-fake") if isinstance(body, dict) else "m",
                "content": [], "stop_reason": None, "stop_sequence": None, "usage": USAGE,
            }
            if isinstance(body, dict) and body.get("stream"):
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("request-id", REQUEST_ID)
                self.end_headers()
                for chunk in _stream(message, content, stop):
                    self.wfile.write(chunk)
                self.wfile.flush()
                self.close_connection = True
                return
            self._json({**message, "content": content, "stop_reason": stop})

        def _json(self, data: dict[str, Any]) -> None:
            out = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("request-id", REQUEST_ID)
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test's output is the CLI's

    return Handler


if __name__ == "__main__":
    with FakeStream(sys.argv[1] if len(sys.argv) > 1 else "git status") as served:
        print(served.port, flush=True)
        threading.Event().wait()
