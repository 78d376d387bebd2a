"""Secret redaction: the one place that decides what never leaves the process.

Every event passes through :meth:`Redactor.redact_event` before it is written
anywhere; ``gitaudit redact`` applies :func:`redact` to arbitrary text. A secret
is replaced by a marker ``[REDACTED:<kind>]`` (see :data:`KINDS`); the text
around it (URL scheme and host, the key of an assignment, JSON quotes) is kept.
The rules themselves live in :mod:`gitaudit.sanitize_rules`; this module runs
them over strings, dicts and lists.

Design notes:

- Hot path. The git wrapper imports this module on every git command, so it
  imports nothing but the rule table (which imports nothing either):
  ``hmac``/``hashlib`` are imported inside :func:`pseudonymize`. Object ids,
  UUIDs and timestamps are recognized with string methods and skip the rules.
- Idempotence. The passes repeat until the text stops changing, so the output
  is a fixed point: ``redact(redact(x)) == redact(x)``.
"""

from __future__ import annotations

from gitaudit.sanitize_keyed import _compact, _KeyedRules, _normalize_key
from gitaudit.sanitize_rules import (
    _CARD_RULE,
    _DIGITS,
    _STATIC_RULES,
    KINDS,
    _aligned_lower,
    _is_placeholder,
    _is_public_block,
    _Rule,
    marker,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms to import; annotations are strings at runtime
    from collections.abc import Iterable, Mapping
    from typing import Any, TypeVar

    _T = TypeVar("_T")

__all__ = [
    "DEFAULT_SENSITIVE_FIELDS",
    "KINDS",
    "Redactor",
    "is_pseudonym",
    "marker",
    "pseudonymize",
    "redact",
]

#: Dict keys (and ``key=value`` names in text) whose values are always redacted,
#: matched on normalized names (lower snake case: ``X-Api-Key`` -> ``x_api_key``)
#: exactly or as a ``_``-separated suffix (``github_token`` matches ``token``).
#: Kept identical to the default of the ``sensitive_fields`` setting.
DEFAULT_SENSITIVE_FIELDS: tuple[str, ...] = (
    "password", "passwd", "pwd", "secret", "token", "api_key", "apikey", "access_key",
    "secret_key", "private_key", "authorization", "auth", "cookie", "set_cookie",
    "credentials", "credential", "client_secret", "session", "passphrase", "signature", "pass",
    "pw", "pat", "secret_key_base", "master_key", "encryption_key",
)  # fmt: skip


_MAX_DEPTH = 64
_MAX_PASSES = 4
# Above this size, a rule starting with a literal scans faster than testing its guard words.
_GUARD_TEXT_LIMIT = 4096
_KEY_CACHE_LIMIT = 4096
_TEXT_CACHE_LIMIT = 8192  # strings remembered per Redactor
_TEXT_CACHE_MAX_LEN = 256  # longer strings are rarely repeated verbatim
_PSEUDONYM_PREFIX = "anon:"
_ACTOR_ID_FIELDS = ("user", "git_name", "git_email")


# Identifiers that are unique per event (event ids, object ids, timestamps, trace2 session
# ids) miss the cache.
# These exact shapes hold nothing any rule redacts, so they skip the rules: a canonical
# UUID, lowercase hex of 7-64 characters with at least one letter (an all-digit string
# may be a card number) and an RFC 3339 timestamp. tests/test_sanitize.py checks that the
# rules leave random strings of each shape unchanged.
_HEX = "0123456789abcdef"
# RFC 3339 timestamp, \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})
# (ASCII digits), checked character by character: re costs ~5 ms to import on the hook path.
_TIMESTAMP_SHAPE = "dddd-dd-ddTdd:dd:dd"


def _is_timestamp(text: str) -> bool:
    if not text.isascii() or len(text) < len(_TIMESTAMP_SHAPE) + 1:
        return False
    for char, shape in zip(text, _TIMESTAMP_SHAPE, strict=False):
        if char not in _DIGITS if shape == "d" else char != shape:
            return False
    rest = text[len(_TIMESTAMP_SHAPE) :]
    if rest.startswith("."):
        fraction = len(rest) - len(rest[1:].lstrip("0123456789")) - 1
        if not 1 <= fraction <= 9:
            return False
        rest = rest[1 + fraction :]
    return rest == "Z" or (
        len(rest) == 6 and rest[0] in "+-" and rest[3] == ":"
        and all(char in _DIGITS for char in rest[1:3] + rest[4:])
    )


# git's trace2 session id, YYYYMMDDTHHMMSS.ffffffZ-H<host hash>-P<pid> (x: lowercase hex),
# after the sids of its parents, '/'-separated (a parent may be a gitaudit event id, a UUID)
_SID_SHAPE = "ddddddddTdddddd.ddddddZ-Hxxxxxxxx-Pxxxxxxxx"


def _is_git_sid(text: str) -> bool:
    if len(text) != len(_SID_SHAPE):
        return False
    for char, shape in zip(text, _SID_SHAPE, strict=True):
        if shape == "d":
            if char not in _DIGITS:
                return False
        elif shape == "x":
            if char not in _HEX:
                return False
        elif char != shape:
            return False
    return True


def _is_trace2_sid(text: str) -> bool:
    *parents, own = text.split("/")
    return _is_git_sid(own) and all(
        _is_git_sid(part) or (len(part) == 36 and _inert(part)) for part in parents
    )


def _inert(text: str) -> bool:
    """Whether ``text`` is a UUID, an object id, a timestamp or a trace2 session id (string
    methods only)."""
    size = len(text)
    if size >= len(_SID_SHAPE) and text[-10:-8] == "-P":
        return size <= 1024 and _is_trace2_sid(text)
    if 7 <= size <= 64 and not text.strip(_HEX):
        return not text.isdigit()
    if size == 36 and text[8] == text[13] == text[18] == text[23] == "-":
        return not text.replace("-", "").strip(_HEX)
    if 20 <= size <= 35 and text[4] == "-" and text[10] == "T":
        return _is_timestamp(text)
    return False


# --- the redactor ------------------------------------------------------------------------


class Redactor:
    """Redacts secrets from strings, dicts and lists; configured once, cheap per call.

    ``sensitive_fields`` replaces :data:`DEFAULT_SENSITIVE_FIELDS` (pass
    ``(*DEFAULT_SENSITIVE_FIELDS, "extra")`` to extend it). With ``hash_user_ids``,
    :meth:`redact_event` replaces the actor's ``user``, ``git_name`` and
    ``git_email`` by :func:`pseudonymize` of them under ``user_id_key``.
    """

    def __init__(
        self,
        sensitive_fields: Iterable[str] | None = None,
        *,
        hash_user_ids: bool = False,
        user_id_key: bytes | None = None,
    ) -> None:
        names = DEFAULT_SENSITIVE_FIELDS if sensitive_fields is None else tuple(sensitive_fields)
        fields = tuple(dict.fromkeys(n for n in map(_normalize_key, names) if n))
        if hash_user_ids and not user_id_key:
            raise ValueError("hash_user_ids needs a non-empty user_id_key")
        self.sensitive_fields = fields
        self.hash_user_ids = hash_user_ids
        self._user_id_key = user_id_key if hash_user_ids else None
        self._exact = frozenset(fields)
        self._suffixes = tuple("_" + name for name in fields)
        # Glued spellings (DBPASSWORD, xapikey) for names long enough not to occur by chance.
        self._compact = tuple(c for c in map(_compact, fields) if len(c) >= 5)
        self._key_cache: dict[str, bool] = {}
        # Event strings repeat (hosts, users, paths, remotes, argv words): remember short ones.
        self._text_cache: dict[str, str] = {}
        triggers = {name.rsplit("_", 1)[-1] for name in fields} | set(self._compact)
        # A trigger that ends with another one adds nothing (apikey ends with key).
        triggers = {t for t in triggers if not any(t != o and t.endswith(o) for o in triggers)}
        keyed = _KeyedRules(tuple(sorted(triggers)), self.is_sensitive_field) if triggers else None
        self._rules: tuple[_Rule | _KeyedRules, ...] = (
            *_STATIC_RULES,
            *((keyed,) if keyed is not None else ()),
            _CARD_RULE,
        )

    def is_sensitive_field(self, name: str) -> bool:
        """Whether values under the key ``name`` are always redacted."""
        cached = self._key_cache.get(name)
        if cached is not None:
            return cached
        normal = _normalize_key(name)
        result = (
            normal in self._exact
            or normal.endswith(self._suffixes)
            or (bool(self._compact) and _compact(normal).endswith(self._compact))
        )
        if len(self._key_cache) < _KEY_CACHE_LIMIT and len(name) <= 128:
            self._key_cache[name] = result
        return result

    def redact_text(self, text: str) -> str:
        """``text`` with every secret replaced by its marker."""
        if len(text) > _TEXT_CACHE_MAX_LEN:
            return self._fixed_point(text)
        cache = self._text_cache
        cached = cache.get(text)
        if cached is None:
            if _inert(text):
                return text  # unique per event: not worth a cache slot
            cached = self._fixed_point(text)
            if len(cache) >= _TEXT_CACHE_LIMIT:
                cache.clear()  # a bounded cache; a burst of unique strings just starts it over
            cache[text] = cached
        return cached

    def _fixed_point(self, text: str) -> str:
        # Rules see each other's markers (a header value that became "[REDACTED:...]" is no
        # longer prose, a YAML value now ends its line), so repeat until nothing changes:
        # the result is a fixed point, which is what makes redaction idempotent. Text
        # without secrets takes one pass; text with secrets usually two.
        for _ in range(_MAX_PASSES):
            redacted = self._pass(text)
            if redacted is text:
                break
            text = redacted
        return text

    def _pass(self, text: str) -> str:  # noqa: PLR0912 - the hot loop: inline, a call costs more
        """One run of every rule; returns ``text`` itself when nothing was redacted."""
        size = len(text)
        # Lower-cased only when a rule looks at it (guard words, anchors), again after a change:
        # on a large text full of secrets most rules change it and few need it.
        lowered = ""
        for rule in self._rules:
            if size < rule.min_len:
                continue
            words = rule.words
            if words is not None and (size <= _GUARD_TEXT_LIMIT or rule.anchored):
                if rule.exact:
                    haystack = text
                else:
                    haystack = lowered = lowered or _aligned_lower(text)
                for word in words:
                    if word in haystack:
                        break
                else:
                    continue
            if rule.also or rule.anchored:
                lowered = lowered or _aligned_lower(text)
                for word in rule.also:
                    if word not in lowered:
                        break
                else:
                    word = ""
                if word:
                    continue
            if rule.gate is not None and not rule.gate(text):
                continue
            changed = rule.apply(text, lowered)
            if changed is not text and changed != text:
                text = changed
                size = len(text)
                lowered = ""  # later guards must see the markers
        return text

    def __call__(self, value: _T) -> _T:
        """Redact a str, or every str inside a dict/list/tuple; other values are returned as is.

        Containers are copied, never modified. Dict values under a sensitive key
        (see :meth:`is_sensitive_field`) are replaced whole by ``[REDACTED:field]``.
        """
        return self._value(value, 0)  # type: ignore[no-any-return]

    def _value(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            return self._dict(value, depth)
        if isinstance(value, list | tuple):
            return self._list(value, depth)
        return value

    def _list(self, value: list[Any] | tuple[Any, ...], depth: int) -> Any:
        if depth >= _MAX_DEPTH:
            return marker("too-deep")
        texts = self._text_cache
        items: list[Any] = []
        for item in value:
            if type(item) is str:  # argv words, paths: mostly cache hits
                cached = texts.get(item)
                items.append(cached if cached is not None else self.redact_text(item))
            else:
                items.append(self._value(item, depth + 1))
        return items if isinstance(value, list) else tuple(items)

    def _dict(self, value: Mapping[Any, Any], depth: int) -> Any:
        if depth >= _MAX_DEPTH:
            return marker("too-deep")
        out: dict[Any, Any] = {}
        # {"name": "DB_PASSWORD", "value": "..."}: Kubernetes env, ECS, CI variable APIs
        label = value.get("name", value.get("key")) if "value" in value else None
        pair = isinstance(label, str) and self.is_sensitive_field(label)
        # The hot loop of every event: cache hits (key names, repeated strings) inline.
        known_keys = self._key_cache
        texts = self._text_cache
        for key, item in value.items():
            if isinstance(key, str):
                sensitive = known_keys.get(key)
                if sensitive is None:
                    sensitive = self.is_sensitive_field(key)
                if (sensitive or (pair and key == "value")) and _maskable(item):
                    out[key] = marker("field")
                    continue
            kind = type(item)
            if kind is str:
                cached = texts.get(item)
                out[key] = cached if cached is not None else self.redact_text(item)
            elif item is None or kind in _PLAIN:
                out[key] = item
            elif kind is dict:
                out[key] = self._dict(item, depth + 1)
            elif kind is list:
                out[key] = self._list(item, depth + 1)
            else:
                out[key] = self._value(item, depth + 1)
        return out

    def redact_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A redacted copy of an event dict, actor identities pseudonymized if configured.

        Integrity and correlation fields (``id``, ``chain_id``, ``seq``,
        ``prev_hash``, ``hash``, ``correlation_id``, ``parent_id``) go through
        the same text rules, none of which alter an id (hex digests, UUIDs,
        trace2 session ids, CI job ids); their names are not sensitive.
        """
        out: dict[str, Any] = self._dict(event, 0)
        key = self._user_id_key
        actor = event.get("actor")
        if key is not None and isinstance(actor, dict) and isinstance(out.get("actor"), dict):
            new_actor = out["actor"]
            for name in _ACTOR_ID_FIELDS:
                raw = actor.get(name)
                if isinstance(raw, str) and raw.strip() and not is_pseudonym(raw):
                    identity = raw.strip().lower() if name == "git_email" else raw.strip()
                    new_actor[name] = pseudonymize(identity, key)
        return out


_PLAIN = frozenset({int, float, bool})  # values no rule looks at (exact types: not subclasses)


def _maskable(value: object) -> bool:
    """Whether a value under a sensitive key is replaced.

    None, booleans, placeholders and public blocks (a commit's ``signature``) stay.
    """
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, str):
        return not (_is_placeholder(value) or _is_public_block(value))
    return True


# --- pseudonyms --------------------------------------------------------------------------


def pseudonymize(value: str, key: bytes) -> str:
    """A stable pseudonym ``anon:<16 hex>`` of ``value``: HMAC-SHA256 under ``key``, truncated.

    The same value and key always give the same pseudonym, so one person's
    events still line up; without the key it cannot be reversed or recomputed.
    """
    import hashlib  # deferred: only deployments with hash_user_ids pay for OpenSSL
    import hmac

    data = value.encode("utf-8", "surrogatepass")
    return _PSEUDONYM_PREFIX + hmac.new(key, data, hashlib.sha256).hexdigest()[:16]


def is_pseudonym(value: str) -> bool:
    """Whether ``value`` is already a pseudonym made by :func:`pseudonymize`."""
    digest = value[len(_PSEUDONYM_PREFIX) :]
    return (
        value.startswith(_PSEUDONYM_PREFIX)
        and len(digest) == 16
        and all(char in "0123456789abcdef" for char in digest)
    )


_DEFAULT: list[Redactor] = []


def _default_redactor() -> Redactor:
    if not _DEFAULT:
        _DEFAULT.append(Redactor())
    return _DEFAULT[0]


def redact(value: _T) -> _T:
    """Redact ``value`` (str, dict, list, tuple; recursively) with the default :class:`Redactor`."""
    return _default_redactor()(value)
