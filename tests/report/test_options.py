"""ReportOptions and the two report settings: protected refs and working hours."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gitaudit import config
from gitaudit.errors import ConfigError
from gitaudit.report.options import ReportOptions, WorkingHours, protected


def test_defaults_come_from_the_settings_table() -> None:
    options = ReportOptions.from_settings(config.load(environ={}, files=[]))
    assert options.protected_branches == ("main", "master", "release/*", "refs/tags/*")
    assert options.working_hours.describe() == "Mon-Fri 08:00-19:00 UTC"
    assert options.timezone == "UTC"
    assert ReportOptions().protected_branches == options.protected_branches


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("refs/heads/main", True),
        ("main", True),
        ("refs/heads/release/2.1", True),
        ("refs/tags/v1.0", True),
        ("refs/heads/feature/main", False),
        ("refs/heads/mainline", False),
    ],
)
def test_protected_matches_the_full_ref_or_the_branch(ref: str, expected: bool) -> None:
    assert protected(ref, ("main", "release/*", "refs/tags/*")) is expected


def test_settings_from_the_environment() -> None:
    settings = config.load(
        environ={
            "GITAUDIT_REPORT_PROTECTED_BRANCHES": "trunk, prod/*",
            "GITAUDIT_REPORT_WORKING_HOURS": "Sun-Thu 07:30-16:00 Asia/Jerusalem",
        },
        files=[],
    )
    options = ReportOptions.from_settings(settings, top=5)
    assert options.protected_branches == ("trunk", "prod/*")
    hours = options.working_hours
    assert (hours.weekdays, hours.start_minute, hours.end_minute) == ((0, 1, 2, 3, 6), 450, 960)
    assert options.timezone == "Asia/Jerusalem"
    # Sunday 2026-11-01 06:00 UTC is 08:00 in Jerusalem (UTC+2): inside
    assert hours.contains(datetime(2026, 11, 1, 6, 0, tzinfo=UTC))
    # Friday 2026-11-06 10:00 UTC: not a working day there
    assert not hours.contains(datetime(2026, 11, 6, 10, 0, tzinfo=UTC))
    # Monday 2026-11-02 14:00 UTC is 16:00 local: the end is exclusive
    assert not hours.contains(datetime(2026, 11, 2, 14, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Mon-Fri", "expected DAYS HH:MM-HH:MM"),
        ("Mon-Fro 08:00-19:00", "'Mon-Fro' is not a day"),
        ("Mon-Fri 19:00-08:00", "is not after the start"),
        ("Mon-Fri 8:0-19:00", "'8:0' is not a time HH:MM"),
        ("Mon-Fri 08:00-25:00", "between 00:00 and 24:00"),
        ("Mon-Fri 08:00 UTC", "is not a time range"),
    ],
)
def test_invalid_working_hours_name_the_setting(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(environ={"GITAUDIT_REPORT_WORKING_HOURS": text}, files=[])
    assert says in caught.value.message
    assert "GITAUDIT_REPORT_WORKING_HOURS" in caught.value.hint


def test_unknown_time_zone_is_a_config_error() -> None:
    environ = {"GITAUDIT_REPORT_WORKING_HOURS": "Mon-Fri 09:00-17:00 Mars/Base"}
    settings = config.load(environ=environ, files=[])
    with pytest.raises(ConfigError) as caught:
        ReportOptions.from_settings(settings)
    assert "unknown time zone 'Mars/Base'" in caught.value.message
    assert "GITAUDIT_REPORT_WORKING_HOURS" in caught.value.message


def test_working_hours_describe_and_wrap_around_the_week() -> None:
    hours = WorkingHours.parse("Fri-Mon 22:00-24:00")
    assert hours.weekdays == (0, 4, 5, 6)
    assert hours.describe() == "Mon,Fri-Sun 22:00-24:00 UTC"
    assert hours.contains(datetime(2026, 11, 7, 23, 59, tzinfo=UTC))  # Saturday
