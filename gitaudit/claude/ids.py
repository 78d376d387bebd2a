"""Name-based event ids of a Claude Code session's anchors: any process can point at them.

The ``claude.session`` start event, each ``claude.prompt`` and each
``claude.tool_use`` have ids derived from the Claude Code ids alone, so a git
event, an OTLP record or a later hook names its parent without asking the
store. The value is exactly::

    uuid.uuid5(NAMESPACE, f"claude-code/{kind}/{session_id}/{sub}")

with ``kind`` ``session``/``prompt``/``tool_use`` and ``sub`` ``""``, the
``prompt_id`` or the ``tool_use_id``. Hot path (the Claude Code hook entry):
``import uuid`` costs ~4 ms, so the SHA-1 comes from the C module ``_sha1``
(``hashlib`` loads OpenSSL, ~2 ms) and the 16 bytes are formatted as a
version-5 UUID here; a test compares with :func:`uuid.uuid5`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Final

NAMESPACE: Final = "6f1d3c2e-8a4b-5c6d-9e0f-1a2b3c4d5e6f"
_NAMESPACE_BYTES: Final = bytes.fromhex(NAMESPACE.replace("-", ""))


def _sha1() -> Callable[[bytes], Any]:
    try:
        from _sha1 import sha1  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # pragma: no cover - CPython builds have it
        from hashlib import sha1
    return sha1  # type: ignore[no-any-return,unused-ignore]


def name_based(name: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, name))`` without importing :mod:`uuid`."""
    digest = bytearray(_sha1()(_NAMESPACE_BYTES + name.encode("utf-8", "surrogatepass")).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest[:16].hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def session_event_id(session_id: str) -> str:
    """Id of the session's ``claude.session`` start event."""
    return name_based(f"claude-code/session/{session_id}/")


def prompt_event_id(session_id: str, prompt_id: str) -> str:
    """Id of the ``claude.prompt`` event of one user prompt."""
    return name_based(f"claude-code/prompt/{session_id}/{prompt_id}")


def tool_use_event_id(session_id: str, tool_use_id: str) -> str:
    """Id of the ``claude.tool_use`` event of one tool call (its result)."""
    return name_based(f"claude-code/tool_use/{session_id}/{tool_use_id}")
