"""Stand-in for ``gitaudit claude-code-hook`` until that command exists (issue 11, cc-hooks).

Reads one Claude Code hook payload on stdin and delivers the event the shared
contract describes (``claude.session``/``claude.prompt``/``claude.tool_use``,
source ``claude_code``, name-based ids) through the usual transport: daemon
socket, else spool. Always exits 0, prints nothing.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from gitaudit import catalog, config
from gitaudit.claude import ids
from gitaudit.pipeline import emit


def event(payload: dict[str, Any]) -> dict[str, Any] | None:
    session = payload["session_id"]
    name = payload.get("hook_event_name")
    found: dict[str, Any] = {"session_id": session}
    duration = None
    if name == "SessionStart":
        operation, event_id, parent = "claude.session", ids.session_event_id(session), None
        found.update(phase="start", cwd=payload.get("cwd"), start_source=payload.get("source"))
    elif name == "UserPromptSubmit":
        operation = "claude.prompt"
        event_id = ids.prompt_event_id(session, payload["prompt_id"])
        parent = ids.session_event_id(session)
        found.update(prompt_id=payload["prompt_id"], length=len(payload.get("prompt", "")))
    elif name == "PostToolUse":
        operation = "claude.tool_use"
        event_id = ids.tool_use_event_id(session, payload["tool_use_id"])
        parent = ids.prompt_event_id(session, payload.get("prompt_id", ""))
        tool_input = payload.get("tool_input") or {}
        shown = ({"command": tool_input.get("command")} if payload["tool_name"] == "Bash"
                 else {"file_path": tool_input.get("file_path")})
        duration = payload.get("duration_ms")
        found.update(prompt_id=payload.get("prompt_id"), tool_use_id=payload["tool_use_id"],
                     tool=payload["tool_name"], input=shown, phase="result", success=True,
                     duration_ms=duration)
    else:
        return None
    return {
        "id": event_id, "schema_version": 1, "occurred_at": catalog.now_rfc3339(),
        "duration_ms": duration, "operation": operation,
        "category": catalog.category_for(operation, found), "outcome": "success",
        "severity": "low", "source": "claude_code", "correlation_id": session,
        "parent_id": parent, "actor": {"uid": os.getuid()}, "repo": None,
        "result": {"exit_code": None, "error": None}, "details": found,
    }


made = event(json.loads(sys.stdin.buffer.read()))
if made is not None:
    emit([made], config.load(os.environ))
