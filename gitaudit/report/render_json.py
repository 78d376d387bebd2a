"""``--format json``: the :func:`~gitaudit.report.model.to_json` document, written as it goes.

An :class:`~gitaudit.report.model.EventStream` block (the GDPR export) becomes
``{"type": "events", "events": [...]}`` whose events are written one by one from
the stream, so a report of any size is never held in memory; everything else is the
``to_json`` form, indented, with table rows and short lists kept on one line.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from gitaudit.report.model import EventStream, Report, block_json, to_json

_INDENT = "  "


class _Events:
    """Placeholder for an EventStream's events inside the document being written."""

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream


def document(report: Report) -> dict[str, Any]:
    """``to_json(report)`` with each EventStream block's ``events`` as a placeholder."""
    doc = to_json(report)
    for section, source in zip(doc["sections"], report.sections, strict=True):
        section["blocks"] = [
            {**block_json(block), "events": _Events(block)}
            if isinstance(block, EventStream)
            else block_json(block)
            for block in source.blocks
        ]
    return doc


def write_json(report: Report, out: TextIO) -> None:
    """Write ``report`` as JSON to ``out`` (events streamed), ending with a newline."""
    _write(out, document(report), 0)
    out.write("\n")


def _flat(value: Any) -> bool:
    """Written on one line: a scalar, or a list of scalars (a table row, a series)."""
    if isinstance(value, list):
        return all(not isinstance(item, dict | list | _Events) for item in value)
    return not isinstance(value, dict | _Events)


def _write(out: TextIO, value: Any, level: int) -> None:
    pad = _INDENT * (level + 1)
    if isinstance(value, _Events):
        out.write("[")
        first = True
        for event in value.stream.open():
            out.write(("\n" if first else ",\n") + pad + json.dumps(event, ensure_ascii=False))
            first = False
        out.write("]" if first else "\n" + _INDENT * level + "]")
    elif _flat(value) or not value:
        out.write(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, dict):
        out.write("{")
        for index, (key, item) in enumerate(value.items()):
            out.write(("\n" if index == 0 else ",\n") + pad + json.dumps(key) + ": ")
            _write(out, item, level + 1)
        out.write("\n" + _INDENT * level + "}")
    else:
        out.write("[")
        for index, item in enumerate(value):
            out.write(("\n" if index == 0 else ",\n") + pad)
            _write(out, item, level + 1)
        out.write("\n" + _INDENT * level + "]")
