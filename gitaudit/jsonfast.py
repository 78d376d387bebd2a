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


_WHITESPACE = " \t\n\r"


class _ScanContext:
    """What ``_json.make_scanner`` reads off a ``json.JSONDecoder``, as plain attributes."""

    __slots__ = ("memo", "object_hook", "object_pairs_hook", "parse_constant", "parse_float",
                 "parse_int", "strict")

    def __init__(self) -> None:
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = None
        self.parse_float = float
        self.parse_int = int
        self.parse_constant = _no_constant
        self.memo: dict[str, str] = {}


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


_SCANNERS: list[Callable[[str, int], tuple[Any, int]]] = []


def loads(text: str) -> Any:
    """``json.loads(text)`` (strict, no NaN/Infinity) without importing :mod:`json` (and
    :mod:`re`): the C scanner of ``_json``. Raises ValueError for anything that is not one
    JSON value (also RecursionError for absurd nesting); only that error path imports
    :mod:`json`."""
    if not _SCANNERS:
        try:
            import _json

            _SCANNERS.append(_json.make_scanner(_ScanContext()))  # type: ignore[arg-type]
        except ImportError:  # pragma: no cover - CPython always has it
            import json

            def scan(string: str, index: int) -> tuple[Any, int]:
                return json.JSONDecoder(parse_constant=_no_constant).raw_decode(string, index)

            _SCANNERS.append(scan)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _SCANNERS[0](text, start)
    except StopIteration as exc:
        raise ValueError(f"no JSON value at character {exc.value}") from None
    except SystemError:
        # The C scanner raises json.decoder.JSONDecodeError only if that module is loaded
        # (CPython 3.11 looks it up in sys.modules, and fails without an exception
        # otherwise): load it, on this error path only, and scan again for the message.
        import json.decoder  # the scanner looks the error class up there

        try:
            value, end = _SCANNERS[0](text, start)
        except StopIteration as exc:
            raise ValueError(f"no JSON value at character {exc.value}") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"extra data after the JSON value at character {end}")
    return value
