"""The daemon's own logs: structlog, one JSON object per line on stderr (journald).

Log lines carry ids, counts and error texts, never an event body: events are
logged nowhere before the sanitizer ran, and not after it either (the store
is the record).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure(level: str = "info") -> None:
    """Route structlog to stderr as JSON lines with an ISO timestamp and the level."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(**context: Any) -> Any:
    """A logger bound to ``context`` (component names and the like)."""
    return structlog.get_logger("gitaudit.daemon").bind(**context)
