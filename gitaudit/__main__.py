"""Entry point of the ``gitaudit`` command.

``gitaudit git ...`` is the hot path: it goes straight to the wrapper without
importing Typer, rich or pydantic. Everything else goes to the Typer app.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run gitaudit; returns the process exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "git":
        from gitaudit.capture.wrapper import main as wrapper_main

        return wrapper_main(args[1:])
    from gitaudit.cli.app import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
