"""The one code path every captured event takes: policy, then sanitize, then transport.

Capture code (wrapper, hooks, trace2, Claude client, watcher) hands plain dicts
to :func:`emit`; the daemon's intake runs :meth:`Pipeline.sanitize` on what
its socket, its trace2 receiver and its repo watcher take. Sanitizing is:
valid UTF-8, messages hidden (unless ``capture_messages``, see
:mod:`gitaudit.capture.messages`), redaction, then :func:`gitaudit.limits.fit` (oversized fields
cut, so no later stage refuses the event). Stdlib only (plus
:mod:`gitaudit.sanitize`): the git wrapper calls this on every git command.
"""

from __future__ import annotations

from gitaudit.capture.messages import hide_messages
from gitaudit.errors import ConfigError
from gitaudit.jsonfast import compact_encoder
from gitaudit.limits import fit
from gitaudit.policy import Policy
from gitaudit.sanitize import Redactor
from gitaudit.transport import Delivery, deliver

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from gitaudit.config import Settings


def _valid_text(value: str) -> str:
    """Replace what is not valid Unicode (lone surrogates from undecodable bytes)."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape" if _escaped(value) else "replace").decode(
            "utf-8", "replace"
        )
    return value


def _escaped(value: str) -> bool:
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def clean_text(value: Any) -> Any:
    """Make every string in a nested structure valid UTF-8 text.

    Almost every event already is: one pass of the C JSON encoder tells, and only
    an event holding lone surrogates (undecodable bytes) is walked and repaired.
    """
    if _is_valid_text(value):
        return value
    return _repair(value)


_DUMPS_UNICODE = compact_encoder(ensure_ascii=False)


def _is_valid_text(value: Any) -> bool:
    try:
        _DUMPS_UNICODE(value).encode("utf-8")
    except UnicodeEncodeError:
        return False  # a lone surrogate somewhere
    except (TypeError, ValueError):
        return False  # not plain JSON data (odd keys or values): let the walk normalize it
    return True


def _repair(value: Any) -> Any:
    if isinstance(value, str):
        return _valid_text(value)
    if isinstance(value, dict):
        return {_valid_text(str(key)): _repair(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_repair(item) for item in value]
    return value


def user_id_key(settings: Settings) -> bytes | None:
    """The key of ``hash_user_ids`` pseudonyms (None when they are off); raises ConfigError."""
    if not settings.hash_user_ids or settings.user_id_key_file is None:
        return None
    try:
        with open(settings.user_id_key_file, "rb") as handle:
            key = handle.read().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read user_id_key_file {settings.user_id_key_file}: {exc.strerror}",
            "create the key file or unset GITAUDIT_HASH_USER_IDS",
        ) from exc
    if not key:
        raise ConfigError(f"user_id_key_file {settings.user_id_key_file} is empty")
    return key


class Pipeline:
    """Policy and sanitizer, configured once; ``process`` is cheap per event."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.hide_messages = not settings.capture_messages
        self.policy = Policy(settings)
        self.redactor = Redactor(
            sensitive_fields=settings.sensitive_fields,
            hash_user_ids=settings.hash_user_ids,
            user_id_key=user_id_key(settings),
        )

    def sanitize(self, raw: dict[str, Any], *, valid_text: bool = False) -> dict[str, Any]:
        """The event redacted, valid UTF-8 and within the size limits (no policy decision).

        ``valid_text`` skips the UTF-8 check when the caller knows there is nothing
        to repair (strings decoded from JSON text without surrogate escapes).
        """
        event = raw if valid_text else clean_text(raw)
        if self.hide_messages:
            event = hide_messages(event)
        result: dict[str, Any] = self.redactor.redact_event(event)
        return fit(result)

    def process(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        """The event as it may be written anywhere, or None if policy drops it."""
        if not self.policy.keep(raw):
            return None
        return self.sanitize(raw)

    def emit(self, events: Sequence[dict[str, Any]]) -> Delivery | None:
        """Process and deliver events; None when policy kept none of them."""
        kept = [event for event in (self.process(raw) for raw in events) if event is not None]
        if not kept:
            return None
        return deliver(kept, self.settings)


def emit(events: Sequence[dict[str, Any]], settings: Settings) -> Delivery | None:
    """Run events through policy, sanitizer and transport (see :class:`Pipeline`)."""
    return Pipeline(settings).emit(events)
