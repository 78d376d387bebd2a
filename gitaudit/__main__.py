"""Entry point of the ``gitaudit`` command.

``gitaudit git ...`` is the hot path: it goes straight to the wrapper without
importing Typer, rich or pydantic; so does ``gitaudit claude-code-hook`` (the
command Claude Code runs for each of its hook events, see
:mod:`gitaudit.claude.code_hook`). The readers run as one-command apps
(:mod:`gitaudit.cli.runner`); everything else goes to the full Typer app.

When ``gitaudit git`` is a process of its own (the console script, the shim),
:func:`wrap_git` runs it: a process that lives for one git command needs
neither the cyclic garbage collector (reference counting frees what it
allocates; the collector would only walk the freshly imported modules, several
times) nor the interpreter's teardown (unloading those modules again). Both
cost CPU on every git command, ~1.5 ms together on an idle machine against a
~8 ms bare interpreter start, more on a busy one. The wrapper writes its files
with ``os.write`` and closes them; stdout and stderr are flushed before the
process ends with git's exit status. Nor does it wait for the spool's
``fsync`` (:func:`gitaudit.transport.spool.sync_in_background`): the event is
written before the process ends, a child sees it to the disk (3 to 6 ms on a
busy disk).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds to import; annotations are strings at runtime
    from typing import NoReturn


def main(argv: list[str] | None = None) -> int:
    """Run gitaudit; returns the process exit code.

    Without ``argv`` (the console script), ``gitaudit git ...`` ends the
    process itself (:func:`wrap_git`) instead of returning.
    """
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "git":
        if argv is None:
            wrap_git(args[1:])
        from gitaudit.capture.wrapper import main as wrapper_main

        return wrapper_main(args[1:])
    if args and args[0] == "claude-code-hook":  # every Claude Code hook event: hot path too
        if argv is None:
            run_alone("gitaudit.claude.code_hook", args[1:], sync_spool=False)
        from gitaudit.claude.code_hook import main as hook_main

        return hook_main(args[1:])
    if args and args[0] in ("log", "tail", "stats", "trace", "report"):  # cli.runner.READERS
        from gitaudit.cli.runner import run_reader

        return run_reader(args)
    from gitaudit.cli.app import run

    return run(args)


def wrap_git(argv: list[str]) -> NoReturn:
    """``git argv...`` through the wrapper, then end this process with git's exit status.

    For a process that exists only for this one git command (see the module
    docstring): no cyclic garbage collection, no wait for the spool's fsync, no
    interpreter teardown.
    """
    run_alone("gitaudit.capture.wrapper", argv)


def run_alone(module: str, argv: list[str], *, sync_spool: bool = True) -> NoReturn:
    """``module.main(argv)`` in a process that exists for it alone, then end the process with
    its status: no cyclic garbage collection, no wait for the spool's fsync (``sync_spool``),
    no interpreter teardown (see the module docstring). The git wrapper and the Claude Code
    hook entry (which normally spools from a detached child: nobody waits for its fsync)."""
    import gc

    gc.disable()
    if sync_spool:
        from gitaudit.transport import spool

        spool.sync_in_background()
    code = __import__(module, fromlist=["main"]).main(argv)
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - contextlib costs milliseconds to import: not on the hot path
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass  # closed, broken or missing: nothing left to flush to
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
