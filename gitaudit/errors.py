"""The one exception tree gitaudit raises.

Deep code raises a :class:`GitauditError` subclass carrying what went wrong and
what the operator can do about it; a single handler around the CLI (see
``gitaudit.cli.app.main``) turns it into a readable message and an exit code.
Third-party errors are translated at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations


class GitauditError(Exception):
    """Base of every operator-facing error: a message plus a hint."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(GitauditError):
    """A command-line option or argument is out of range or names an unknown value."""


class ConfigError(GitauditError):
    """A setting is invalid: wrong type, unknown value, unreadable file."""


class SpoolError(GitauditError):
    """The spool directory cannot be created, locked or written."""


class StoreError(GitauditError):
    """The audit store cannot be opened, migrated, read or written."""


class GitNotFoundError(GitauditError):
    """No real git executable could be found."""

    exit_code = 127


class IntegrityError(GitauditError):
    """A hash chain does not verify."""

    exit_code = 1
