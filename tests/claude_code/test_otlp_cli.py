"""The real Claude Code CLI exporting its telemetry to the daemon's OTLP receiver.

``claude -p`` runs against a fake streaming Anthropic API on loopback that asks
for one Bash tool call, with ``CLAUDE_CODE_ENABLE_TELEMETRY=1`` and the OTLP log
exporter pointed at the receiver, once per protocol (``http/json``,
``http/protobuf``). The store then holds the session's API requests (tokens,
cost, request id) and the tool permission decision, joined by the session id.

The CLI comes from the shared test helpers (``tests/claude_code/cli.py`` and
``fake_stream.py``, written for the hook tests): without them, or without npm,
the registry or a working binary, the test is skipped saying why.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.daemon_harness import Daemons, free_port, wait_for
from tests.gitfixtures import GitSandbox

cli = pytest.importorskip("tests.claude_code.cli", reason="the shared Claude Code CLI helper "
                          "(tests/claude_code/cli.py) is not in this checkout")  # fmt: skip
fake_stream = pytest.importorskip("tests.claude_code.fake_stream", reason="the shared fake "
                                  "streaming API (tests/claude_code/fake_stream.py) is not "
                                  "in this checkout")  # fmt: skip

NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-5c6d-9e0f-1a2b3c4d5e6f")


@pytest.fixture
def daemons() -> Iterator[Daemons]:
    """Daemons started by one test, stopped afterwards."""
    made = Daemons()
    yield made
    made.cleanup()


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_real_cli_telemetry_lands_in_the_store(protocol: str, daemons: Daemons,
                                               tmp_path: Path) -> None:
    claude = cli.claude_binary()
    sandbox = GitSandbox(tmp_path)
    repo = sandbox.repo()
    port = free_port()
    run = daemons(config={"otlp_address": f"127.0.0.1:{port}"}).start()
    telemetry = {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"http://127.0.0.1:{port}/v1/logs",
        "OTEL_LOGS_EXPORT_INTERVAL": "500",
    }
    with fake_stream.FakeStream("git status --short") as api:
        env = cli.claude_env(sandbox.home, f"http://127.0.0.1:{api.port}",
                             base=sandbox.environ(), **telemetry)  # fmt: skip
        done = cli.run_claude(claude, repo, env, "check the status")
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    session = json.loads(done.stdout)["session_id"]

    def recorded() -> list[dict[str, Any]] | None:
        events = [e for e in run.stored() if e["correlation_id"] == session]
        operations = [e["operation"] for e in events]
        return events if operations.count("claude.request") >= 2 and (
            "claude.tool_use" in operations) else None

    events: list[dict[str, Any]] = wait_for(recorded, "the session's telemetry stored")
    for event in events:
        assert event["source"] == "claude_code"
        assert event["actor"]["verified"] is True  # the exporter's socket, from the kernel
        prompt = event["details"]["prompt_id"]
        assert event["parent_id"] == str(
            uuid.uuid5(NAMESPACE, f"claude-code/prompt/{session}/{prompt}"))
    request = next(e for e in events if e["operation"] == "claude.request")
    assert request["details"]["input_tokens"] == fake_stream.USAGE["input_tokens"]
    assert request["details"]["request_id"] == fake_stream.REQUEST_ID
    assert request["details"]["cost_source"] == "claude_code"
    assert request["details"]["cost_usd"] > 0
    decision = next(e for e in events if e["operation"] == "claude.tool_use")
    assert decision["details"]["tool"] == "Bash"
    assert decision["details"]["tool_use_id"] == "toolu_fake0001"
    assert decision["details"]["decision"] == "accept"
    metrics = run.metrics()
    assert metrics['gitaudit_otlp_records_total{event="claude_code.user_prompt",'
                   'outcome="skipped"}'] >= 1  # fmt: skip
    assert run.stop() == 0
