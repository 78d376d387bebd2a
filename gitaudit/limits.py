"""Size limits of every stage an event passes, and :func:`fit`, which keeps events under them.

Every size is in bytes of the event as the spool and the journal write it: one
line of compact ASCII JSON (non-ASCII text escaped, so ``é`` costs 6 bytes).

========================  ========  ===================================================
constant                  value     what
========================  ========  ===================================================
SPOOL_LINE_MAX_BYTES      1 MiB     longest spool or journal line ingest and journal
                                    recovery read; a longer one is refused
SOCKET_MESSAGE_BYTES      1 MiB     default ``max_message_bytes``, the longest request
                                    line the event socket takes (clients split bigger
                                    batches, see :mod:`gitaudit.transport.socket`)
EVENT_MAX_BYTES           256 KiB   whole-event budget :func:`fit` enforces: a quarter
                                    of the smallest later limit, so the fields the
                                    daemon and the store writer add never push a line
                                    over it
FIELD_MAX_BYTES           16 KiB    longest single string kept whole (argv items, error
                                    text, paths, messages...)
TRUNCATED_MAX_ENTRIES     64        entries kept in ``details.truncated``
INDEXED_MAX_BYTES         2 KiB     longest string in a field the store indexes
                                    (:data:`INDEXED_FIELDS`: actor names, repository
                                    path, name and branch, ids); a PostgreSQL B-tree
                                    entry holds at most 2704 bytes
========================  ========  ===================================================

:func:`fit` runs in :meth:`gitaudit.pipeline.Pipeline.sanitize`, after the
sanitizer, so every capture path (wrapper, hooks, trace2 receiver, repo
watcher, socket clients through the daemon) goes through it, and a cut never
splits a secret the sanitizer would otherwise have recognized. A cut field
keeps its beginning and a visible marker (strings end in ``…[truncated N
bytes]``; lists and objects keep their first items), and
``details.truncated`` gets ``{field, bytes, sha256}`` (plus ``items`` for a
list or object): the dotted path (``details.argv[3]``), the full value's size
and the SHA-256 of the full value (UTF-8 text of a string, canonical JSON of a
list or object), as redacted.

Hot path: the first check is one pass of the C JSON encoder; nothing is walked
unless the event is larger than :data:`FIELD_MAX_BYTES`, and a hash module is
imported only when something is actually cut.
"""

from __future__ import annotations

from gitaudit.jsonfast import compact_encoder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

