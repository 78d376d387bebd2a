"""The audited client with a real daemon, and the rule that only gitaudit.claude loads the SDK."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitaudit import config
from gitaudit.claude import flush
from tests.claude import fake
from tests.daemon.daemon_harness import PROJECT_ROOT, Daemons


@pytest.fixture
def daemons() -> Iterator[Daemons]:
    made = Daemons()
    yield made
    made.cleanup()


def test_events_go_to_a_running_daemon_and_are_stored(tmp_path: Path, daemons: Daemons) -> None:
    run = daemons().start()
    audit = config.Settings({
        "runtime_dir": str(run.runtime),
        "spool_dir": str(tmp_path / "spool"),
    })  # fmt: skip
    seen: list[dict[str, Any]] = []
    client = fake.client(fake.Endpoint(), audit, on_record=seen.append)

    for _ in range(3):
        client.messages.create(**fake.ask())
    assert flush(60.0)

    stored = run.wait_stored(event["id"] for event in seen)
    mine = [event for event in stored if event["operation"] == "claude.request"]
    assert len(mine) == 3
    assert all(event["actor"]["verified"] for event in mine)  # the daemon vouched for the uid
    assert not (tmp_path / "spool").exists()  # nothing had to be spooled


HOT_PATH = (
    "gitaudit.capture.wrapper",
    "gitaudit.capture.hookrun",
    "gitaudit.capture.hooks",
    "gitaudit.pipeline",
    "gitaudit.transport",
    "gitaudit.claude",
    "gitaudit.claude.prices",
    "gitaudit.claude.record",
    "gitaudit.claude.delivery",
    "gitaudit.claude.usage",
    "gitaudit.cli.claude",
)


def test_only_the_client_classes_import_the_sdk() -> None:
    script = (
        "import sys\n"
        f"for name in {HOT_PATH!r}:\n"
        "    __import__(name)\n"
        "assert 'anthropic' not in sys.modules, 'anthropic loaded'\n"
        "assert 'httpx2' not in sys.modules, 'httpx2 loaded'\n"
        "from gitaudit.claude import AuditedAnthropic\n"
        "assert 'anthropic' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_ROOT
    )
    assert done.returncode == 0, done.stderr
