"""Policy: the one place that decides whether an event is kept.

Applied by :mod:`gitaudit.pipeline` for every capture path. Today it honours
``enabled``; levels, exclusions and sampling join here (DESIGN.md).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from gitaudit.config import Settings


def keep(event: Mapping[str, Any], settings: Settings) -> bool:
    """True if the event should be recorded under these settings."""
    del event  # every kept event is kept whatever its content, until levels exist
    return settings.enabled