SPOOL_LINE_MAX_BYTES: Final = 1024 * 1024
SOCKET_MESSAGE_BYTES: Final = 1024 * 1024
EVENT_MAX_BYTES: Final = 256 * 1024
FIELD_MAX_BYTES: Final = 16 * 1024
TRUNCATED_MAX_ENTRIES: Final = 64
INDEXED_MAX_BYTES: Final = 2048
# The strings the store indexes (store.tables.DENORMALIZED), by where they sit in an event:
# fit() cuts them to INDEXED_MAX_BYTES, events.validate_event refuses them past it.
INDEXED_FIELDS: Final = (
    (None, ("parent_id", "chain_id")),
    ("actor", ("user", "git_name", "git_email", "host")),
    ("repo", ("path", "name", "branch")),
)
_INDEXED_PATHS: Final = frozenset(
    key if part is None else f"{part}.{key}" for part, keys in INDEXED_FIELDS for key in keys
)
_PATH_MAX_CHARS: Final = 200
_ENTRY_MAX_BYTES: Final = 512
# (longest string, longest nested list or object) per round; later rounds only run while
# the event is still over EVENT_MAX_BYTES (many long fields at once).
_ROUNDS: Final = (
    (FIELD_MAX_BYTES, EVENT_MAX_BYTES),
    (FIELD_MAX_BYTES // 4, EVENT_MAX_BYTES // 4),
    (1024, 16 * 1024),
    (256, 2048),
    (64, 256),
)
# Worst case of ASCII JSON: a non-BMP character is one str item and 12 bytes (\\ud83d\\ude00).
_MAX_BYTES_PER_CHAR: Final = 12

_DUMPS = compact_encoder(ensure_ascii=True)


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` in hex, without importing :mod:`hashlib` (which loads OpenSSL, ~2 ms)."""
    return str(sha256_hasher(data).hexdigest())


def sha256_hasher(data: bytes = b"") -> Any:
    """A SHA-256 object fed with ``data`` (``update``/``hexdigest``), as :func:`sha256_hex`."""
    if not _SHA256:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found,unused-ignore] # 3.11
        except ImportError:
            try:
                from _sha2 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
            except ImportError:
                from hashlib import sha256  # type: ignore[assignment,unused-ignore]
        _SHA256.append(sha256)
    return _SHA256[0](data)


_SHA256: list[Any] = []  # the constructor, imported on first use


def fit(event: dict[str, Any]) -> dict[str, Any]:
    """``event``, or a copy whose oversized fields are cut and listed in ``details.truncated``.

    The result is at most :data:`EVENT_MAX_BYTES` as a spool line and no string
    in it is longer than :data:`FIELD_MAX_BYTES` (both as ASCII JSON).
    """
    try:
        size = len(_DUMPS(event))
    except (TypeError, ValueError):
        return event  # not plain JSON data: schema validation says what is wrong
    if size <= FIELD_MAX_BYTES and (size <= INDEXED_MAX_BYTES or not _long_indexed(event)):
        return event
    return _Cutter(event).run()


def _long_indexed(event: dict[str, Any]) -> bool:
    """Whether a field the store indexes is longer than :data:`INDEXED_MAX_BYTES`."""
    for part, keys in INDEXED_FIELDS:
        fields = event if part is None else event.get(part)
        if not isinstance(fields, dict):
            continue
        for key in keys:
            value = fields.get(key)
            if isinstance(value, str) and _encoded(value) - 2 > INDEXED_MAX_BYTES:
                return True
    return False


def _encoded(value: Any) -> int:
    return len(_DUMPS(value))


class _Cutter:
    """One event being fitted: the cuts made so far, by path (the first cut of a path wins)."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        details = event.get("details")
        earlier = details.get("truncated") if isinstance(details, dict) else None
        # cuts listed before (a client's pipeline fitted the event): kept if they look like ours
        self.earlier: list[Any] = [
            entry for entry in (earlier if isinstance(earlier, list) else ())
            if isinstance(entry, dict) and _encoded(entry) <= _ENTRY_MAX_BYTES
        ]  # fmt: skip
        self.entries: dict[str, dict[str, Any]] = {}

    def run(self) -> dict[str, Any]:
        event = self.event
        for text_cap, box_cap in _ROUNDS:
            event = {
                key: self._walk(value, self.event.get(key), key, text_cap, box_cap)
                for key, value in event.items()
            }
            fitted = self._with_entries(event)
            if _encoded(fitted) <= EVENT_MAX_BYTES:
                return fitted
        # Not reached with the rounds above (every field is tiny by then); keep the promise.
        self._note("details", self.event.get("details"))
        return self._with_entries({**event, "details": {}})

    def _with_entries(self, event: dict[str, Any]) -> dict[str, Any]:
        if not self.entries and not self.earlier:
            return event
        details = event.get("details")
        if details is not None and not isinstance(details, dict):
            return event  # not an event schema validation will take; nowhere to say it
        entries = [*self.earlier, *self.entries.values()][:TRUNCATED_MAX_ENTRIES]
        return {**event, "details": {**(details or {}), "truncated": entries}}

    def _walk(self, value: Any, original: Any, path: str, text_cap: int, box_cap: int) -> Any:
        """``value`` (this round's input) fitted; ``original`` is the same node as given."""
        if isinstance(value, str):
            if path in _INDEXED_PATHS:
                text_cap = min(text_cap, INDEXED_MAX_BYTES)
            return self._text(value, original, path, text_cap)
        if isinstance(value, dict):
            if path == "details" and isinstance(value.get("truncated"), list):
                # its list of cuts is rebuilt at the end, never cut
                value = {key: item for key, item in value.items() if key != "truncated"}
            given = original if isinstance(original, dict) else {}
            fitted = {
                self._text(str(key), str(key), f"{path}.{key}(key)", text_cap): self._walk(
                    item, given.get(key), f"{path}.{key}", text_cap, box_cap
                )
                for key, item in value.items()
            }
            return self._box(fitted, original, path, box_cap)
        if isinstance(value, list | tuple):
            given_items = original if isinstance(original, list | tuple) else ()
            items = [
                self._walk(
                    item,
                    given_items[index] if index < len(given_items) else None,
                    f"{path}[{index}]",
                    text_cap,
                    box_cap,
                )
                for index, item in enumerate(value)
            ]
            return self._box(items, original, path, box_cap)
        return value

    def _text(self, value: str, original: Any, path: str, cap: int) -> str:
        if len(value) * _MAX_BYTES_PER_CHAR <= cap or _encoded(value) - 2 <= cap:
            return value
        entry = self._note(path, original if isinstance(original, str) else value)
        marker = f"…[truncated {entry['bytes']} bytes]"
        room = max(cap - _encoded(marker) + 2, 0)
        keep = min(len(value), room)
        while keep and (over := _encoded(value[:keep]) - 2 - room) > 0:
            keep = max(0, keep - max(1, over // _MAX_BYTES_PER_CHAR))
        return value[:keep] + marker

    def _box(self, value: Any, original: Any, path: str, cap: int) -> Any:
        if _encoded(value) <= cap:
            return value
        same_kind = isinstance(original, dict if isinstance(value, dict) else list | tuple)
        self._note(path, original if same_kind else value)
        room, used = cap - 2, 0
        if isinstance(value, dict):
            kept: dict[str, Any] = {}
            for key, item in value.items():
                used += _encoded(key) + _encoded(item) + 2
                if used > room:
                    break
                kept[key] = item
            return kept
        items: list[Any] = []
        for item in value:
            used += _encoded(item) + 1
            if used > room:
                break
            items.append(item)
        return items

    def _note(self, path: str, value: Any) -> dict[str, Any]:
        if path in self.entries:
            return self.entries[path]
        from gitaudit.catalog import canonical_json

        data = (
            value.encode("utf-8", "surrogatepass")
            if isinstance(value, str)
            else canonical_json(value)
        )
        shown = path if len(path) <= _PATH_MAX_CHARS else path[: _PATH_MAX_CHARS - 1] + "…"
        entry: dict[str, Any] = {"field": shown, "bytes": len(data), "sha256": sha256_hex(data)}
        if isinstance(value, list | tuple | dict):
            entry["items"] = len(value)
        self.entries[path] = entry
        return entry
