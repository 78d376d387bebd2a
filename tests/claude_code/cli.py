"""The real Claude Code CLI for the tests, and a fake Anthropic API it can talk to.

:func:`claude_binary` installs ``@anthropic-ai/claude-code`` from the npm registry once
into ``.venv/claude-code`` (npm's install scripts stay off; the package's own
``install.cjs``, which only links the platform binary that npm downloaded, is run by
hand) and returns the ``claude`` executable, or skips the test saying why.

:class:`FakeClaudeAPI` is a streaming Messages endpoint on loopback: it has Claude Code
run :attr:`FakeClaudeAPI.commands` through the Bash tool one after the other (one
``tool_use`` per turn, the next once the previous result came back), then answers with
text and ``end_turn``.
:func:`claude_env` is the environment the CLI runs in: its own ``HOME``, the fake API,
a fake key, every proxy pointed at a closed port, no updater, no other traffic.
:class:`OTLPCollector` takes what Claude Code's OTLP/HTTP exporter sends (it sends
``Transfer-Encoding: chunked``, without a Content-Length).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest

from tests.gitfixtures import PROJECT_ROOT

PACKAGE = "@anthropic-ai/claude-code"


def _cache() -> Path:
    venv = PROJECT_ROOT / ".venv"
    return (venv if venv.is_dir() else Path(tempfile.gettempdir())) / "claude-code"


def _version(binary: Path) -> subprocess.CompletedProcess[str] | None:
    if not binary.exists():
        return None
    home = _cache() / "home"  # whatever it writes there, never into the real HOME
    home.mkdir(exist_ok=True)
    try:
        return subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                              check=False, timeout=120,
                              env={**os.environ, "HOME": str(home), "DISABLE_AUTOUPDATER": "1"})
    except (OSError, subprocess.TimeoutExpired):
        return None


def _works(binary: Path) -> bool:
    result = _version(binary)
    return result is not None and result.returncode == 0 and "Claude Code" in result.stdout


_FOUND: list[Path] = []  # this process found it working already


def claude_binary() -> Path:
    """``claude`` of the npm package (installed on first use), or skip saying why."""
    if _FOUND:
        return _FOUND[0]
    cache = _cache()
    binary = cache / "node_modules" / ".bin" / "claude"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers: one installs, the others wait
        if _works(binary):
            _FOUND.append(binary)
            return binary
        npm, node = shutil.which("npm"), shutil.which("node")
        if npm is None or node is None:
            pytest.skip(f"npm/node are not installed: {PACKAGE} comes from the npm registry")
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix",
             str(cache), PACKAGE],
            capture_output=True, text=True, check=False, timeout=900,
        )
        if result.returncode != 0:
            pytest.skip(f"npm install {PACKAGE} failed (registry unreachable?): "
                        f"{result.stderr.strip()[-400:]}")
        script = cache / "node_modules" / PACKAGE / "install.cjs"
        if script.exists() and not _works(binary):
            subprocess.run([node, str(script)], cwd=script.parent, capture_output=True,
                           check=False, timeout=300)
        if not _works(binary):
            found = _version(binary)
            why = (found.stderr or found.stdout).strip()[-400:] if found else "no binary"
            pytest.skip(f"{PACKAGE} installed but `claude --version` fails: {why}")
    _FOUND.append(binary)
    return binary


def claude_env(home: Path, api_url: str, base: Mapping[str, str] | None = None,
               **extra: str) -> dict[str, str]:
    """Environment for the CLI: ``home`` as HOME, ``api_url`` as the API, nothing else out."""
    env = dict(os.environ if base is None else base)
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=api_url,
        ANTHROPIC_API_KEY="sk-ant-fake",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
        **extra,
    )
    for name in ("CLAUDE_CONFIG_DIR", "CLAUDECODE", "CLAUDE_CODE_SESSION_ID", "AI_AGENT"):
        env.pop(name, None)  # when the tests themselves run under Claude Code
    return env


def run_claude(binary: Path, cwd: Path, env: Mapping[str, str], prompt: str,
               *options: str) -> subprocess.CompletedProcess[str]:
    """``claude -p PROMPT --allowedTools Bash --output-format json`` in ``cwd``."""
    return subprocess.run(
        [str(binary), "-p", prompt, "--allowedTools", "Bash", "--output-format", "json",
         *options],
        cwd=cwd, env=dict(env), capture_output=True, text=True, check=False, timeout=300,
        stdin=subprocess.DEVNULL,
    )


def _sse(kind: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


def _tool_results(body: Mapping[str, Any]) -> int:
    """How many tool results the conversation in ``body`` holds."""
    return sum(
        1 for message in body.get("messages") or [] if isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "tool_result")


class Loopback:
    """An HTTP server on 127.0.0.1 (an ephemeral port) in a thread, as a context manager."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.address}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def send_json(self, payload: Mapping[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeClaudeAPI(Loopback):
    """A streaming Messages API on 127.0.0.1 that runs :attr:`commands` through Bash
    (``url`` goes into ANTHROPIC_BASE_URL)."""

    def __init__(self, *commands: str) -> None:
        self.commands = commands
        self.requests: list[dict[str, Any]] = []
        self.tool_uses = 0
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def content(self, body: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
        """What to answer ``body`` with: content blocks and the stop reason."""
        tools = [tool.get("name") for tool in body.get("tools") or []]
        done = _tool_results(body)
        if "Bash" not in tools or done >= len(self.commands):
            return [{"type": "text", "text": "done"}], "end_turn"
        with self._lock:
            self.tool_uses += 1
        return [{"type": "tool_use", "id": f"toolu_fake{done + 1:04d}", "name": "Bash",
                 "input": {"command": self.commands[done], "description": "run it"}}], "tool_use"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(_Handler):
            def do_POST(self) -> None:
                body = json.loads(_body(self) or b"{}")
                with fake._lock:
                    fake.requests.append({"path": self.path, "body": body})
                if "count_tokens" in self.path:
                    self.send_json({"input_tokens": 10})
                    return
                content, stop = fake.content(body)
                message = {"id": "msg_fake", "type": "message", "role": "assistant",
                           "model": body.get("model", "claude-fake"), "content": [],
                           "stop_reason": None, "stop_sequence": None,
                           "usage": {"input_tokens": 120, "output_tokens": 30,
                                     "cache_creation_input_tokens": 0,
                                     "cache_read_input_tokens": 0}}
                if not body.get("stream"):
                    self.send_json({**message, "content": content, "stop_reason": stop})
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("request-id", "req_fake")
                self.end_headers()
                self.wfile.write(_sse("message_start", {"type": "message_start",
                                                        "message": message}))
                for index, block in enumerate(content):
                    self.wfile.write(_block(index, block))
                self.wfile.write(_sse("message_delta", {
                    "type": "message_delta", "delta": {"stop_reason": stop,
                                                       "stop_sequence": None},
                    "usage": {"output_tokens": 30}}))
                self.wfile.write(_sse("message_stop", {"type": "message_stop"}))
                self.wfile.flush()
                self.close_connection = True

        return Handler


def _block(index: int, block: Mapping[str, Any]) -> bytes:
    """One content block as stream events (start, one delta, stop)."""
    if block["type"] == "text":
        start = {"type": "text", "text": ""}
        delta = {"type": "text_delta", "text": block["text"]}
    else:
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
    return (_sse("content_block_start", {"type": "content_block_start", "index": index,
                                         "content_block": start})
            + _sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                           "delta": delta})
            + _sse("content_block_stop", {"type": "content_block_stop", "index": index}))


def _body(handler: BaseHTTPRequestHandler) -> bytes:
    """A request body, chunked or with a Content-Length."""
    if handler.headers.get("transfer-encoding", "").lower() != "chunked":
        return handler.rfile.read(int(handler.headers.get("content-length") or 0))
    data = b""
    while size := int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16):
        data += handler.rfile.read(size)
        handler.rfile.readline()
    while handler.rfile.readline() not in {b"\r\n", b"\n", b""}:
        pass  # trailers
    return data


class OTLPCollector(Loopback):
    """An OTLP/HTTP endpoint on 127.0.0.1 that keeps (path, content type, body) and says 200
    (``address`` goes into GITAUDIT_OTLP_ADDRESS)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, bytes]] = []
        collector = self

        class Handler(_Handler):
            def do_POST(self) -> None:
                body = _body(self)
                collector.received.append((self.path, self.headers.get("content-type", ""),
                                           body))
                self.send_json({})

        super().__init__(Handler)
