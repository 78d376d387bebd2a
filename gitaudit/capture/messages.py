"""Commit, tag, merge, stash and notes messages: not stored unless ``capture_messages`` is on.

A message reaches an event wherever a command line is kept (``details.argv``
of the wrapper and the trace2 receiver, the ``argv`` of trace2 children and
nested processes) and in reflog entries the repo watcher copies
(``details.reflog.message``: ``commit: <subject>``). By default
(``capture_messages = false``) :func:`hide_messages` replaces each message by
``[message: <bytes> bytes, sha256:<hex>]`` (length and SHA-256 of its UTF-8
text, so a known message can still be matched); with ``capture_messages =
true`` it is kept and redacted like every other field.

Which arguments are messages depends on the subcommand: ``-m``/``--message``
(also ``-mTEXT``, ``--message=TEXT``, option clusters such as ``-am TEXT`` and
unambiguous abbreviations such as ``--mess=TEXT``) of ``commit``, ``tag``,
``merge``, ``commit-tree``, ``stash`` and ``notes``, the reflog message ``-m``
of ``update-ref`` and ``symbolic-ref``, and the words after ``stash save``.
``-m`` of other commands (``branch -m``, ``cherry-pick -m``) is not a message.
``-F FILE`` names a file, whose content is not in argv.

Runs in :meth:`gitaudit.pipeline.Pipeline.sanitize` before redaction, so every
capture path goes through it; idempotent (the daemon applies it again to what
clients send). On the hot path: :mod:`gitaudit.capture.details` is imported only when an
event holds a command line.
"""

from __future__ import annotations

from gitaudit.limits import sha256_hex

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

PLACEHOLDER_PREFIX = "[message: "

# Subcommand -> its options that take a value in the next argument (so that value is
# never read as an option); -m/--message among them is the message. Built on first use:
# hooks import this module for every event, and few events hold a command line.
_VALUED: dict[str, frozenset[str]] = {}


def _valued(subcommand: str) -> frozenset[str] | None:
    if not _VALUED:
        from gitaudit.capture import details

        _VALUED.update({
            "commit": details.COMMIT_VALUED,
            "tag": details.TAG_VALUED,
            "merge": details.MERGE_VALUED,
            "commit-tree": frozenset({"-m", "-F", "-p"}),
            "stash": frozenset({"-m", "--message", "--pathspec-from-file"}),
            "update-ref": frozenset({"-m"}),  # the reflog message, often a commit subject
            "symbolic-ref": frozenset({"-m"}),
            "notes": frozenset({"-m", "--message", "-F", "--file", "-C", "--reuse-message",
                                "-c", "--reedit-message", "--ref", "--separator"}),
        })  # fmt: skip
    return _VALUED.get(subcommand)


# Reflog actions whose text after ": " is a commit subject.
_SUBJECT_ACTIONS = ("commit", "cherry-pick", "revert", "am", "squash", "fixup", "reword")
_REBASE_SUBJECT_STEPS = ("(pick)", "(reword)", "(squash)", "(fixup)", "(edit)")


def placeholder(text: str) -> str:
    """``[message: <bytes> bytes, sha256:<hex>]`` for ``text`` (a placeholder is kept as is)."""
    if text.startswith(PLACEHOLDER_PREFIX) and text.endswith("]"):
        return text
    data = text.encode("utf-8", "surrogateescape")
    return f"{PLACEHOLDER_PREFIX}{len(data)} bytes, sha256:{sha256_hex(data)}]"


def _is_message_option(name: str) -> bool:
    return len(name) > 3 and "--message".startswith(name)


def hide_in_args(
    subcommand: str | None, args: Sequence[str], hide: Callable[[str], str] = placeholder
) -> list[str] | None:
    """``args`` of ``git <subcommand>`` with each message replaced, or None if it holds none."""
    valued = _valued(subcommand or "")
    if valued is None:
        return None
    out = list(args)
    before = list(out)
    stash_save = False
    i = 0
    while i < len(out) and out[i] != "--":
        arg = out[i]
        if arg.startswith("--"):
            i += _long_option(out, i, valued, hide)
        elif arg.startswith("-") and len(arg) > 1:
            i += _short_options(out, i, valued, hide)
        elif stash_save:
            out[i] = hide(arg)
        elif subcommand == "stash" and arg == "save":
            stash_save = True
        i += 1
    return out if out != before else None


