"""Claude, audited: every Anthropic API call on record, with its cost.

Contract (README "Claude API calls")::

    from gitaudit.claude import AuditedAnthropic      # instead of anthropic.Anthropic
    client = AuditedAnthropic(api_key=..., audit_parent_id=None, audit_correlation_id=None,
                              audit_settings=None, on_record=None)
    client.messages.create(...)                       # exactly what the SDK returns / raises
    with client.messages.stream(...) as stream: ...   # the SDK's own stream manager

- :class:`AuditedAnthropic` / :class:`AsyncAuditedAnthropic` subclass the SDK's
  clients and take the same keyword arguments (``api_key``, ``base_url``,
  ``http_client``, ``max_retries``, ``timeout``, ...) plus keyword-only
  ``audit_parent_id``, ``audit_correlation_id`` (else ``GITAUDIT_PARENT_ID`` /
  ``GITAUDIT_CORRELATION_ID`` or the CI job, else a new id per client),
  ``audit_settings`` (a :class:`gitaudit.config.Settings`; else loaded as for
  any event) and ``on_record`` (called with each recorded event dict, after the
  sanitizer, right after it is handed to transport).
- Each ``messages.create`` / ``messages.stream`` call records one
  ``claude.request`` event (source ``claude``) through the normal pipeline
  (policy, sanitizer, size limits, then daemon socket or spool); see
  :mod:`gitaudit.claude.record` for its details. Recording never changes what
  the call returns or raises; a recording failure is reported once on stderr.
- :func:`flush` waits until every recorded event was delivered (done at exit).
- anthropic 2.x runs on ``httpx2``: a fake endpoint is injected with
  ``http_client=httpx2.Client(transport=httpx2.MockTransport(handler))`` (the SDK
  refuses ``httpx`` objects); ``tests/claude/fake.py`` has one ready.
- Cost: :mod:`gitaudit.claude.prices` (versioned table, ``GITAUDIT_PRICE_TABLE``).

Only this package imports ``anthropic``, and only when the client classes are
first used (``gitaudit.claude.prices`` and the readers never load the SDK);
the git wrapper and hooks never import anything from here.

This package is lazy: importing it imports nothing (not even :mod:`typing`),
because the Claude Code hook entry (:mod:`gitaudit.claude.code_hook`, run for
every tool call of a Claude Code session) lives in it; ``flush`` and the client
classes load on first access.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds to import: not on the Claude Code hook path
    from typing import Any

    from gitaudit.claude.client import AsyncAuditedAnthropic, AuditedAnthropic
    from gitaudit.claude.delivery import flush

__all__ = ["AsyncAuditedAnthropic", "AuditedAnthropic", "flush"]


def __getattr__(name: str) -> Any:
    if name in {"AuditedAnthropic", "AsyncAuditedAnthropic"}:
        from gitaudit.claude import client

        return getattr(client, name)
    if name == "flush":
        from gitaudit.claude import delivery

        return delivery.flush
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
