"""gitaudit: an audit trail for Git operations.

The public API is small and loaded lazily, so that ``import gitaudit`` (done by
the git wrapper on every command) costs nothing:

- :func:`redact` and :class:`Redactor`: the sanitizer.
- :class:`Event`: the event model (schema version 1).
- :class:`Settings` and :func:`load_settings`: configuration.
- :class:`Store`, :class:`EventFilter`: the append-only store and its queries.
- :class:`GitauditError`: base of every error gitaudit raises.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

__all__ = [
    "Event",
    "EventFilter",
    "GitauditError",
    "Redactor",
    "Settings",
    "Store",
    "__version__",
    "load_settings",
    "redact",
]

_LAZY = {
    "Event": ("gitaudit.events", "Event"),
    "EventFilter": ("gitaudit.store", "EventFilter"),
    "GitauditError": ("gitaudit.errors", "GitauditError"),
    "Redactor": ("gitaudit.sanitize", "Redactor"),
    "Settings": ("gitaudit.config", "Settings"),
    "Store": ("gitaudit.store", "Store"),
    "load_settings": ("gitaudit.config", "load"),
    "redact": ("gitaudit.sanitize", "redact"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'gitaudit' has no attribute {name!r}") from None
    import importlib

    return getattr(importlib.import_module(module), attr)
