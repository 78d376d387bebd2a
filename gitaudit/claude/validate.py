"""Checks a proposed resolution passes before ``gitaudit resolve`` writes anything.

Pure functions over text, so they are tested without git or a model:

- :func:`parse_answer` takes the model's answer apart: the file between
  ``<resolved_file>`` and ``</resolved_file>`` (exactly one pair, not cut
  short at ``max_tokens``) and the text outside it (the explanation).
- :func:`check_proposal` runs the content checks: no conflict markers left
  (a marker-like line that one side already had, such as an ``=======``
  heading underline, is not a marker), the file still parses where its type
  is known (Python with :mod:`ast`, JSON, TOML with :mod:`tomllib`, YAML with
  PyYAML) unless no side parsed before either, and not empty
  unless a side was empty.

Each check reports ``{"check", "ok", "detail"}``; the list is what the
``conflict.resolved`` / ``validation.failed`` events carry.
"""

from __future__ import annotations

import os
from typing import Any

OPEN_TAG = "<resolved_file>"
CLOSE_TAG = "</resolved_file>"
MARKER_PREFIXES = ("<<<<<<<", ">>>>>>>", "|||||||")
MARKER_LINE = "======="


class AnswerError(ValueError):
    """The model's answer holds no usable resolved file (the message says why)."""


def parse_answer(text: str, stop_reason: str | None) -> tuple[str, str]:
    """(resolved file, explanation) from the model's answer; raises :class:`AnswerError`."""
    if stop_reason == "max_tokens":
        raise AnswerError(
            "the answer was cut short at max_tokens (the file is too long for one answer): "
            "resolve it by hand"
        )
    if stop_reason == "refusal":
        raise AnswerError(
            "the model declined to resolve this file (stop_reason refusal): resolve it by hand"
        )
    opened, closed = text.count(OPEN_TAG), text.count(CLOSE_TAG)
    if opened == 0 and closed == 0:
        raise AnswerError(f"the answer holds no {OPEN_TAG} tag")
    if opened != 1 or closed != 1:
        raise AnswerError(
            f"the answer holds {opened} {OPEN_TAG} and {closed} {CLOSE_TAG} tags, expected one each"
        )
    start = text.index(OPEN_TAG)
    end = text.index(CLOSE_TAG)
    if end < start:
        raise AnswerError(f"{CLOSE_TAG} comes before {OPEN_TAG}")
    body = text[start + len(OPEN_TAG) : end]
    if body.startswith("\r\n"):
        body = body[2:]
    elif body.startswith("\n"):
        body = body[1:]
    explanation = (text[:start] + text[end + len(CLOSE_TAG) :]).strip()
    return body, explanation


def marker_lines(text: str) -> set[str]:
    """The conflict-marker-like lines of ``text`` (their first 7 characters, or ``=======``)."""
    found: set[str] = set()
    for line in text.splitlines():
        if line.startswith(MARKER_PREFIXES):
            found.add(line[:7])
        elif line.rstrip() == MARKER_LINE:
            found.add(MARKER_LINE)
    return found


def _parse_python(text: str) -> None:
    import ast

    ast.parse(text)


def _parse_json(text: str) -> None:
    import json

    json.loads(text)


def _parse_toml(text: str) -> None:
    import tomllib

    tomllib.loads(text)


def _parse_yaml(text: str) -> None:
    import yaml

    for _ in yaml.safe_load_all(text):
        pass


PARSERS = {
    ".py": ("python", _parse_python),
    ".pyi": ("python", _parse_python),
    ".json": ("json", _parse_json),
    ".toml": ("toml", _parse_toml),
    ".yaml": ("yaml", _parse_yaml),
    ".yml": ("yaml", _parse_yaml),
}


def _parses(parse: Any, text: str) -> str | None:
    """None if ``text`` parses, else the parser's complaint in one line."""
    try:
        parse(text)
    except Exception as exc:  # noqa: BLE001 - every parser raises its own error type
        return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
    return None


def syntax_check(path: str, proposal: str, sides: list[str]) -> dict[str, Any] | None:
    """The parse check for ``path``'s type, or None when no parser knows the type."""
    known = PARSERS.get(os.path.splitext(path)[1].lower())
    if known is None:
        return None
    name, parse = known
    check = f"syntax:{name}"
    problem = _parses(parse, proposal)
    if problem is None:
        return {"check": check, "ok": True, "detail": None}
    if sides and all(_parses(parse, side) is not None for side in sides):
        return {"check": check, "ok": True, "detail": "skipped: no side parsed before either"}
    return {"check": check, "ok": False, "detail": problem}


def check_proposal(path: str, proposal: str, *, base: str | None, ours: str | None,
                   theirs: str | None) -> list[dict[str, Any]]:
    """Every content check of a proposal for ``path`` (``None``: that side has no file)."""
    sides = [side for side in (ours, theirs) if side is not None]
    had = set().union(*(marker_lines(side) for side in (base, ours, theirs) if side is not None))
    left = sorted(marker_lines(proposal) - had)
    results = [{
        "check": "conflict_markers", "ok": not left,
        "detail": f"conflict markers left: {', '.join(left)}" if left else None,
    }]
    empty = not proposal.strip()
    allowed_empty = any(not side.strip() for side in sides) or len(sides) < 2
    results.append({
        "check": "not_empty", "ok": not empty or allowed_empty,
        "detail": "the proposal is empty but neither side is" if empty and not allowed_empty
        else None,
    })
    syntax = syntax_check(path, proposal, sides)
    if syntax is not None:
        results.append(syntax)
    return results


def failures(results: list[dict[str, Any]]) -> list[str]:
    """The failed checks of a result list as ``check: detail`` lines."""
    return [f"{item['check']}: {item['detail']}" for item in results if not item["ok"]]
