"""README documents every setting, environment variable and command."""

from __future__ import annotations

import re
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
        "gitaudit report",
        "gitaudit verify",
        "gitaudit db upgrade",
        "gitaudit db status",
        "gitaudit db init-roles",
        "gitaudit config show",
        "gitaudit demo",
        "gitaudit watch",
        "gitaudit resolve",
        "gitaudit claude usage",
        "gitaudit claude-code install",
        "gitaudit claude-code uninstall",
        "gitaudit claude-code status",
        "gitaudit claude-code-hook",
        "gitaudit retention run",
        "gitaudit checkpoint",
        "gitaudit keys generate",
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


def _reasons_in_code() -> set[str]:
    """Every literal ``reason`` the code counts in ``gitaudit_events_rejected``: the second
    argument (or ``reason=``) of ``….rejected.labels(...)`` and of ``ProtocolError(...)``."""
    import ast

    found: set[str] = set()
    for path in (Path(__file__).resolve().parent.parent / "gitaudit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            counted = isinstance(func, ast.Attribute) and func.attr == "labels" and (
                isinstance(func.value, ast.Attribute) and func.value.attr == "rejected"
            )
            raised = (isinstance(func, ast.Name) and func.id == "ProtocolError") or (
                isinstance(func, ast.Attribute) and func.attr == "ProtocolError"
            )
            if not (counted or raised):
                continue
            values = node.args[1:2] + [kw.value for kw in node.keywords if kw.arg == "reason"]
            found |= {v.value for v in values if isinstance(v, ast.Constant)}
    return found


def test_every_rejected_reason_is_documented() -> None:
    from gitaudit.daemon.metrics import REJECT_REASONS

    in_code = _reasons_in_code()
    assert {"utf8", "truncated", "backlog", "intake_error"} <= in_code  # the scan works
    assert in_code <= set(REJECT_REASONS)
    table = README.split("| `reason` |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)` \| ", table, re.M))
    assert documented == set(REJECT_REASONS)
