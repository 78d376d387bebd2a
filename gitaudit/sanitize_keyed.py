"""The ``key=value`` family of redaction rules: a value redacted because of its name.

Split from :mod:`gitaudit.sanitize_rules` (provider tokens and context rules);
:class:`~gitaudit.sanitize.Redactor` builds one :class:`_KeyedRules` from its
``sensitive_fields``. A key is found from the *trigger* word that ends it (``pass``
for ``DB_PASS``, found with ``str.find``), its start leftwards; whether it is
sensitive is decided on the whole normalized key, like dict keys. What follows the
separator decides what the value is: quoted, bare after ``=``, JSON, a header, a
YAML word, or a word in a sentence that must look typed. A bare value that is code
(a call, a reference, a variable named like the secret) is left alone, so diffs and
prompts quoting code come through unchanged.
"""

from __future__ import annotations

from gitaudit.sanitize_rules import (
    _PREFIX,
    _aligned_lower,
    _is_path,
    _is_placeholder,
    _is_public_block,
    _occurrences,
    _pattern,
    marker,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms to import; annotations are strings at runtime
    import re
    from collections.abc import Callable


# Code that handles a secret without holding one: a call or subscript (os.environ["PW"],
# get_token(), ENV.fetch(...)), a dotted reference (settings.SECRET_KEY, req.headers.token),
# a variable named like the secret (password=password, token: accessToken), a type annotation
# (token: str) or a keyword (await ...). Only bare values are tested: a quoted value is a literal.
# Names are letters, "_" and "$" only: "P4ss.w0rd" is a password, not a reference.
_CODE_NAME = r"[A-Za-z_$][A-Za-z_$]*+(?:(?:\.|::|->)[A-Za-z_$][A-Za-z_$]*+)*+(?P<open>[(\[])?"
_CODE_WORDS = frozenset(
    (
        "await", "new", "yield", "lambda", "function", "async", "typeof", "not", "require", "self",
        "this", "super", "return", "str", "string", "bytes", "int", "bool", "secretstr",
        "secretbytes", "any", "unknown", "char", "&str", "option", "optional", "sensitive",
    )
)  # fmt: skip
_STRING_PREFIXES = frozenset(("f", "r", "b", "u", "rb", "br", "fr", "rf"))
_CODE_NAME_PARTS = ("pass", "pw", "secret", "token", "key", "cred", "auth", "pat")


def _is_code(text: str, start: int, value: str) -> bool:
    """Whether the bare ``value`` at ``text[start:]`` is code rather than a literal secret."""
    first = value[:1]
    if first in "([{":  # a tuple, list or object, not a literal (auth=(user, pw)); or a marker
        return not value.startswith(_PREFIX)
    word = value.rstrip(",;)")
    lowered = word.lower()
    if lowered in _CODE_WORDS:
        return True
    if not (first.isalpha() or first in "_$"):
        return False  # code starts with a name
    after = text[start + len(value) : start + len(value) + 1]
    if after and after in "\"'\\" and lowered in _STRING_PREFIXES:
        return True  # f"Bearer {token}": the prefix of a string literal
    name = _pattern(_CODE_NAME).match(text, start)
    if name is None or name["open"]:
        return name is not None  # a call or subscript: get_token(), os.environ["PW"]
    if name.end() - start != len(word):
        return False  # more than names: digits, symbols, a literal
    if "." in word or ":" in word or ">" in word:
        return True  # a reference: settings.SECRET_KEY
    # a variable: named like a secret, and long or punctuated enough not to be a short password
    # (password=password, self.token = token, connect(password=pw), token: accessToken)
    return (len(word) >= 5 or word != value) and any(part in lowered for part in _CODE_NAME_PARTS)


_SYMBOLS = frozenset("!\"#$%&'()*+,:;<=>?@[\\]^`{|}~")


def _secret_shaped(value: str) -> bool:
    """A typed password: 8 characters or more of three of lower, upper, digit, symbol.

    Used where only a shape can tell a secret from prose (``password is X``,
    ``password: X (temporary)``): ``sha256-hashed`` or ``required`` are not.
    """
    if len(value) < 8:
        return False
    classes = (
        any(char.islower() for char in value)
        + any(char.isupper() for char in value)
        + any(char.isdigit() for char in value)
        + any(char in _SYMBOLS for char in value)
    )
    return classes >= 3


# --- key names ---------------------------------------------------------------------------


def _normalize_key(key: str) -> str:
    """Lower snake case: ``X-Api-Key`` -> ``x_api_key``, ``clientSecret`` -> ``client_secret``."""
    out: list[str] = []
    previous = ""  # "l": lower case or digit, "u": upper case, "": separator
    last = len(key) - 1
    for index, char in enumerate(key):
        if char.isupper():
            if previous == "l" or (
                previous == "u" and index < last and key[index + 1].islower()
            ):
                out.append("_")
            out.append(char.lower())
            previous = "u"
        elif char.isalnum():
            out.append(char)
            previous = "l"
        else:
            out.append("_")
            previous = ""
    return "_".join(part for part in "".join(out).split("_") if part)


def _compact(name: str) -> str:
    return name.replace("_", "")


def _key_run_re() -> re.Pattern[str]:
    return _pattern(r"[\w.-]++")


_ASCII_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


# --- assignments in text -----------------------------------------------------------------

# key=value / key: value (detect-secrets keyword.py: FOLLOWED_BY_EQUAL_SIGNS_REGEX,
# FOLLOWED_BY_COLON_REGEX, FOLLOWED_BY_COLON_EQUAL_SIGNS_REGEX, quoted variants; gitleaks
# generic-api-key). The key must end with one of the trigger words (checked by lookbehinds
# after a possessive key, so each key is scanned once); whether it is sensitive is decided on
# the whole normalized key, the same way as for dict keys.
_KV = (
    r"(?:(?<![\w./-])|(?<=\\[nrt]))(?P<oq>\\?[\"'])?(?P<key>[\w.-]++)(?:{triggers})(?P<cq>'\"'\"'|\\?[\"'])?\]?"
    r"(?P<sep>[ \t]*(?:=>|:=)[ \t]*|[ \t]+=(?!=)[ \t]*|=(?![=~])|[ \t]*:(?![:/])[ \t]*"
    r"|(?P<prose>[ \t]+(?:is|was|to|now)[ \t]+)"  # "the password is X": X must look typed
    r"|[ \t]*,[ \t]*)"  # define('DB_PASSWORD', 'X'): see _SETTERS
)
# Calls that set their first (quoted) argument to their second: PHP's define() (wp-config.php),
# setenv/putenv, os.environ.setdefault, Properties.setProperty, Map.put/set.
_SETTERS = ("define", "setenv", "putenv", "setdefault", "setProperty", "put", "set")
# name: DB_PASSWORD / value: ... pairs (Kubernetes env, ECS task definitions, GitLab CI variables)
_NAMED = (
    r"(?<![\w.-])(?:name|key)\\?[\"']?[ \t]*[:=][ \t]*\\?[\"']?(?P<key>[\w.-]++)(?:{triggers})"
    r"\\?[\"']?[ \t]*(?:,[ \t]*|(?:\r?\n|\\[rn])(?:[ \t+-]|remote:)*+|[ \t]+)"  # also in diffs
    r"(?P<cq>\\?[\"'])?value\\?[\"']?(?P<sep>[ \t]*[:=][ \t]*)"
)
# --password VALUE (long option and its value as separate words)
_FLAG = (
    r"(?P<pre>--(?<![\w-]--)(?P<key>[A-Za-z][\w-]*+)(?:{triggers})[ \t]++)"
    r"(?P<val>\"(?:[^\"\\\n]|\\.)*+\"|'[^'\n]*+'"
    r"|[^\s\"'`;&|<>()\\-](?:[^\s\"';&|<>()\\]|\\(?![nrt\"'\\]))*+)"
)
# <password>VALUE</password> (detect-secrets keyword_xml.py)
_XML = r"<(?P<key>[A-Za-z_][\w.-]{{0,64}}+)(?:{triggers})>(?P<val>[^<\n]{{1,1024}}+)</(?P=key)>"

# What follows the separator: quoted strings and templates, whatever the context...
_QUOTED = (
    r"'\"'\"'(?P<shq>(?:[^'\n]|'(?!\"'\"'))*+)(?:'\"'\"')?"  # 'a='"'"'pw'"'"'' (shlex.join)
    r"|\\\"(?P<eq>(?:[^\"\\\n]|\\(?!\")[^\n])*+)(?:\\\")?"
    r"|\"(?P<dq>(?:[^\"\\\n]|\\[^\n])*+)\"?"
    r"|'(?P<sq>[^'\n]*+)'?"
    r"|`(?P<bq>[^`\n]*+)`?"
    r"|(?P<tpl>\$?\{\{[^}\n]*+\}\}|\$\([^)\n]*+\)|\$\{[^}\n]*+\})"
)
# ... and bare values: after '=' (env, DSN, query string, CLI option) up to a separator;
_BARE_EQ = r"(?:[^\s\"'`&;<>\\]|\\(?![nrt\"'\\]))++"
# after a quoted key and ':' (JSON, Python dict);
_BARE_JSON = r"(?:\[REDACTED:[a-z-]+\]|[^\s,}\]\"'\\])++"
# after a header name (contains '-', or cookie): the rest of the line;
_BARE_HEADER = r"[^\r\n\"'\\]*[^\s\"'\\]"
# after a bare key and ':' (YAML): one word ending the line (or before " #", ',', '}'), so that
# "token: refresh it on 401" in a commit message stays.
_BARE_YAML = (
    r"[^\s\"'`,}\\]++(?=[ \t]*(?:\r|\n|\\[nr]|,|\}|$)|[ \t]+#"
    r"|\\?[\"'](?:[\s,)\]}]|$))"  # the end of a string: -m 'token: X', "message": "pw: X"
)
# elsewhere (YAML value followed by more words, "password is X" in prose): one word, kept
# unless it looks typed (see _secret_shaped), trailing punctuation left out.
_BARE_WORD = r"[^\s\"'`,}\\]*[^\s\"'`,}\\.;:!?)]"


_VALUE_PATTERNS: list[tuple[re.Pattern[str], ...]] = []


def _value_patterns() -> tuple[re.Pattern[str], ...]:
    if not _VALUE_PATTERNS:
        sources = (_QUOTED, _BARE_EQ, _BARE_JSON, _BARE_HEADER, _BARE_YAML, _BARE_WORD)
        _VALUE_PATTERNS.append(tuple(map(_pattern, sources)))
    return _VALUE_PATTERNS[0]


def _trigger_lookbehinds(triggers: tuple[str, ...]) -> str:
    import re

    return "|".join(f"(?<={re.escape(word)})" for word in triggers)


def _keyed_patterns(triggers: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    behinds = _trigger_lookbehinds(triggers)
    return tuple(
        _pattern("(?i)" + source.format(triggers=behinds)) for source in (_KV, _NAMED, _FLAG, _XML)
    )


class _KeyedRules:
    """The ``key=value`` family of rules, built from a redactor's sensitive field names."""

    __slots__ = (
        "_compiled", "_groups", "_is_sensitive", "_mark", "_triggers", "also", "anchored", "exact",
        "gate", "min_len", "words",
    )  # fmt: skip

    def __init__(self, triggers: tuple[str, ...], is_sensitive: Callable[[str], bool]) -> None:
        self._triggers = triggers
        # Triggers grouped under the shortest one they start with (pass: pass, passwd, password,
        # passphrase), so each occurrence is visited once; the group heads are the guard words.
        heads = [t for t in triggers if not any(t != o and t.startswith(o) for o in triggers)]
        self._groups = tuple(
            (head, tuple(sorted((t for t in triggers if t != head and t.startswith(head)),
                                key=len, reverse=True)))
            for head in heads
        )  # fmt: skip
        self.words = tuple(heads)
        self.min_len = 4
        self.also = ()
        self.anchored = True  # finds its candidates from the trigger words
        self.exact = False  # field names are matched case-insensitively
        self.gate: Callable[[str], bool] | None = None
        self._is_sensitive = is_sensitive
        self._mark = marker("assignment")
        self._compiled: tuple[re.Pattern[str], ...] | None = None

    def _patterns(self) -> tuple[re.Pattern[str], ...]:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = _keyed_patterns(self._triggers)
        return compiled

    def _secret(self, key: str, value: str) -> bool:
        if _is_placeholder(value):
            return False
        if _is_public_block(value):
            return False
        # PWD=/home/me is the shell's working directory, not a password
        if key[-3:].lower() == "pwd" and _normalize_key(key) == "pwd":
            return not _is_path(value.strip("\"'"))
        return True

    def apply(self, text: str, lowered: str) -> str:
        kv, named, flag, xml = self._patterns()
        if "=" in text or ":" in text or " " in text:  # key=value, key: value, "key is value"
            redacted = self._assignments(kv, text, self._key_starts(text, lowered))
            if "value" in lowered:  # no marker holds "value": the old lower case tells
                if redacted is not text:
                    lowered = _aligned_lower(redacted)
                starts = _occurrences(lowered, ("name", "key"))
                redacted = self._assignments(named, redacted, starts)
            text = redacted
        if "--" in text:
            text = flag.sub(self._flag_repl, text)
        if "</" in text:
            text = xml.sub(self._xml_repl, text)
        return text

    def _key_starts(self, text: str, lowered: str) -> list[int]:
        """Where keys ending with a trigger word start (and their opening quote, if any)."""
        starts: list[int] = []
        size = len(text)
        backwards = ""  # text reversed, made on first use: key runs are matched leftwards
        key_run = _key_run_re()
        for head, group in self._groups:
            position = lowered.find(head)
            while position != -1:
                end = position + len(head)
                if end < size and (  # a key char (inline: hot) after the head: a longer word?
                    text[end] in _ASCII_KEY_CHARS or (text[end] > "\x7f" and text[end].isalnum())
                ):
                    for word in group:  # longest first: password before pass
                        if lowered.startswith(word, position):
                            end = position + len(word)
                            break
                    if end == position + len(head) or (
                        end < size
                        and (
                            text[end] in _ASCII_KEY_CHARS
                            or (text[end] > "\x7f" and text[end].isalnum())
                        )
                    ):
                        position = lowered.find(head, position + 1)
                        continue
                if not backwards:
                    backwards = text[::-1]
                run = key_run.match(backwards, size - position)
                start = position - (run.end() - run.start() if run else 0)
                if 0 < start < position and text[start] in "nrt" and text[start - 1] == "\\":
                    start += 1  # "\\npass = x" in a JSON string: the key is "pass"
                starts.append(start)
                if start and text[start - 1] in "\"'":  # "key" or \"key\" (JSON in JSON)
                    escaped = text[start - 2 : start - 1] == "\\"
                    starts.append(start - 2 if escaped else start - 1)
                position = lowered.find(head, position + 1)
        starts.sort()
        return starts

    def _assignments(self, pattern: re.Pattern[str], text: str, starts: list[int]) -> str:
        parts: list[str] = []
        copied = 0
        resume = 0
        for start in starts:
            if start < resume:
                continue  # inside a value already dealt with
            match = pattern.match(text, start)
            if match is None:
                continue
            key = match["key"]
            if not self._is_sensitive(key) or text.endswith(_PREFIX, 0, match.start("key")):
                continue  # not a secret's name, or the kind inside one of our markers
            span = self._value_span(text, match)
            if span is None:
                continue
            value_start, value_end, bare = span
            resume = value_end
            value = text[value_start:value_end]
            if value_start == value_end or not self._secret(key, value):
                continue
            if bare and _is_code(text, value_start, value):
                continue
            parts.append(text[copied:value_start])
            parts.append(self._mark)
            copied = value_end
        if not parts:
            return text
        parts.append(text[copied:])
        return "".join(parts)

    def _value_span(self, text: str, match: re.Match[str]) -> tuple[int, int, bool] | None:
        """Where the value after ``match`` is, and whether it is bare (not quoted)."""
        quoted, bare_eq, bare_json, bare_header, bare_yaml, bare_word = _value_patterns()
        position = match.end()
        sep = match["sep"]
        if sep[-1:] in ", \t" and "," in sep:  # only a quoted value set by a setter call
            call = text[max(0, match.start() - 24) : match.start()].rstrip(" \t'\"")
            if not (match["cq"] and call.endswith("(") and call[:-1].rstrip().endswith(_SETTERS)):
                return None
            found = quoted.match(text, position)
            if found is None or found.lastgroup == "tpl":
                return None
        found = quoted.match(text, position)
        if found is not None:
            group = found.lastgroup or ""
            return (*(found.span(group) if group != "tpl" else found.span()), False)
        if sep.strip().isalpha():  # "is", "was", "to", "now": the password in a sentence
            found = bare_word.match(text, position)
            if found is None or not _secret_shaped(found[0]):
                return None
        elif ":" not in sep or ":=" in sep:
            found = bare_eq.match(text, position)
        elif match["cq"]:
            found = bare_json.match(text, position)
        elif "-" in match["key"].strip("-") or match["key"][-6:].lower() == "cookie":
            found = bare_header.match(text, position)
        else:
            found = bare_yaml.match(text, position)
            if found is None:  # "password: X (temporary)": only a word that looks typed
                found = bare_word.match(text, position)
                if found is None or not _secret_shaped(found[0]):
                    return None
        return None if found is None else (*found.span(), True)

    def _flag_repl(self, match: re.Match[str]) -> str:
        if not self._is_sensitive(match["key"]) or not self._secret(match["key"], match["val"]):
            return match[0]
        return match["pre"] + self._mark

    def _xml_repl(self, match: re.Match[str]) -> str:
        key = match["key"]
        if not self._is_sensitive(key) or not self._secret(key, match["val"]):
            return match[0]
        return f"<{key}>{self._mark}</{key}>"
