"""A fake Anthropic Messages endpoint on loopback, for tests that run the real CLI.

:class:`FakeAnthropic` is an HTTP server in a thread on ``127.0.0.1`` (an
ephemeral port) that answers ``POST /v1/messages`` like the API does and
keeps every request body it received. Point ``ANTHROPIC_BASE_URL`` at
:attr:`FakeAnthropic.url` and the real SDK inside ``gitaudit resolve`` (a
subprocess) talks to it; nothing reaches the network. What it answers is
decided by :attr:`FakeAnthropic.reply`, a function of the request body.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = tuple[int, dict[str, Any]]


def message(text: str, *, model: str = "claude-sonnet-5-5", stop_reason: str = "end_turn",
            input_tokens: int = 100, output_tokens: int = 50) -> Reply:
    """A successful Messages API answer holding ``text``."""
    return 200, {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": text}], "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }  # fmt: skip


def error(status: int, kind: str, text: str) -> Reply:
    """An API error answer (``rate_limit_error``, ``overloaded_error``, ...)."""
    return status, {"type": "error", "error": {"type": kind, "message": text}}


def prompt_of(body: dict[str, Any]) -> str:
    """The user message text of a request body."""
    content = body["messages"][0]["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


def section(body: dict[str, Any], name: str) -> str:
    """The text of ``<name>...</name>`` in the prompt (base, ours, theirs, ...)."""
    match = re.search(rf"<{name}>\n(.*?)</{name}>", prompt_of(body), re.DOTALL)
    assert match, f"no <{name}> in the prompt"
    return match.group(1)


def take_theirs(body: dict[str, Any]) -> Reply:
    """Resolve by keeping theirs, with a short explanation around the file."""
    return message(f"I kept theirs.\n<resolved_file>\n{section(body, 'theirs')}</resolved_file>\n"
                   "Both sides edited the same line; theirs is newer.")


class FakeAnthropic:
    """The fake endpoint (a context manager: started on enter, stopped on exit)."""

    def __init__(self, reply: Callable[[dict[str, Any]], Reply] = take_theirs) -> None:
        self.reply = reply
        self.bodies: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms stalls

            def do_POST(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(size)
                body = json.loads(raw)
                with fake._lock:
                    fake.raw.append(raw)
                    fake.bodies.append(body)
                    fake.headers.append(dict(self.headers.items()))
                    number = len(fake.bodies)
                status, answer = fake.reply(body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("request-id", f"req_fake_{number}")
                self.send_header("content-length", str(len(data)))
                if status >= 400:
                    self.send_header("retry-after-ms", "1")  # the SDK's retries come at once
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def env(self) -> dict[str, str]:
        """What the CLI's environment needs to talk to this endpoint."""
        return {"ANTHROPIC_BASE_URL": self.url, "ANTHROPIC_API_KEY": "sk-ant-test-fake-key"}


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
