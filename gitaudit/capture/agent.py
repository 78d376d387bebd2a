"""Which AI agent says it started this process: the claim its environment makes.

Claude Code puts into the environment of every process it starts (its Bash
tool's shell, so every git run there, and its hook commands)
``CLAUDECODE=1``, ``CLAUDE_CODE_SESSION_ID=<session>`` and
``AI_AGENT=claude-code_<version>_agent``; some versions also ``CLAUDE_PID``.
The wrapper and the git hooks read them from their own environment, the
daemon's trace2 receiver from the ``trace2.envVars`` git reports
(:data:`ENV_VARS` are in :data:`gitaudit.capture.context.TRACE2_ENV_VARS`).

What the environment says is a *claim* (``verified: false, proof: "env"``):
any process can set these variables. Only the daemon proves it, from the
process tree the kernel reports (:mod:`gitaudit.daemon.agents`). Stdlib
only, no imports: the wrapper and the hooks call this on every git command.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms to import; annotations are strings at runtime
    from collections.abc import Mapping
    from typing import Any

TOOL = "claude-code"
SESSION_ENV = "CLAUDE_CODE_SESSION_ID"
MARKER_ENV = "CLAUDECODE"
AGENT_ENV = "AI_AGENT"
PID_ENV = "CLAUDE_PID"
ENV_VARS = (MARKER_ENV, SESSION_ENV, AGENT_ENV, PID_ENV)
MAX_CHARS = 200  # a session id or version longer than this is cut (ids are UUIDs)
_PREFIX = "claude-code_"


def version_of(ai_agent: str | None) -> str | None:
    """``2.1.197`` from ``claude-code_2-1-197_agent``; another value as given (cut), or None."""
    value = (ai_agent or "").strip()
    if not value:
        return None
    if value.startswith(_PREFIX):
        middle = value[len(_PREFIX) :].rsplit("_", 1)[0]
        if middle and middle.replace("-", "").isdigit():
            return middle.replace("-", ".")
    return value[:MAX_CHARS]


def claim(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """``actor.agent`` as the environment claims it, or None when no agent session is named.

    ``{tool, session_id, version?, claude_pid?, verified: False, proof: "env"}``.
    """
    session = environ.get(SESSION_ENV, "").strip()
    if not session:
        return None
    found: dict[str, Any] = {
        "tool": TOOL,
        "session_id": session[:MAX_CHARS],
        "verified": False,
        "proof": "env",
    }
    version = version_of(environ.get(AGENT_ENV))
    if version:
        found["version"] = version
    pid = environ.get(PID_ENV, "").strip()
    if pid.isdigit() and 0 < len(pid) < 11:
        found["claude_pid"] = int(pid)
    return found
