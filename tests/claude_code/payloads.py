"""Claude Code hook payloads exactly as Claude Code 2.1.197 sends them on stdin.

Shapes copied from what the real CLI sent to a hook (key order included);
PostToolUseFailure's too (``error``: ``Exit code N`` and the command's output,
``is_interrupt``, ``duration_ms``; no ``tool_response``).
Each function returns one payload for the session ``SESSION`` in ``cwd``.
"""

from __future__ import annotations

from typing import Any

SESSION = "0c1ceea0-202e-49c2-a0d4-39b78f7cacc0"
PROMPT_ID = "75a23174-d454-42bd-9570-5e92ed17f598"
TOOL_USE_ID = "toolu_01ABC0"


def _base(cwd: str, session: str = SESSION) -> dict[str, Any]:
    return {
        "session_id": session,
        "transcript_path": f"/home/u/.claude/projects/-work-repo/{session}.jsonl",
        "cwd": cwd,
    }


def session_start(cwd: str, source: str = "startup", session: str = SESSION) -> dict[str, Any]:
    return {**_base(cwd, session), "hook_event_name": "SessionStart", "source": source}


def prompt_submit(cwd: str, prompt: str = "please commit", prompt_id: str = PROMPT_ID
                  ) -> dict[str, Any]:
    return {**_base(cwd), "prompt_id": prompt_id, "permission_mode": "default",
            "hook_event_name": "UserPromptSubmit", "prompt": prompt}


def _tool(cwd: str, event: str, tool: str, tool_input: dict[str, Any],
          tool_use_id: str) -> dict[str, Any]:
    return {**_base(cwd), "prompt_id": PROMPT_ID, "permission_mode": "default",
            "effort": {"level": "high"}, "hook_event_name": event, "tool_name": tool,
            "tool_input": tool_input}


def pre_tool_use(cwd: str, command: str) -> dict[str, Any]:
    return {**_tool(cwd, "PreToolUse", "Bash", {"command": command, "description": "run git"},
                    TOOL_USE_ID), "tool_use_id": TOOL_USE_ID}


def post_tool_use(cwd: str, command: str, stdout: str = "7adc92e agent change",
                  tool_use_id: str = TOOL_USE_ID) -> dict[str, Any]:
    return {
        **_tool(cwd, "PostToolUse", "Bash", {"command": command, "description": "run git"},
                tool_use_id),
        "tool_response": {"stdout": stdout, "stderr": "", "interrupted": False,
                          "isImage": False, "noOutputExpected": False},
        "tool_use_id": tool_use_id,
        "duration_ms": 32,
    }


def post_tool_use_failure(cwd: str, command: str, tool_use_id: str = "toolu_01FAIL"
                          ) -> dict[str, Any]:
    return {
        **_tool(cwd, "PostToolUseFailure", "Bash",
                {"command": command, "description": "run git"}, tool_use_id),
        "tool_use_id": tool_use_id,
        "error": "Exit code 1\nerror: failed to push some refs",
        "is_interrupt": False,
        "duration_ms": 89,
    }


def post_tool_use_of(cwd: str, tool: str, tool_input: dict[str, Any],
                     tool_response: Any, tool_use_id: str) -> dict[str, Any]:
    return {**_tool(cwd, "PostToolUse", tool, tool_input, tool_use_id),
            "tool_response": tool_response, "tool_use_id": tool_use_id, "duration_ms": 5}


def stop(cwd: str, answer: str = "done") -> dict[str, Any]:
    return {**_base(cwd), "prompt_id": PROMPT_ID, "permission_mode": "default",
            "effort": {"level": "high"}, "hook_event_name": "Stop", "stop_hook_active": False,
            "last_assistant_message": answer, "background_tasks": [], "session_crons": []}


def session_end(cwd: str, reason: str = "other") -> dict[str, Any]:
    return {**_base(cwd), "prompt_id": PROMPT_ID, "hook_event_name": "SessionEnd",
            "reason": reason}
