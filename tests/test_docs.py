"""README documents every setting, environment variable and command."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitaudit import config

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("field", config.FIELDS, ids=lambda field: field.name)
def test_every_setting_is_documented(field: config.Field) -> None:
    assert f"`{field.env}`" in README
    assert f"`{field.name}`" in README


@pytest.mark.parametrize(
    "command",
    [
        "gitaudit git",
        "gitaudit shim install",
        "gitaudit shim uninstall",
        "gitaudit redact",
        "gitaudit ingest",
        "gitaudit log",
        "gitaudit verify",
        "gitaudit db upgrade",
        "gitaudit db status",
        "gitaudit config show",
        "gitaudit demo",
        "gitaudit watch",
    ],
)
def test_every_command_is_documented(command: str) -> None:
    assert f"`{command}" in README


def test_other_environment_variables_are_documented() -> None:
    for variable in (
        "GITAUDIT_CORRELATION_ID",
        "GITAUDIT_CONFIG",
        "XDG_DATA_HOME",
        "XDG_STATE_HOME",
    ):
        assert f"`{variable}`" in README


def test_public_api() -> None:
    import gitaudit

    assert sorted(gitaudit.__all__) == sorted(
        [
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
    )
    for name in gitaudit.__all__:
        assert getattr(gitaudit, name) is not None
