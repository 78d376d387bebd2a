"""A stand-in for the Claude Code process, run through a symlink named ``claude``.

Started as ``<dir>/claude standin_agent.py PLAN.json`` (the symlink points at the
Python interpreter, so ``/proc/<pid>/cmdline`` names ``claude`` the way the real
CLI's does). It does what Claude Code does around a tool call, as its own
children: hook commands under ``/bin/sh -c`` with the JSON payload on stdin and
the hook environment, and each Bash tool call as a ``bash -c`` child with the
agent environment; after a tool call, the ``PostToolUse`` hook with the call's
``duration_ms`` (for calls run in parallel, their hooks at once).
Prints ``{"pid": ..., "tools": [{tool_use_id, pid, exit_code}]}``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

PLAN: dict[str, Any] = json.loads(open(sys.argv[1]).read())  # noqa: SIM115
SESSION = PLAN["session"]
CWD = PLAN["cwd"]
PROMPT_ID = "prompt-1"


def environ(kind: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(CLAUDECODE="1", CLAUDE_CODE_SESSION_ID=SESSION,
               AI_AGENT=f"claude-code_2-1-197_{kind}", CLAUDE_CODE_ENTRYPOINT="sdk-cli")
    env.update(PLAN.get("tool_env", {}) if kind == "agent" else {})
    return env


def hook(payload: dict[str, Any]) -> None:
    body = {"session_id": SESSION, "transcript_path": f"/nonexistent/{SESSION}.jsonl",
            "cwd": CWD, **payload}
    subprocess.run(["/bin/sh", "-c", PLAN["hook"]], input=json.dumps(body).encode(),
                   env=environ("harness"), cwd=CWD, check=False, timeout=120)


def hooks(payloads: list[dict[str, Any]]) -> None:
    """Run the hook for each payload at once (parallel tool calls end together)."""
    running = []
    for payload in payloads:
        body = {"session_id": SESSION, "transcript_path": f"/nonexistent/{SESSION}.jsonl",
                "cwd": CWD, **payload}
        started = subprocess.Popen(["/bin/sh", "-c", PLAN["hook"]], stdin=subprocess.PIPE,
                                   env=environ("harness"), cwd=CWD)
        running.append((started, json.dumps(body).encode()))
    for started, body in running:
        started.communicate(body, timeout=120)


def post_payload(tool_use_id: str, tool: str, tool_input: dict[str, Any],
                 duration_ms: float) -> dict[str, Any]:
    return {"hook_event_name": "PostToolUse", "prompt_id": PROMPT_ID,
            "permission_mode": "default", "tool_name": tool, "tool_input": tool_input,
            "tool_response": {"stdout": "", "stderr": "", "interrupted": False},
            "tool_use_id": tool_use_id, "duration_ms": round(duration_ms)}


def post(tool_use_id: str, tool: str, tool_input: dict[str, Any], duration_ms: float) -> None:
    hook(post_payload(tool_use_id, tool, tool_input, duration_ms))


tools: list[dict[str, Any]] = []
for step in PLAN["steps"]:
    kind = step["kind"]
    if kind == "hook":
        hook(step["payload"])
    elif kind in {"bash", "parallel"}:
        calls = step["calls"] if kind == "parallel" else [step]
        began = time.monotonic()
        running = [subprocess.Popen(["/bin/bash", "-c", call["command"]],
                                    env={**environ("agent"), **call.get("env", {})}, cwd=CWD)
                   for call in calls]
        for call, process in zip(calls, running, strict=True):
            process.wait()
            tools.append({"tool_use_id": call["tool_use_id"], "pid": process.pid,
                          "exit_code": process.returncode})
        duration = (time.monotonic() - began) * 1000
        hooks([post_payload(call["tool_use_id"], "Bash", {"command": call["command"]}, duration)
               for call in calls])
    elif kind == "edit":
        began = time.monotonic()
        path = os.path.join(CWD, step["path"])
        with open(path, "w") as handle:
            handle.write(step["content"])
        post(step["tool_use_id"], "Edit", {"file_path": path, "old_string": "",
                                           "new_string": step["content"]},
             (time.monotonic() - began) * 1000)
    elif kind == "pause":
        time.sleep(step["seconds"])
print(json.dumps({"pid": os.getpid(), "tools": tools}))
