"""Policy: the one place that decides whether an event is kept.

Applied by :mod:`gitaudit.pipeline` for every capture path (wrapper, hooks,
trace2, daemon). In order:

1. ``enabled = false`` drops everything.
2. ``always_audit`` keeps security-relevant events whatever comes next: data
   leaving a server (clone, fetch, pull, ls-remote, archive, bundle), failed
   pushes, force-pushes, deleted branches and tags, ``conflict.*``,
   ``claude.request``, ``audit.*`` (the documented default).
3. ``exclude_actions`` / ``exclude_resources`` drop what the operator excluded.
4. ``level`` drops what is below it (``writes_only`` drops local inspection
   commands such as status, log, diff, rev-parse, show).
5. ``sample_rate`` keeps that fraction of the rest (only of reads when
   ``sample_reads`` is on).

Stdlib only and precomputed at construction: the wrapper runs it per command.
"""

from __future__ import annotations

import os

from gitaudit import catalog

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from gitaudit.config import Settings

KEEP = "kept"
FILTERED = "filtered"
SAMPLED = "sampled"
DISABLED = "disabled"

_LEVELS: dict[str, frozenset[str] | None] = {
    "all": None,
    "writes_only": frozenset({"create", "update", "delete"}),
    "mutations_only": frozenset({"update"}),
    "deletes_only": frozenset({"delete"}),
    "failures_only": frozenset(),
}
_EGRESS_OPERATIONS = frozenset({"git.clone", "git.fetch", "git.pull"})
_EGRESS_SUBCOMMANDS = frozenset({"ls-remote", "archive", "bundle", "upload-pack", "upload-archive"})


def _refs(event: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    details = event.get("details") or {}
    refs = details.get("refs") if isinstance(details, dict) else None
    return refs if isinstance(refs, list) else ()


def _data_egress(event: Mapping[str, Any]) -> bool:
    operation = event.get("operation")
    if operation in _EGRESS_OPERATIONS:
        return True
    details = event.get("details") or {}
    return operation == "git.other" and details.get("subcommand") in _EGRESS_SUBCOMMANDS


def _push_failure(event: Mapping[str, Any]) -> bool:
    return event.get("operation") == "git.push" and event.get("outcome") == "failure"


def _force_push(event: Mapping[str, Any]) -> bool:
    return event.get("operation") == "git.push" and any(
        isinstance(ref, dict) and ref.get("forced") for ref in _refs(event)
    )


def _ref_delete(event: Mapping[str, Any]) -> bool:
    operation = str(event.get("operation"))
    if event.get("category") == "delete" and operation in _REF_OPERATIONS:
        return True
    found = event.get("details")
    return catalog.deletes_ref(operation, found if isinstance(found, dict) else None)


_REF_OPERATIONS = frozenset({"git.push", "git.branch", "git.tag", "ref.update"})


CLASSES: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "data-egress": _data_egress,
    "push-failure": _push_failure,
    "force-push": _force_push,
    "ref-delete": _ref_delete,
}


class _Globs:
    """fnmatch-style globs, compiled into one regular expression on first use."""

    __slots__ = ("_match", "patterns")

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        self._match: Callable[[str], object] | None = None

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def any(self, values: Sequence[str]) -> bool:
        """True if any of ``values`` matches any pattern."""
        if not self.patterns:
            return False
        if self._match is None:
            self._match = _simple_matcher(self.patterns) or _regex_matcher(self.patterns)
        return any(self._match(value) for value in values)


_GLOB_CHARS = frozenset("*?[")


def _simple_matcher(patterns: Sequence[str]) -> Callable[[str], object] | None:
    """A matcher for literal names and ``prefix*`` globs (the defaults, e.g. ``conflict.*``).

    Importing :mod:`re` and :mod:`fnmatch` costs ~5 ms, half a bare interpreter
    start, on every hook and wrapped command; these patterns need neither.
    None when a pattern needs the full fnmatch syntax.
    """
    exact: set[str] = set()
    prefixes: list[str] = []
    for pattern in patterns:
        wildcard_tail = pattern.endswith("*")
        head = pattern[:-1] if wildcard_tail else pattern
        if _GLOB_CHARS & set(head):
            return None
        if wildcard_tail:
            prefixes.append(head)
        else:
            exact.add(pattern)
    starts = tuple(prefixes)
    return lambda value: value in exact or (bool(starts) and value.startswith(starts))


def _regex_matcher(patterns: Sequence[str]) -> Callable[[str], object]:
    import fnmatch
    import re

    joined = "|".join(f"(?:{fnmatch.translate(pattern)})" for pattern in patterns)
    return re.compile(joined).match


def _action_names(event: Mapping[str, Any]) -> list[str]:
    operation = str(event.get("operation") or "")
    names = [operation]
    details = event.get("details") or {}
    subcommand = details.get("subcommand") if isinstance(details, dict) else None
    if operation == "git.other" and subcommand:
        names.append(f"git.{subcommand}")
    return names


def _resource_names(event: Mapping[str, Any]) -> list[str]:
    repo = event.get("repo") or {}
    if not isinstance(repo, dict):
        return []
    return [str(repo[key]) for key in ("path", "name", "remote") if repo.get(key)]


def _random_fraction() -> float:
    return int.from_bytes(os.urandom(7), "big") / float(1 << 56)


class Policy:
    """Settings turned into a decision function; ``decide`` is cheap per event."""

    def __init__(self, settings: Settings, random: Callable[[], float] = _random_fraction) -> None:
        self.enabled = settings.enabled
        self.level = settings.level
        self.categories = _LEVELS[settings.level]
        self.excluded_actions = _Globs(settings.exclude_actions)
        self.excluded_resources = _Globs(settings.exclude_resources)
        self.sample_rate = settings.sample_rate
        self.sample_reads = settings.sample_reads
        self.always_classes = [CLASSES[name] for name in settings.always_audit if name in CLASSES]
        self.always_globs = _Globs([name for name in settings.always_audit if name not in CLASSES])
        self.random = random

    def always(self, event: Mapping[str, Any]) -> bool:
        """Whether the event is security-relevant (kept at every level)."""
        return any(test(event) for test in self.always_classes) or self.always_globs.any(
            [str(event.get("operation") or "")]
        )

    def _below_level(self, event: Mapping[str, Any]) -> bool:
        if self.level == "failures_only":
            return event.get("outcome") != "failure"
        return self.categories is not None and event.get("category") not in self.categories

    def _sampled_out(self, event: Mapping[str, Any]) -> bool:
        if self.sample_rate >= 1.0:
            return False
        if self.sample_reads and event.get("category") != "read":
            return False
        return self.random() >= self.sample_rate

    def decide(self, event: Mapping[str, Any]) -> str:
        """One of ``kept``, ``filtered``, ``sampled``, ``disabled``."""
        if not self.enabled:
            return DISABLED
        if self.always(event):
            return KEEP
        if self.excluded_actions.any(_action_names(event)):
            return FILTERED
        if self.excluded_resources.any(_resource_names(event)):
            return FILTERED
        if self._below_level(event):
            return FILTERED
        if self._sampled_out(event):
            return SAMPLED
        return KEEP

    def keep(self, event: Mapping[str, Any]) -> bool:
        """True if the event should be recorded."""
        return self.decide(event) == KEEP

