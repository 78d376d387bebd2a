"""Name-based event ids of a Claude Code session's anchors, computable by any process.

``uuid.uuid5(NAMESPACE, f"claude-code/{kind}/{session_id}/{sub}")`` with kind
``session``/``prompt``/``tool_use``: the hook that records the anchor and the
daemon that points git events at it name it the same way without a lookup.
Computed with :mod:`hashlib` (importing :mod:`uuid` costs ~4 ms on the hook's
hot path); a test compares with :func:`uuid.uuid5`.

(Shared contract of issue 11; cc-hooks owns this module, this copy has the same API.)
"""

from __future__ import annotations

import hashlib

NAMESPACE = bytes.fromhex("6f1d3c2e8a4b5c6d9e0f1a2b3c4d5e6f")


def _uuid5(name: str) -> str:
    digest = bytearray(hashlib.sha1(NAMESPACE + name.encode("utf-8")).digest()[:16])  # noqa: S324 - UUIDv5 is SHA-1 by definition
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def session_event_id(session_id: str) -> str:
    """Id of the session's ``claude.session`` start event."""
    return _uuid5(f"claude-code/session/{session_id}/")


def prompt_event_id(session_id: str, prompt_id: str) -> str:
    """Id of the ``claude.prompt`` event of one user prompt."""
    return _uuid5(f"claude-code/prompt/{session_id}/{prompt_id}")


def tool_use_event_id(session_id: str, tool_use_id: str) -> str:
    """Id of the ``claude.tool_use`` event of one tool call."""
    return _uuid5(f"claude-code/tool_use/{session_id}/{tool_use_id}")
