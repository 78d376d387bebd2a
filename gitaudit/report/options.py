"""What every report kind is told besides the filter: period, protected refs, working hours.

:class:`ReportOptions` is resolved once by ``gitaudit report`` (from the command line and
the settings ``report_protected_branches`` / ``report_working_hours``) and handed to each
kind's ``build(conn, flt, options, progress)``. A kind that needs more adds its own field
here, with a default, so the other kinds and the CLI keep working unchanged.
"""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from gitaudit import config
from gitaudit.config import Settings
from gitaudit.errors import ConfigError

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class WorkingHours:
    """Weekdays (Monday 0) and a time range in a time zone; :meth:`contains` a moment."""

    weekdays: tuple[int, ...]
    start_minute: int  # minutes after midnight, inclusive
    end_minute: int  # exclusive; 1440 means midnight at the end of the day
    timezone: str
    zone: tzinfo = field(compare=False, repr=False)

    @classmethod
    def parse(cls, text: str, source: str = "report_working_hours") -> WorkingHours:
        """Parse ``Mon-Fri 08:00-19:00 UTC``; ConfigError naming ``source`` when invalid."""
        try:
            weekdays, start, end, name = config.parse_working_hours(text)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"invalid working hours {text!r} ({source}): {exc}",
                f"write them as {config.WORKING_HOURS_FORM}",
            ) from None
        return cls(weekdays, start, end, name, _zone(name, text, source))

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` (aware; naive means UTC) falls inside the working hours."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        local = moment.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return local.weekday() in self.weekdays and self.start_minute <= minute < self.end_minute

    def describe(self) -> str:
        """As an operator writes it: ``Mon,Tue,Wed,Thu,Fri 08:00-19:00 UTC``."""
        runs: list[list[int]] = []
        for day in self.weekdays:
            if runs and runs[-1][-1] == day - 1:
                runs[-1].append(day)
            else:
                runs.append([day])
        days = ",".join(
            _DAY_NAMES[run[0]] + (f"-{_DAY_NAMES[run[-1]]}" if len(run) > 1 else "")
            for run in runs
        )
        return f"{days} {_hhmm(self.start_minute)}-{_hhmm(self.end_minute)} {self.timezone}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _zone(name: str, text: str, source: str) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"invalid working hours {text!r} ({source}): unknown time zone {name!r}",
            "use UTC or an IANA zone name such as Europe/Paris or America/New_York",
        ) from None


@functools.lru_cache(maxsize=4096)  # a report asks about the same few refs again and again
def protected(ref: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``ref`` (``refs/heads/main``, ``refs/tags/v1`` or a branch name ``main``)
    matches one of the fnmatch ``patterns`` (as the full ref, or as the branch name)."""
    short = ref.removeprefix("refs/heads/")
    return any(fnmatch.fnmatchcase(ref, p) or fnmatch.fnmatchcase(short, p) for p in patterns)


def _default_settings() -> Settings:
    return Settings()


@dataclass(frozen=True)
class ReportOptions:
    """Everything a report kind is told besides its :class:`~gitaudit.store.EventFilter`.

    ``since``/``until`` are the period (aware UTC datetimes, None: unbounded), the same
    as the filter's; ``protected_branches`` the globs of :func:`protected`;
    ``working_hours`` when people are expected to work; ``settings`` everything else
    in force (retention, checkpoints, ...); ``subject`` the data subject of ``gdpr``;
    ``top`` how many rows a "top N" table shows before its "others" row;
    ``clone_threshold`` the distinct repositories one actor may clone in a day before
    ``security`` flags it; ``verify`` whether ``soc2`` recomputes the hash chains; ``jobs``
    how many worker processes a report may start beside its own (``soc2``: verifying,
    ``security``: the off-hours pass; None: one per CPU, at most
    :data:`gitaudit.report.evidence.MAX_JOBS`, for a period of at least
    :data:`~gitaudit.report.evidence.PARALLEL_FROM` records; 1: none).
    """

    since: datetime | None = None
    until: datetime | None = None
    protected_branches: tuple[str, ...] = tuple(
        config.FIELDS_BY_NAME["report_protected_branches"].default
    )
    working_hours: WorkingHours = field(
        default_factory=lambda: WorkingHours.parse(
            config.FIELDS_BY_NAME["report_working_hours"].default
        )
    )
    settings: Settings = field(default_factory=_default_settings)
    subject: str | None = None
    top: int = 10
    clone_threshold: int = 10
    verify: bool = True
    jobs: int | None = None

    @property
    def timezone(self) -> str:
        """The zone of the working hours (IANA name, ``UTC`` by default)."""
        return self.working_hours.timezone

    def is_protected(self, ref: str) -> bool:
        """Whether ``ref`` is a protected branch or tag (see :func:`protected`)."""
        return protected(ref, self.protected_branches)

    @classmethod
    def from_settings(cls, settings: Settings, **fields: Any) -> ReportOptions:
        """The options with the report settings of ``settings``, plus ``fields``."""
        return cls(
            protected_branches=tuple(settings.report_protected_branches),
            working_hours=WorkingHours.parse(
                settings.report_working_hours, "report_working_hours / "
                + config.FIELDS_BY_NAME["report_working_hours"].env,
            ),
            settings=settings,
            **fields,
        )
