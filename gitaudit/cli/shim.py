"""``gitaudit shim install DIR`` / ``gitaudit shim uninstall DIR``: a ``git`` that records.

The shim is a tiny Python script named ``git``; put DIR first on PATH and every
``git ...`` goes through the wrapper. It is marked with a ``# gitaudit-shim``
line in its first bytes, which is how the wrapper skips it (and any other
shim) when it looks for the real git, and how install/uninstall recognise it.
A foreign ``git`` already in DIR is never clobbered: install refuses unless
``force``, and then keeps it as ``git.gitaudit-orig``, which uninstall puts back.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gitaudit import paths
from gitaudit.capture.wrapper import SHIM_MARKER, is_shim
from gitaudit.errors import GitauditError

SHIM_NAME = "git"
BACKUP_SUFFIX = ".gitaudit-orig"
MAX_SHEBANG = 127  # the kernel's historical limit for a "#!" line


class ShimError(GitauditError):
    """The shim cannot be installed or removed as asked."""


def shim_text(python: str, package_root: str) -> str:
    """The shim script: the interpreter isolated and without ``site``, then the wrapper.

    ``-IS``: no user environment, and no site-packages scan (about a millisecond
    on every git command); the wrapper's common path is stdlib and gitaudit, whose
    root the script puts on ``sys.path``. site-packages are added when pygit2 is
    needed (:func:`gitaudit.capture.history.ensure_site_packages`).
    """
    shebang = f"#!{python} -IS"
    if len(shebang) > MAX_SHEBANG or any(char.isspace() for char in python):
        raise ShimError(
            f"the Python path {python!r} cannot be used in a #! line (too long or has spaces)",
            "install gitaudit in a virtualenv at a shorter path without spaces",
        )
    return (
        f"{shebang}\n"
        f"{SHIM_MARKER.decode()}: runs git through gitaudit; "
        "remove with `gitaudit shim uninstall DIR`\n"
        "import sys\n"
        f"sys.path.append({package_root!r})\n"
        "from gitaudit.__main__ import wrap_git\n"
        "wrap_git(sys.argv[1:])\n"
    )


def _package_root() -> str:
    import gitaudit

    return str(Path(gitaudit.__file__).resolve().parent.parent)


def _write_atomically(target: Path, text: str) -> None:
    # an executable on PATH: world-readable and executable
    paths.replace_file(str(target), text.encode("utf-8"), 0o755)


def shim_install(directory: Path, force: bool = False) -> None:
    """Write ``DIR/git`` (mode 0755, marked). Idempotent; refuses to replace a foreign git.

    With ``force`` a foreign ``git`` is kept as ``git.gitaudit-orig``.
    """
    target = directory / SHIM_NAME
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if (target.exists() or target.is_symlink()) and not is_shim(str(target)):
            if not force:
                raise ShimError(
                    f"{target} exists and is not a gitaudit shim",
                    "choose another directory, or pass --force to keep it as "
                    f"{target.name}{BACKUP_SUFFIX} and install the shim",
                )
            target.replace(target.with_name(SHIM_NAME + BACKUP_SUFFIX))
        _write_atomically(target, shim_text(sys.executable, _package_root()))
    except OSError as exc:
        raise ShimError(
            f"cannot install the shim in {directory}: {exc.strerror or exc}",
            "choose a directory you can write to",
        ) from exc


def shim_uninstall(directory: Path) -> bool:
    """Remove ``DIR/git`` if it is our shim (and restore a kept original); False if absent."""
    target = directory / SHIM_NAME
    backup = target.with_name(SHIM_NAME + BACKUP_SUFFIX)
    removed = False
    try:
        if target.exists() or target.is_symlink():
            removed = True
            if not is_shim(str(target)):
                raise ShimError(
                    f"{target} is not a gitaudit shim; leaving it alone",
                    "remove it yourself if you really mean to",
                )
            target.unlink()
        if backup.exists() or backup.is_symlink():
            backup.replace(target)
    except OSError as exc:
        raise ShimError(
            f"cannot remove the shim from {directory}: {exc.strerror or exc}",
            "check the directory's permissions",
        ) from exc
    return removed