def _long_option(
    out: list[str], i: int, valued: frozenset[str], hide: Callable[[str], str]
) -> int:
    """Hide the message of ``out[i]`` (a long option); returns 1 if it took the next argument."""
    name, eq, value = out[i].partition("=")
    message = len(name) > 3 and "--message".startswith(name)  # git takes abbreviations
    if eq:
        if message:
            out[i] = f"{name}={hide(value)}"
        return 0
    if message and i + 1 < len(out):
        out[i + 1] = hide(out[i + 1])
    return 1 if message or name in valued else 0


def _short_options(
    out: list[str], i: int, valued: frozenset[str], hide: Callable[[str], str]
) -> int:
    """Hide the message of ``out[i]`` (a cluster such as ``-am``); 1 if it took the next one."""
    arg = out[i]
    for pos in range(1, len(arg)):
        flag = "-" + arg[pos]
        if flag not in valued:
            continue
        rest = arg[pos + 1 :]
        if flag == "-m" and rest:
            out[i] = arg[: pos + 1] + hide(rest)
        elif flag == "-m" and i + 1 < len(out):
            out[i + 1] = hide(out[i + 1])
        return 0 if rest else 1
    return 0


def hide_in_argv(
    argv: Sequence[str], subcommand: str | None = None, hide: Callable[[str], str] = placeholder
) -> list[str] | None:
    """``git`` arguments (global options, subcommand, its arguments) with messages replaced.

    ``subcommand`` is what the command resolved to (an alias's target), when known.
    """
    from gitaudit.capture.details import parse_invocation

    inv = parse_invocation(argv)
    if inv.subcommand is None:
        return None
    start = len(argv) - len(inv.args)
    hidden = hide_in_args(subcommand or inv.subcommand, argv[start:], hide)
    return None if hidden is None else [*argv[:start], *hidden]


def hide_in_reflog(message: str, hide: Callable[[str], str] = placeholder) -> str:
    """A reflog message with the commit subject replaced (``commit: [message: ...]``)."""
    action, sep, subject = message.partition(": ")
    if not sep or not subject:
        return message
    name = action.split(" ", 1)[0]
    if name in _SUBJECT_ACTIONS or (
        name == "rebase" and action.endswith(_REBASE_SUBJECT_STEPS)
    ):
        return f"{action}: {hide(subject)}"
    return message


def _process_argv(argv: Any) -> list[str] | None:
    """A trace2 child's or nested process's argv (``git ...``) with messages replaced."""
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return None
    if argv[0].rsplit("/", 1)[-1] != "git":
        return None
    hidden = hide_in_argv(argv[1:])
    return None if hidden is None else [argv[0], *hidden]


def _processes(listed: Any) -> list[Any] | None:
    if not isinstance(listed, list):
        return None
    out: list[Any] = []
    changed = False
    for item in listed:
        hidden = _process_argv(item.get("argv")) if isinstance(item, dict) else None
        out.append(item if hidden is None else {**item, "argv": hidden})
        changed = changed or hidden is not None
    return out if changed else None


def hide_messages(event: dict[str, Any]) -> dict[str, Any]:
    """``event``, or a copy whose messages are replaced by :func:`placeholder` (see module)."""
    found = event.get("details")
    if not isinstance(found, dict):
        return event
    changes: dict[str, Any] = {}
    argv = found.get("argv")
    if isinstance(argv, list) and argv and all(isinstance(arg, str) for arg in argv):
        subcommand = found.get("subcommand")
        hidden = hide_in_argv(argv, subcommand if isinstance(subcommand, str) else None)
        if hidden is not None:
            changes["argv"] = hidden
    for key in ("children", "nested"):
        listed = _processes(found.get(key))
        if listed is not None:
            changes[key] = listed
    reflog = found.get("reflog")
    if isinstance(reflog, dict) and isinstance(reflog.get("message"), str):
        message = hide_in_reflog(reflog["message"])
        if message != reflog["message"]:
            changes["reflog"] = {**reflog, "message": message}
    if isinstance(found.get("message"), str):
        changes["message"] = placeholder(found["message"])
    if not changes:
        return event
    return {**event, "details": {**found, **changes}}
