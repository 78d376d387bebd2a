"""CPython's C JSON encoder without importing the :mod:`json` package.

``import json`` pulls in ``re`` and costs milliseconds on every git command the
wrapper or a hook records; its C half ``_json`` costs nothing. Other
interpreters fall back to ``json.dumps``. Tests check both give the same text.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def _reject(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def compact_encoder(*, ensure_ascii: bool) -> Callable[[Any], str]:
    """``dumps(value)`` like ``json.dumps(value, separators=(",", ":"), allow_nan=False)``."""
    try:
        import _json
    except ImportError:  # pragma: no cover - CPython always has it
        import json

        def dumps(value: Any) -> str:
            return json.dumps(
                value, separators=(",", ":"), ensure_ascii=ensure_ascii, allow_nan=False
            )

        return dumps
    quote = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
    encoder = _json.make_encoder({}, _reject, quote, None, ":", ",", False, False, False)

    def dumps_fast(value: Any) -> str:
        return "".join(encoder(value, 0))

    return dumps_fast
