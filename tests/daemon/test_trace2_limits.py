"""A git command line too big to journal, heard through the daemon's trace2 socket: cut, stored."""

from __future__ import annotations

import hashlib
from typing import Any

from gitaudit import limits
from gitaudit.transport import spool
from tests.daemon.daemon_harness import Daemons, send_trace2_to, wait_for
from tests.gitfixtures import GitSandbox


def test_oversized_trace2_argv_is_cut_and_stored(sandbox: GitSandbox, daemons: Daemons) -> None:
    # 6 messages of 100 kB UTF-8 (under git's per-argument limit): 600 kB of trace2 `start`
    # line, but 1.8 MB once the journal escapes every "é" as \u00e9.
    run = daemons(config={"capture_messages": True}).start()
    repo = sandbox.repo()
    send_trace2_to(run, sandbox)
    message = "é" * 50_000
    args = [arg for _ in range(6) for arg in ("-m", message)]
    sandbox.git("commit", "-q", "--allow-empty", *args, cwd=repo)

    def stored() -> list[dict[str, Any]] | None:
        found = [e for e in run.stored() if e["operation"] == "git.commit"]
        return found or None

    (event,) = wait_for(stored, "the traced commit")
    assert event["source"] == "trace2"
    assert len(spool.encode_line(event)) <= limits.EVENT_MAX_BYTES + 1024  # + integrity fields
    digest = hashlib.sha256(message.encode()).hexdigest()
    assert event["details"]["truncated"] == [
        {"field": f"details.argv[{index}]", "bytes": 100_000, "sha256": digest}
        for index in range(4, 16, 2)
    ]
    assert event["details"]["argv"][4].startswith("éé")
    assert event["details"]["argv"][4].endswith("…[truncated 100000 bytes]")
