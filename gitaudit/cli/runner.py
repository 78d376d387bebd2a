"""Running a Typer app with gitaudit's error handling, and the reader fast path.

The readers (``log``, ``tail``, ``stats``, ``trace``, ``report``) run as a one-command app
built from their own module only (:func:`run_reader`): importing the whole CLI
(every command group, the capture and sanitizer modules they pull in) would
cost every read tens of milliseconds for nothing. Their options, help and
errors are the same as through the full app.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from gitaudit.errors import GitauditError

if TYPE_CHECKING:
    import typer

# command -> (module, function): registered in the full app from this same table.
READERS: Final = {
    "log": ("gitaudit.cli.log", "log_command"),
    "tail": ("gitaudit.cli.tail", "tail_command"),
    "stats": ("gitaudit.cli.stats", "stats_command"),
    "trace": ("gitaudit.cli.trace", "trace_command"),
    "report": ("gitaudit.cli.report", "report_command"),
}


def report_error(exc: GitauditError) -> int:
    """Print an operator-facing error (what went wrong, what to do); return its exit code."""
    print(f"gitaudit: error: {exc.message}", file=sys.stderr)
    if exc.hint:
        print(f"  hint: {exc.hint}", file=sys.stderr)
    return exc.exit_code


def run_app(app: typer.Typer, args: list[str], prog_name: str = "gitaudit") -> int:
    """Run ``app`` with ``args``; returns the exit code."""
    try:
        app(args=args, prog_name=prog_name)
    except GitauditError as exc:
        return report_error(exc)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        return code if isinstance(code, int) else 1
    except KeyboardInterrupt:
        print("gitaudit: interrupted", file=sys.stderr)
        return 130
    return 0


def reader_command(name: str) -> Callable[..., None]:
    """The command function of reader ``name`` (see :data:`READERS`)."""
    module, function = READERS[name]
    command: Callable[..., None] = getattr(importlib.import_module(module), function)
    return command


def run_reader(args: list[str]) -> int:
    """Run ``gitaudit <reader> ...`` (``args[0]`` in :data:`READERS`) as a one-command app."""
    import typer

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    app.command(args[0])(reader_command(args[0]))
    return run_app(app, args[1:], prog_name=f"gitaudit {args[0]}")
