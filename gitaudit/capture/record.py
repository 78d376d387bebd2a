"""Pieces of a ``git.*`` event shared by every path that sees a whole git command.

The wrapper (which runs git itself) and the daemon's trace2 receiver (which
only hears git's trace2 stream) build the same event shape through these
pure functions: what the command line asked for, what the trace said, the
error text, the ``repo`` object and the event dict itself. Stdlib only and
cheap to import: the wrapper loads this on every command.
"""

from __future__ import annotations

from gitaudit import catalog
from gitaudit.capture import context, details

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms to import; annotations are strings at runtime
    from collections.abc import Mapping, Sequence
    from typing import Any

    from gitaudit.capture.trace2 import Trace2Summary


def command_details(
    argv: Sequence[str], alias: str | None = None, alias_argv: Sequence[str] | None = None
) -> tuple[details.Invocation, dict[str, Any]]:
    """Parse ``git ARGV`` (after an alias expansion trace2 reported) into (invocation, details).

    ``argv`` excludes the ``git`` executable itself. The details hold
    ``subcommand``, ``argv`` and what the subcommand's arguments asked for.
    """
    inv = details.parse_invocation(argv)
    if alias and alias_argv:
        inv = details.rewrite_for_alias(inv, alias, alias_argv)
    found: dict[str, Any] = {
        "subcommand": inv.subcommand,
        "argv": list(argv),
        **details.request_details(inv.subcommand, inv.args),
    }
    return inv, found


def trace_details(summary: Trace2Summary) -> dict[str, Any]:
    """Details trace2 adds: ``trace2_sid``, ``alias`` and the hooks git ran (name, exit code)."""
    found: dict[str, Any] = {"trace2_sid": summary.sid}
    if summary.alias:
        found["alias"] = summary.alias
    hooks = [
        {"name": child.hook_name, "exit_code": child.exit_code}
        for child in summary.children
        if child.hook_name
    ]
    if hooks:
        found["hooks"] = hooks
    return found


def error_text(errors: Sequence[str], limit: int) -> str | None:
    """git's error messages as one text of at most ``limit`` characters (None if none)."""
    if not errors:
        return None
    text = "\n".join(errors)
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def short_branch(ref: str | None) -> str | None:
    """``main`` for ``refs/heads/main``; other refs (and None) unchanged."""
    if ref and ref.startswith("refs/heads/"):
        return ref[len("refs/heads/") :]
    return ref


def repo_object(
    path: str | None,
    params: Mapping[str, str],
    *,
    url: str | None = None,
    branch: str | None = None,
    head_before: str | None = None,
    head_after: str | None = None,
) -> dict[str, Any]:
    """The event's ``repo``: the remote is ``url`` or the preferred ``remote.*.url`` of
    ``params``, without credentials; the name comes from the remote, else the path."""
    if url is None:
        _, url = context.preferred_remote(params)
    remote = details.strip_credentials(url) if url else None
    return {
        "path": path,
        "remote": remote,
        "name": details.repo_name(remote, path),
        "branch": short_branch(branch),
        "head_before": head_before,
        "head_after": head_after,
    }


def git_event(
    *,
    event_id: str,
    started: float | None,
    duration_ms: float | None,
    operation: str,
    event_details: dict[str, Any],
    args: Sequence[str],
    outcome: str,
    source: str,
    correlation_id: str,
    parent_id: str | None,
    actor: dict[str, Any],
    repo: dict[str, Any] | None,
    exit_code: int | None,
    error: str | None,
) -> dict[str, Any]:
    """The event dict of one git command (category and severity derived here)."""
    return {
        "id": event_id,
        "schema_version": catalog.SCHEMA_VERSION,
        "occurred_at": catalog.now_rfc3339(started),
        "duration_ms": duration_ms,
        "operation": operation,
        "category": catalog.category_for(operation, event_details, args),
        "outcome": outcome,
        "severity": catalog.severity_for(operation, event_details, outcome),
        "source": source,
        "correlation_id": correlation_id,
        "parent_id": parent_id,
        "actor": actor,
        "repo": repo,
        "result": {"exit_code": exit_code, "error": error},
        "details": event_details,
    }
