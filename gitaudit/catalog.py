"""The operation catalog and how operations are classified.

Pure functions and constants only, stdlib only: the git wrapper imports this on
every command. The pydantic model that validates whole events lives in
:mod:`gitaudit.events`, which re-exports everything here.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any, Final

SCHEMA_VERSION: Final = 1

OPERATIONS: Final = (
    "git.clone",
    "git.fetch",
    "git.pull",
    "git.commit",
    "git.push",
    "git.rebase",
    "git.merge",
    "git.cherry_pick",
    "git.checkout",
    "git.reset",
    "git.tag",
    "git.branch",
    "git.other",
    "ref.update",
    "conflict.detected",
    "conflict.resolved",
    "conflict.aborted",
    "claude.request",
    # A Claude Code session (source claude_code; details: gitaudit.claude.code_hook, README
    # "What a Claude Code session records"): session start/end, each user prompt (phase
    # submit) and the end of its turn (phase stop), each tool call's result.
    "claude.session",
    "claude.prompt",
    "claude.tool_use",
    "validation.failed",
    "audit.config_changed",
    "audit.verify",
    "audit.retention",
    "audit.checkpoint",
    "audit.rejected",
    "audit.subject_forgotten",
    "audit.store_rekeyed",
)
CATEGORIES: Final = ("read", "create", "update", "delete")
OUTCOMES: Final = ("success", "failure")
SEVERITIES: Final = ("low", "medium", "high")
SOURCES: Final = (
    "wrapper", "hook", "trace2", "claude", "claude_code", "watcher", "daemon", "cli",
)  # fmt: skip
INTEGRITY_FIELDS: Final = ("chain_id", "seq", "prev_hash", "hash")

# git subcommand -> operation; anything else is git.other.
SUBCOMMAND_OPERATIONS: Final[Mapping[str, str]] = {
    "clone": "git.clone",
    "fetch": "git.fetch",
    "pull": "git.pull",
    "commit": "git.commit",
    "push": "git.push",
    "rebase": "git.rebase",
    "merge": "git.merge",
    "cherry-pick": "git.cherry_pick",
    "checkout": "git.checkout",
    "switch": "git.checkout",
    "reset": "git.reset",
    "tag": "git.tag",
    "branch": "git.branch",
}

# Claude Code tools that only look (claude.tool_use of these is a read, like `git status`).
CLAUDE_CODE_READ_TOOLS: Final = frozenset(
    {"Read", "Glob", "Grep", "LS", "WebFetch", "WebSearch", "TodoRead", "NotebookRead",
     "BashOutput", "ListMcpResourcesTool", "ReadMcpResourceTool"}
)  # fmt: skip

# Local inspection commands: reads that a writes_only level drops.
READ_SUBCOMMANDS: Final = frozenset(
    {
        "status",
        "log",
        "diff",
        "show",
        "rev-parse",
        "rev-list",
        "ls-files",
        "ls-tree",
        "cat-file",
        "blame",
        "grep",
        "describe",
        "shortlog",
        "reflog",
        "for-each-ref",
        "show-ref",
        "name-rev",
        "merge-base",
        "help",
        "version",
        "whatchanged",
        "var",
        "ls-remote",
        "archive",
        "bundle",
        "count-objects",
        "fsck",
        "check-ignore",
        "check-attr",
        "diff-tree",
        "diff-files",
        "diff-index",
        "range-diff",
        "verify-commit",
        "verify-tag",
        "cherry",
        "config",
    }
)

_FIXED_CATEGORY: Final[Mapping[str, str]] = {
    "git.clone": "read",
    "git.fetch": "read",
    "git.pull": "update",
    "git.commit": "create",
    "git.rebase": "update",
    "git.merge": "update",
    "git.cherry_pick": "update",
    "git.checkout": "update",
    "git.reset": "update",
    "conflict.detected": "update",
    "conflict.resolved": "update",
    "conflict.aborted": "update",
    "claude.request": "create",
    "claude.session": "create",
    "claude.prompt": "create",
    "validation.failed": "read",
    "audit.config_changed": "update",
    "audit.verify": "read",
    "audit.retention": "delete",
    "audit.checkpoint": "create",
    "audit.rejected": "create",
    "audit.subject_forgotten": "delete",
    "audit.store_rekeyed": "update",
}


def operation_for(subcommand: str | None) -> str:
    """Map a git subcommand (``push``, ``cherry-pick``) to its catalog operation."""
    if not subcommand:
        return "git.other"
    return SUBCOMMAND_OPERATIONS.get(subcommand, "git.other")


def _push_category(details: Mapping[str, Any]) -> str:
    refs: Sequence[Mapping[str, Any]] = details.get("refs") or ()
    if deletes_ref("git.push", details):
        return "delete"
    if refs and all(ref.get("created") for ref in refs):
        return "create"
    return "update"


# git.other subcommands that delete a ref when their details say ``delete``.
REF_DELETING_SUBCOMMANDS: Final = frozenset({"update-ref", "symbolic-ref"})


def deletes_ref(operation: str, details: Mapping[str, Any] | None) -> bool:
    """Whether the operation deleted a ref, or asked to (the one rule behind ``category:
    delete`` for refs, ``severity: medium`` and the ``ref-delete`` policy class).

    ``branch -d/-D``, ``tag -d``, ``push --delete`` / ``:ref`` (or a ``deleted``
    entry in ``refs``), ``update-ref -d``, ``symbolic-ref -d`` and a ``ref.update``
    that deleted its ref.
    """
    details = details or {}
    refs: Sequence[Mapping[str, Any]] = details.get("refs") or ()
    if operation == "git.push":
        if refs:
            return any(isinstance(ref, dict) and ref.get("deleted") for ref in refs)
        return bool(details.get("delete"))
    if operation in {"git.branch", "git.tag"}:
        return bool(details.get("delete"))
    if operation == "ref.update":  # one change in details, or several under "refs"
        return any(isinstance(ref, dict) and ref.get("deleted") for ref in (*refs, details))
    if operation == "git.other":
        return details.get("subcommand") in REF_DELETING_SUBCOMMANDS and bool(
            details.get("delete")
        )
    return False


def _list_or_change(args: Sequence[str], delete_flags: set[str], create: bool) -> str:
    if any(arg in delete_flags for arg in args):
        return "delete"
    positional = [arg for arg in args if not arg.startswith("-")]
    if any(arg in {"-m", "-M", "--move", "-c", "-C", "--copy", "-f", "--force"} for arg in args):
        return "update"
    if any(arg in {"-l", "--list", "-v", "-vv", "-a", "-r", "--contains"} for arg in args):
        return "read"
    return "create" if positional and create else "read"


def category_for(
    operation: str, details: Mapping[str, Any] | None = None, args: Sequence[str] = ()
) -> str:
    """Category (read/create/update/delete) of an operation, from its details and arguments.

    A push that only creates refs is ``create``, one that deletes any ref is
    ``delete``, anything else ``update``.
    """
    details = details or {}
    fixed = _FIXED_CATEGORY.get(operation)
    if fixed is not None:
        return fixed
    if operation == "git.push":
        return _push_category(details)
    if operation == "claude.tool_use":
        return "read" if details.get("tool") in CLAUDE_CODE_READ_TOOLS else "update"
    if operation in {"git.branch", "git.tag"} and deletes_ref(operation, details):
        return "delete"
    if operation == "git.branch":
        return _list_or_change(args, {"-d", "-D", "--delete"}, create=True)
    if operation == "git.tag":
        return _list_or_change(args, {"-d", "--delete"}, create=True)
    if operation == "ref.update":
        if details.get("created"):
            return "create"
        return "delete" if details.get("deleted") else "update"
    if operation == "git.other":
        subcommand = details.get("subcommand")
        if deletes_ref(operation, details):
            return "delete"
        return "read" if subcommand in READ_SUBCOMMANDS or subcommand is None else "update"
    return "update"


def severity_for(operation: str, details: Mapping[str, Any] | None, outcome: str) -> str:
    """Severity: force-pushes are high; ref deletions (:func:`deletes_ref`), rewinds
    (a ``ref.update`` that is ``forced``) and hard resets medium."""
    details = details or {}
    refs: Sequence[Mapping[str, Any]] = details.get("refs") or ()
    if operation == "git.push" and any(isinstance(ref, dict) and ref.get("forced") for ref in refs):
        return "high"
    if deletes_ref(operation, details):
        return "medium"
    if operation == "ref.update" and any(  # one change in details, or several under "refs"
        isinstance(ref, dict) and ref.get("forced") for ref in (*refs, details)
    ):
        return "medium"
    if operation == "git.reset" and details.get("mode") == "hard":
        return "medium"
    if operation in {"audit.verify", "validation.failed"} and outcome == "failure":
        return "high"
    if operation in {"audit.config_changed", "audit.rejected"}:
        return "medium"
    return "low"


def uuid7(ms: int | None = None, seed: bytes | None = None) -> str:
    """A UUIDv7 string (RFC 9562): 48-bit Unix milliseconds, then random bits.

    ``ms`` and ``seed`` (at least 10 bytes, e.g. a digest) make it reproducible:
    every capture path that names the same thing the same way gets the same id.
    """
    ms = time.time_ns() // 1_000_000 if ms is None else ms
    rand = int.from_bytes(seed[:10] if seed is not None else os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def now_rfc3339(epoch: float | None = None) -> str:
    """An RFC 3339 UTC timestamp with microseconds, e.g. ``2026-11-22T04:50:18.237829Z``."""
    ns = time.time_ns() if epoch is None else round(epoch * 1_000_000) * 1000
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1000:06d}Z"


def canonical_json(value: Any) -> bytes:
    """Canonical serialization used for hashing: sorted keys, UTF-8, no whitespace."""
    import json  # deferred: the wrapper never hashes, and json pulls in re

    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8", "surrogatepass")


def audit_record(
    operation: str,
    details: dict[str, Any],
    *,
    source: str,
    actor: dict[str, Any],
    severity: str = "medium",
    correlation_id: str | None = None,
    duration_ms: float | None = None,
    exit_code: int | None = None,
) -> dict[str, Any]:
    """A record gitaudit writes about itself (``audit.*``): now, no repository, success;
    ``correlation_id`` None: a new one."""
    return {
        "id": uuid7(),
        "schema_version": SCHEMA_VERSION,
        "occurred_at": now_rfc3339(),
        "duration_ms": duration_ms,
        "operation": operation,
        "category": category_for(operation, {}),
        "outcome": "success",
        "severity": severity,
        "source": source,
        "correlation_id": uuid7() if correlation_id is None else correlation_id,
        "parent_id": None,
        "actor": actor,
        "repo": None,
        "result": {"exit_code": exit_code, "error": None},
        "details": details,
    }
