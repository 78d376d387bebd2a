"""The dispatch table of report kinds: name -> ``build(conn, flt, options, progress)``.

Each kind is a module ``gitaudit.report.<kind>`` exposing::

    def build(conn: Connection, flt: EventFilter, options: ReportOptions,
              progress: Callable[[int], None]) -> Report

imported only when that kind is asked for (a report's libraries are not every
reader's). A kind listed here whose module is not installed is a clear error, not a
traceback. Adding a kind: write its module and add one line to :data:`MODULES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from gitaudit.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from gitaudit.report.model import Report
    from gitaudit.report.options import ReportOptions
    from gitaudit.store.reader import EventFilter

Build = Callable[["Connection", "EventFilter", "ReportOptions", Callable[[int], None]], "Report"]

# kind -> (module, what it shows): `gitaudit report KIND`, help and README list them in this order
MODULES: Final = {
    "usage": ("gitaudit.report.usage", "operations over time, top actors and repositories, "
              "failures, durations, conflicts, Claude usage"),
    "soc2": ("gitaudit.report.soc2", "change-management and access evidence for a period"),
    "security": ("gitaudit.report.security", "unusual activity for an investigation"),
    "gdpr": ("gitaudit.report.gdpr", "every event that identifies --subject (access request)"),
}  # fmt: skip


def _lazy(kind: str) -> Build:
    def build(
        conn: Connection, flt: EventFilter, options: ReportOptions,
        progress: Callable[[int], None],
    ) -> Report:  # fmt: skip
        return builder(kind)(conn, flt, options, progress)

    build.__name__ = f"build_{kind}"
    return build


def check_kind(kind: str) -> str:
    """``kind`` if it is a report kind; else UsageError naming them (and the closest)."""
    if kind not in MODULES:
        import difflib

        close = difflib.get_close_matches(kind, MODULES, n=1)
        guess = f"did you mean {close[0]}? " if close else ""
        raise UsageError(f"unknown report kind {kind!r}",
                         f"{guess}report kinds: {', '.join(MODULES)}")  # fmt: skip
    return kind


def builder(kind: str) -> Build:
    """The ``build`` function of ``kind``, its module imported now.

    Raises UsageError naming the valid kinds for an unknown one, and saying so when the
    kind's module is not part of this installation.
    """
    name = MODULES[check_kind(kind)][0]
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        available = [other for other, (mod, _) in MODULES.items() if _installed(mod)]
        raise UsageError(
            f"the {kind} report is not available in this gitaudit ({name} is missing)",
            f"available here: {', '.join(available)}; upgrade gitaudit for the {kind} report",
        ) from None
    build: Build = module.build
    return build


def _installed(module: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module) is not None


KINDS: Final[dict[str, Build]] = {kind: _lazy(kind) for kind in MODULES}
