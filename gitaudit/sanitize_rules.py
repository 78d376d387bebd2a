"""The rule table of the sanitizer: what a secret looks like, and what replaces it.

:mod:`gitaudit.sanitize` holds the :class:`~gitaudit.sanitize.Redactor` that runs
these rules over every string of an event; this module holds the rules
themselves (provider-token patterns, context rules, placeholders) and the
:data:`KINDS` a marker can name; the ``key=value`` family is in
:mod:`gitaudit.sanitize_keyed`.

Design notes:

- Hot path. The git wrapper imports this module on every git command, so it
  imports nothing at all: :mod:`re` is imported when the first pattern is
  compiled; each rule's pattern is compiled the first time a text could match
  it. Every rule has a minimum length and *guard words*, literals one of which
  the lower-cased text must contain, so a ``git push origin main`` argv costs a
  few length tests.
- Speed on large text. Provider-token patterns begin with a literal, which the
  regex engine finds at memchr speed. Case-insensitive context rules are
  *anchored*: their keywords are found with ``str.find`` on the lower-cased
  text and the pattern is only tried there (``key=value`` pairs likewise, from
  the trigger word that ends the key, the key's start found leftwards).
- Order. Context rules that keep more structure (URL userinfo,
  ``Authorization`` headers) run before provider-token rules, and generic
  ``key=value`` assignments after them, so the marker names the most specific
  kind. Marker kinds are letters and dashes only, so no rule takes one for a
  secret.
- Linear time. No pattern nests unbounded repetitions; quantifiers are
  possessive or bounded, or their runs cannot overlap, and a rule that could
  fail after a long scan starts only at the beginning of a run (lookbehind), so
  1 MB of adversarial input takes well under a second.
- Sources. Provider-token patterns follow the gitleaks default configuration
  (``config/gitleaks.toml`` in github.com/gitleaks/gitleaks; rule ids are named
  next to each pattern), context rules follow Yelp's detect-secrets plugins
  (``keyword.py``, ``basic_auth.py``, ``aws.py``, ``azure_storage_key.py``,
  ``twilio.py``). detect-secrets itself is not used: it imports dozens of
  modules (``requests``, ``yaml``, its plugin registry) and scans per line with
  per-plugin Python loops, far too slow to import on every git command.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms to import; annotations are strings at runtime
    import re
    from collections.abc import Callable


#: Every kind a marker can name, with what it stands for.
KINDS: dict[str, str] = {
    "private-key": "PEM/OpenSSH/PGP private key block (BEGIN ... END, also truncated)",
    "url-credentials": "userinfo of a URL (user:password@, token@), also database URLs",
    "authorization": "Authorization / Proxy-Authorization header value, http.extraheader",
    "basic-auth": "user:password given to curl -u / --user",
    "github-token": "GitHub ghp_/gho_/ghu_/ghs_/ghr_/github_pat_ token",
    "gitlab-token": "GitLab glpat-/gldt-/glrt-/glptt-/glcbt-/glft-/glimt-/glsoat-/GR1348941",
    "aws-access-key": "AWS access key id (AKIA/ASIA/ABIA/ACCA/A3T...)",
    "aws-secret-key": "AWS secret access key (40 chars after an AWS secret key name)",
    "slack-token": "Slack xoxb-/xoxp-/xoxa-/xoxo-/xoxs-/xoxr-/xoxe-/xapp- token",
    "slack-webhook": "path of a hooks.slack.com webhook URL",
    "webhook-url": "path of a Discord webhook URL",
    "anthropic-key": "Anthropic sk-ant- key",
    "openai-key": "OpenAI sk-/sk-proj-/sk-svcacct-/sk-admin- key",
    "stripe-key": "Stripe sk_/rk_ live/test/prod key, whsec_ webhook secret",
    "google-api-key": "Google AIza API key",
    "google-oauth": "Google OAuth client secret (GOCSPX-), access (ya29.) or refresh token",
    "npm-token": "npm npm_ token",
    "pypi-token": "PyPI pypi-AgE... upload token",
    "twilio-key": "Twilio SK/AC + 32 hex, and the auth token or API secret given next to it",
    "azure-devops-pat": "Azure DevOps PAT: 84 characters with JQQJ99...AZDO, or 52 of a-z2-7",
    "docker-config": "base64 of a whole Docker config.json ({\"auths\": ...}), .dockerconfigjson",
    "netrc-password": "password of a .netrc entry (machine HOST login USER password ...)",
    "cli-password": "password given to mysql -p..., docker/podman/helm login -p, sshpass -p, az -p",
    "sendgrid-key": "SendGrid SG.x.y key",
    "azure-storage-key": "Azure AccountKey= / SharedAccessKey= value",
    "azure-sas": "Azure SharedAccessSignature= value, sig= of a SAS URL",
    "jwt": "JSON Web Token (eyJ....eyJ....sig)",
    "api-token": "other prefixed provider tokens from the gitleaks default rules",
    "assignment": "value of password=/token=/api_key: ... in text, JSON, YAML, env, DSNs",
    "card-number": "Luhn-valid payment card number (13-19 digits, IIN 2-6)",
    "field": "value of a dict key named like a secret (sensitive_fields)",
    "too-deep": "a structure nested deeper than the redactor follows",
}

_PREFIX = "[REDACTED:"
_DIGITS = frozenset("0123456789")


def marker(kind: str) -> str:
    """The marker that replaces a secret of ``kind``, e.g. ``[REDACTED:jwt]``."""
    return f"{_PREFIX}{kind}]"


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _pattern(source: str) -> re.Pattern[str]:
    """``source`` compiled, once per process; :mod:`re` is only imported here (~5 ms)."""
    compiled = _PATTERNS.get(source)
    if compiled is None:
        import re

        compiled = _PATTERNS[source] = re.compile(source)
    return compiled


# --- value tests -------------------------------------------------------------------------

_PLACEHOLDER = (
    r"\$\{\{.*\}\}|\$?\{\{.*\}\}|\$\{[^{}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\$[0-9@*#?]"  # ${X} $X $1
    r"|\$\([^()]*\)"  # $(cmd)
    r"|%[A-Za-z_][A-Za-z0-9_]*%|@[A-Za-z_][A-Za-z0-9_]*@|<[^<>]*>"  # %X% @X@ <token>
    r"|%(?:\([A-Za-z_][\w.]*\))?[sdrv]"  # %s %(pw)s
    r"|\{[A-Za-z_0-9]*\}|\{[A-Za-z_][\w.]*(?:![rsa])?\}"  # {} {0} {password}
    r"|[\w-]{0,8}\*{3,}[\w-]{0,8}|[xX]{3,}|\.{3}|\u2022+"  # *** ****1234 xxxx ... bullets
    r"|[\W_]*(?i:redacted|masked)[\W_]*"  # [REDACTED] <redacted> [MASKED] (GitLab CI)
    r"|(?:\[REDACTED:[a-z-]+\])+"  # our own markers
    r"|(?i:true|false|null|none|nil|undefined|~)"
    # well-known dummies: public, and seeing that a default was left in place is worth keeping
    r"|(?i:change[_-]?me|replace[_-]?me|fixme|todo|tbd|dummy|placeholder|example|secret|password"
    r"|(?:your|my)[_-]?[a-z_-]*|[a-z_-]*[_-]here|(?:bearer|basic|token|digest)[ \t]*)"
    r"|[\W_]+"  # punctuation only: a shell default (${X:-}), a separator
)


def _placeholder_re() -> re.Pattern[str]:
    return _pattern(_PLACEHOLDER)


def _is_placeholder(value: str) -> bool:
    """True for values that stand for a secret rather than being one.

    Empty values, variables (``${GITHUB_TOKEN}``, ``$TOKEN``, ``{{ x }}``,
    ``%(pw)s``, ``{password}``), ``<token>``, ``***``, ``****1234``,
    booleans/null, well-known dummies (``changeme``, ``your-token-here``) and
    already-redacted markers (the variable forms follow the global allowlist of
    the gitleaks configuration).
    """
    value = value.strip().strip("\"'`")
    if not value:
        return True
    return _placeholder_re().fullmatch(value) is not None


def _is_public_block(value: str) -> bool:
    """A PGP/SSH signature, public key or certificate block: public, whatever its name."""
    return value.startswith("-----BEGIN ") and "PRIVATE" not in value[:64]


def _is_path(value: str) -> bool:
    return value.startswith(("/", "~")) or (value[1:3] in (":\\", ":/") and value[0].isalpha())


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


# Provider prefixes that make a password-less URL userinfo a token (see gitleaks rules below).
_TOKEN_PREFIXES = (
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gldt-", "glrt-", "glptt-",
    "glcbt-", "glft-", "glimt-", "glsoat-", "GR1348941", "npm_", "pypi-", "sk-", "sk_", "rk_",
    "xox", "AKIA", "ASIA", "eyJ",
)  # fmt: skip


def _token_like(user: str) -> bool:
    """A password-less URL userinfo that is a token rather than a user name."""
    if user.startswith(_TOKEN_PREFIXES):
        return True
    if len(user) >= 32:
        return True
    return len(user) >= 20 and sum(char.isdigit() for char in user) >= 4


# --- rules -------------------------------------------------------------------------------

if TYPE_CHECKING:
    _Repl = str | Callable[[re.Match[str]], str]


class _Rule:
    """One redaction pass: when it may apply, a lazily compiled pattern, its replacement.

    The rule runs on a text of at least ``min_len`` characters whose lower-cased
    form contains one of ``words`` (if given) and all of ``also``; guard words
    with capitals (``AC``, ``SK``) are looked up case-sensitively in the text
    itself, so hex ids full of ``ac`` do not wake the rule up. ``gate``, if given,
    is a cheaper test the text must pass first. A pattern with no literal to
    start from may come with ``starts``, which finds where a match may begin with
    string methods (or returns None: scan it all); the pattern is tried only there.
    An *anchored*
    rule's pattern is only tried where one of ``words`` occurs (found with
    ``str.find`` on the lower-cased text, far faster than a case-insensitive scan);
    other patterns start with a literal the regex engine scans for by itself.
    """

    __slots__ = (
        "_compiled", "also", "anchored", "exact", "gate", "kind", "min_len", "repl", "source",
        "starts", "words",
    )  # fmt: skip

    def __init__(
        self,
        kind: str,
        source: str,
        min_len: int,
        words: tuple[str, ...] | None,
        also: tuple[str, ...] = (),
        repl: _Repl | None = None,
        *,
        anchored: bool = False,
        gate: Callable[[str], bool] | None = None,
        starts: Callable[[str], list[int] | None] | None = None,
    ) -> None:
        self.kind = kind
        self.starts = starts
        self.anchored = anchored and words is not None
        self.exact = words is not None and any(word != word.lower() for word in words)
        self.gate = gate
        self.source = source
        self.min_len = min_len
        self.words = words
        self.also = also
        self.repl: _Repl = marker(kind) if repl is None else repl
        self._compiled: re.Pattern[str] | None = None

    @property
    def pattern(self) -> re.Pattern[str]:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = _pattern(self.source)
        return compiled

    def apply(self, text: str, lowered: str) -> str:
        if self.starts is not None:
            found = self.starts(text)
            if found is not None:
                return _anchored_sub(self.pattern, self.repl, text, found) if found else text
        if not self.anchored or self.words is None:
            return self.pattern.sub(self.repl, text)
        return _anchored_sub(self.pattern, self.repl, text, _occurrences(lowered, self.words))


def _occurrences(lowered: str, words: tuple[str, ...]) -> list[int]:
    """Sorted start positions of every occurrence of ``words`` in ``lowered``."""
    found: list[int] = []
    for word in words:
        position = lowered.find(word)
        while position != -1:
            found.append(position)
            position = lowered.find(word, position + 1)
    found.sort()
    return found


def _anchored_sub(pattern: re.Pattern[str], repl: _Repl, text: str, starts: list[int]) -> str:
    """Like ``pattern.sub(repl, text)``, but trying matches only at ``starts``."""
    parts: list[str] = []
    copied = 0
    for start in starts:
        if start < copied:
            continue
        match = pattern.match(text, start)
        if match is None:
            continue
        parts.append(text[copied:start])
        parts.append(repl(match) if callable(repl) else match.expand(repl))
        copied = match.end()
    if not parts:
        return text
    parts.append(text[copied:])
    return "".join(parts)


def _aligned_lower(text: str) -> str:
    """``text.lower()``, or an ASCII-only lower case when that would shift indices."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return text.translate(_ASCII_LOWER)  # rare: some characters lower-case to two


_ASCII_LOWER = {code: code + 32 for code in range(65, 91)}


def _keep_pre(kind: str) -> Callable[[re.Match[str]], str]:
    """Replacement keeping group ``pre`` and replacing group ``val`` unless a placeholder."""
    mark = marker(kind)

    def repl(match: re.Match[str]) -> str:
        if _is_placeholder(match["val"]):
            return match[0]
        return match["pre"] + mark

    return repl


# URL userinfo (detect-secrets basic_auth.py: ``://[^:]+:([^@]+)@``; here the whole userinfo,
# up to the last '@' of the authority, and also a password-less token as userinfo).
_URL = r"://(?P<ui>[^\s/?#\[\]\"'<>`\\]*)@"


def _url_repl(match: re.Match[str]) -> str:
    user, colon, password = match["ui"].partition(":")
    if colon and password:
        if _is_placeholder(password):
            return match[0]
    elif not _token_like(user):
        return match[0]  # git@host, user@host: a user name, no secret
    return "://" + marker("url-credentials") + "@"


# Authorization headers (gitleaks curl-auth-header; any scheme). The value runs to the end of
# the line or the closing quote.
_AUTH_SCHEMES = frozenset(
    (
        "basic", "bearer", "token", "digest", "negotiate", "ntlm", "oauth", "aws4-hmac-sha256",
        "hoba", "mutual", "vapid", "scram-sha-1", "scram-sha-256", "apikey", "api-key", "key",
        "sso-key", "ssws", "gitlab", "jwt", "dpop", "hmac", "mac", "signature", "private-token",
        "splunk",
    )
)  # fmt: skip
_AUTHZ = (
    r"(?i)(?<![a-z0-9])(?P<pre>authorization[\"']?[ \t]*[:=][ \t]*)"
    # a quoted value ends at its closing quote; a bare one at the end of the line or at an
    # unbalanced quote (-H 'Authorization: ...'), balanced "..." inside it belong to it (Digest)
    r"(?:(?P<q>[\"'])(?P<qval>(?:[^\r\n\"'\\]|\\[^\r\n])*+)"
    r"|(?P<val>(?:[^\r\n\"'\\]|\\[^\r\nnr]|\"[^\"\r\n]*+\")++))"  # \n: a line end in JSON
)
_EXTRAHEADER = (
    r"(?i)(?<![a-z0-9])(?P<pre>extraheader[\"']?(?:[ \t]*=[ \t]*|[ \t]+)[\"']?"
    r"(?:[a-z][\w-]*:[ \t]*)?)(?P<val>[^\r\n\"'\\]*[^\s\"'\\])"
)


def _extraheader_repl(match: re.Match[str]) -> str:
    value = match["val"]
    _, space, rest = value.partition(" ")
    if _is_placeholder(value) or (space and _is_placeholder(rest)):
        return match[0]  # "bearer ${TOKEN}": the scheme, then a placeholder
    return match["pre"] + marker("authorization")


def _prose_re() -> re.Pattern[str]:
    return _pattern(r"[A-Za-z,.;!?()'-]+(?:[ \t]+[A-Za-z,.;!?()'-]+)*")


def _authz_repl(match: re.Match[str]) -> str:
    raw = match["val"] if match["q"] is None else match["qval"]
    value = raw.rstrip()
    scheme, _, credentials = value.partition(" ")
    credentials = credentials.strip()
    if credentials:
        # f"Bearer {token}" (code), "Bearer " + token: the part up to a quote is what is given
        given = credentials.replace("\\", "").split('"', 1)[0].split("'", 1)[0]
        if _is_placeholder(credentials) or _is_placeholder(given):
            return match[0]
        if scheme.lower() not in _AUTH_SCHEMES and _prose_re().fullmatch(credentials):
            return match[0]  # "authorization: required for admins" is prose, not a header
    elif _is_placeholder(scheme):
        return match[0]
    return match["pre"] + (match["q"] or "") + marker("authorization") + raw[len(value) :]


_CURL_USER = (
    r"(?<![\w-])(?P<pre>(?:-u|--user)(?:[ \t]+|=)[\"']?)(?P<val>[^\s\"':\[\]]+:[^\s\"']+)"
)


def _curl_repl(match: re.Match[str]) -> str:
    if _is_placeholder(match["val"].partition(":")[2]):
        return match[0]
    return match["pre"] + marker("basic-auth")


# AWS secret access key: 40 base64 chars after an AWS secret key name (detect-secrets aws.py
# get_secret_access_key; trufflehog's aws detector uses the same 40-char shape).
_AWS_SAK = (
    r"(?i)(?P<pre>(?:aws_?secret_?(?:access_?)?key|secret_?access_?key)[\"']?[ \t]*"
    r"(?:=>|:=|=|:)[ \t]*[\"']?)(?P<val>[a-z0-9/+]{40})(?![a-z0-9/+=])"
)

# Azure storage connection strings (detect-secrets azure_storage_key.py: AccountKey=<86+ b64>==)
# and shared access signatures.
_AZURE_KEY = r"(?i)(?P<pre>(?:AccountKey|SharedAccessKey)[ \t]*=[ \t]*)(?P<val>[a-z0-9+/=]{16,}+)"
_AZURE_SAS = (
    r"(?i)(?P<pre>SharedAccessSignature[ \t]*=[ \t]*|(?<=[?&])sig=)(?P<val>[^\s;&\"'<>#]+)"
)

# Provider tokens: (kind, pattern, shortest match, lower-case literals one of which a match
# contains). Each pattern starts with one literal, so the regex engine finds candidates at
# memchr speed; a lookbehind right after it stands in for a leading word boundary where the
# prefix is short enough to occur inside ordinary words.
_TOKENS: tuple[tuple[str, str, int, tuple[str, ...]], ...] = (
    # gitleaks: github-pat, github-oauth, github-app-token, github-refresh-token
    ("github-token", r"gh[pousr]_[A-Za-z0-9]{36,}+", 40, ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    # gitleaks: github-fine-grained-pat
    ("github-token", r"github_pat_[A-Za-z0-9_]{22,}+", 33, ("github_pat_",)),
    # gitleaks: gitlab-pat(-routable), gitlab-deploy-token, gitlab-runner-authentication-token
    # (-routable), gitlab-ptt, gitlab-cicd-job-token, gitlab-feed-token,
    # gitlab-incoming-mail-token, gitlab-scim-token, gitlab-kubernetes-agent-token,
    # gitlab-oauth-app-secret, gitlab-feature-flag-client-token
    ("gitlab-token",
     r"gl(?:pat|dt|rt|ptt|cbt|ft|imt|soat|agent|oas|ffct)-[A-Za-z0-9_-]{20,}+"
     r"(?:\.[0-9a-z]{9}(?![0-9a-z]))?", 25,
     ("glpat-", "gldt-", "glrt-", "glptt-", "glcbt-", "glft-", "glimt-", "glsoat-", "glagent-",
      "gloas-", "glffct-")),
    ("gitlab-token", r"GR1348941[A-Za-z0-9_-]{20,}+", 29, ("gr1348941",)),  # gitleaks: gitlab-rrt
    # gitleaks: aws-access-token
    ("aws-access-key",
     r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)(?<![A-Za-z0-9]....)[A-Z2-7]{16}(?![A-Za-z0-9])", 20,
     ("AKIA", "ASIA", "ABIA", "ACCA", "A3T")),  # upper case: exact, so hex ids wake no regex
    # gitleaks: slack-bot-token, slack-user-token, slack-app-token, slack-legacy-*,
    # slack-config-access-token, slack-config-refresh-token
    ("slack-token", r"xox[abposre](?:\.xox[bp])?-[A-Za-z0-9-]{10,}+|xapp-[0-9]-[A-Za-z0-9-]{10,}+",
     15, ("xox", "xapp-")),
    # gitleaks: anthropic-api-key, anthropic-admin-api-key
    ("anthropic-key", r"sk-ant-[A-Za-z0-9_-]{20,}+", 27, ("sk-ant-",)),
    # gitleaks: openai-api-key (without its T3BlbkFJ marker: newer keys lack it)
    ("openai-key",
     r"sk-(?<![A-Za-z0-9_-]sk-)(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}+"
     r"|[A-Za-z0-9]{20,}+(?![_-]))", 23, ("sk-",)),
    # gitleaks: stripe-access-token; whsec_ is Stripe's webhook signing secret
    ("stripe-key", r"sk_(?<![A-Za-z0-9]sk_)(?:live|test|prod)_[A-Za-z0-9]{10,}+", 18,
     ("sk_live_", "sk_test_", "sk_prod_")),
    ("stripe-key", r"rk_(?<![A-Za-z0-9]rk_)(?:live|test|prod)_[A-Za-z0-9]{10,}+", 18,
     ("rk_live_", "rk_test_", "rk_prod_")),
    ("stripe-key", r"whsec_[A-Za-z0-9+/=]{20,}+", 26, ("whsec_",)),
    ("google-api-key", r"AIza[A-Za-z0-9_-]{30,}+", 34, ("aiza",)),  # gitleaks: gcp-api-key
    # Google's documented OAuth client secret, access token and refresh token prefixes
    ("google-oauth", r"GOCSPX-[A-Za-z0-9_-]{20,}+", 27, ("gocspx-",)),
    ("google-oauth", r"ya29\.[A-Za-z0-9_-]{20,}+", 25, ("ya29.",)),
    ("google-oauth", r"1//0(?<![A-Za-z0-9/]1//0)[A-Za-z0-9_-]{30,}+", 34, ("1//0",)),
    ("npm-token", r"npm_(?<![A-Za-z0-9]npm_)[A-Za-z0-9]{36,}+", 40, ("npm_",)),  # npm-access-token
    ("pypi-token", r"pypi-AgE[A-Za-z0-9_-]{50,}+", 58, ("pypi-age",)),  # pypi-upload-token
    # gitleaks: sendgrid-api-token
    ("sendgrid-key", r"SG\.[A-Za-z0-9_-]{16,}+\.[A-Za-z0-9_-]{16,}+", 35, ("sg.",)),
    # gitleaks: jwt (header and payload are base64url JSON objects, "eyJ"); up to 5 parts (JWE)
    ("jwt",
     r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{8,}+\.eyJ[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]*+={0,2}"
     r"(?:\.[A-Za-z0-9_-]*+){0,2}", 24, ("eyj",)),
    # other gitleaks rules, one marker kind (rule ids in the comments)
    ("api-token", r"do[opr]_v1_[a-f0-9]{64}", 71,  # digitalocean-pat/-access-/-refresh-token
     ("dop_v1_", "doo_v1_", "dor_v1_")),
    # huggingface-access-token
    ("api-token", r"hf_(?<![A-Za-z0-9]hf_)[A-Za-z]{34}(?![A-Za-z0-9])", 37, ("hf_",)),
    ("api-token", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}", 38,  # shopify-*
     ("shpat_", "shpca_", "shppa_", "shpss_")),
    ("api-token", r"hv[sb]\.[A-Za-z0-9_-]{90,}+", 94, ("hvs.", "hvb.")),  # vault-*-token
    ("api-token", r"dapi[a-f0-9]{32}(?:-[0-9])?", 36, ("dapi",)),  # databricks-api-token
    ("api-token", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", 74,
     ("age-secret-key-1",)),  # age-secret-key
    ("api-token", r"dp\.pt\.[A-Za-z0-9]{43}", 49, ("dp.pt.",)),  # doppler-api-token
    ("api-token", r"ATATT3[A-Za-z0-9_=-]{100,}+", 106, ("atatt3",)),  # atlassian-api-token
    ("api-token", r"glc_[A-Za-z0-9+/]{32,}+={0,3}", 36, ("glc_",)),  # grafana-cloud-api-token
    ("api-token", r"glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}", 46, ("glsa_",)),  # grafana-service-acc.
    ("api-token", r"PMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}", 64, ("pmak-",)),  # postman-api-token
    ("api-token", r"pul-[a-f0-9]{40}", 44, ("pul-",)),  # pulumi-api-token
    ("api-token", r"rubygems_[a-f0-9]{48}", 57, ("rubygems_",)),  # rubygems-api-token
    ("api-token", r"sntry[su]_[A-Za-z0-9+/=_]{40,}+", 47, ("sntrys_", "sntryu_")),  # sentry-*
    ("api-token", r"lin_api_[A-Za-z0-9]{40}", 48, ("lin_api_",)),  # linear-api-key
    # heroku-api-key-v2, and the HRKU-<uuid> tokens Heroku issued before it
    ("api-token",
     r"HRKU-(?:AA[0-9a-zA-Z_-]{58}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
     r"[0-9a-fA-F]{12}(?![0-9A-Za-z]))", 41, ("hrku-",)),
    ("api-token", r"pplx-[a-zA-Z0-9]{48}", 53, ("pplx-",)),  # perplexity-api-key
    ("api-token", r"dt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}", 96, ("dt0c01.",)),  # dynatrace
    # planetscale-api-token, -oauth-token, -password
    ("api-token", r"pscale_(?:tkn|oauth|pw)_[A-Za-z0-9_=.-]{32,}+", 43, ("pscale_",)),
    ("api-token", r"pnu_[a-zA-Z0-9]{36}", 40, ("pnu_",)),  # prefect-api-token
    # sendinblue-api-token
    ("api-token", r"xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}", 89, ("xkeysib-",)),
    ("api-token", r"sq0(?:atp|csp)-[0-9A-Za-z_-]{22,}+", 29, ("sq0atp-", "sq0csp-")),  # square
    ("api-token", r"dckr_pat_[A-Za-z0-9_-]{27,}+", 36, ("dckr_pat_",)),  # Docker Hub (not gitleaks)
    ("api-token", r"AKCp[A-Za-z0-9]{69}", 73, ("akcp",)),  # artifactory-api-key
    # 1password-service-account-token
    ("api-token", r"ops_eyJ[A-Za-z0-9+/]{250,}+={0,3}", 257, ("ops_eyj",)),
)  # fmt: skip
# Twilio (gitleaks twilio-api-key; detect-secrets twilio.py): account SID AC... and API key SK...
# + 32 hex, and the 32-character secret given right after one (Client("AC...", "<auth token>"),
# "sid AC... token ..."), which the SID does not protect. {sid}: each rule starts with its literal.
_TWILIO = (
    r"{sid}(?<![A-Za-z0-9]{sid})[0-9a-fA-F]{{32}}(?![A-Za-z0-9])"
    r"(?:(?P<sep>(?:'\"'\"'|\\?[\"'])?[ \t]*[,:][ \t]*(?:'\"'\"'|\\?[\"'])?"
    r"|[ \t]+(?:(?:auth[ _-]?)?token|secret|password)[ \t]*[:=]?[ \t]*)"
    r"[A-Za-z0-9]{{32}}(?![A-Za-z0-9]))?"
)


def _twilio_repl(match: re.Match[str]) -> str:
    mark = marker("twilio-key")
    return mark if match["sep"] is None else mark + match["sep"] + mark


# Azure DevOps PATs (no gitleaks rule). The format Microsoft introduced in 2024 is 84
# characters with the fixed signature JQQJ99 at offset 52 and AZDO at offset 76; the older
# PATs are 52 characters of lower-case base32, taken as a whole word with two digits or more
# (a random one has ten on average; hex ids contain 0, 1, 8 or 9 and are longer or shorter).
_ADO_PAT = (
    r"(?<![A-Za-z0-9])[A-Za-z0-9]{52}JQQJ9[0-9A-Za-z][A-Za-z0-9]{18}AZDO[A-Za-z0-9]{4}"
    r"(?![A-Za-z0-9])"
)
_ADO_LEGACY = r"(?<![\w/.-])[a-z2-7]{52}(?![\w+/=-])"
# Neither pattern has a literal to start from, so the regex would try every position of a text;
# instead the new format is found from its JQQJ9, and runs of 52 of a-z2-7 with bytes.translate
# ([a-z2-7] -> "a", all else " ") and bytes.find, which run at memory speed.
_ADO_RUN_TABLE = bytes(
    ord("a") if chr(code) in "abcdefghijklmnopqrstuvwxyz234567" else ord(" ") for code in range(256)
)
_ADO_RUN = b"a" * 52


def _ado_new_starts(text: str) -> list[int]:
    found = []
    position = text.find("JQQJ9", 52)
    while position != -1:
        found.append(position - 52)
        position = text.find("JQQJ9", position + 1)
    return found


def _ado_legacy_starts(text: str) -> list[int] | None:
    """Where runs of 52 or more of a-z2-7 begin (None: not ASCII and one may be there)."""
    data = text.encode("utf-8", "surrogatepass")
    runs = data.translate(_ADO_RUN_TABLE)
    position = runs.find(_ADO_RUN)
    if position == -1:
        return []
    if len(data) != len(text):
        return None  # byte offsets are not character offsets: let the regex scan
    found = []
    while position != -1:
        found.append(position)
        end = runs.find(b" ", position)
        position = -1 if end == -1 else runs.find(_ADO_RUN, end)
    return found


def _ado_legacy_repl(match: re.Match[str]) -> str:
    value = match[0]
    digits = sum(value.count(digit) for digit in "234567")
    return marker("azure-devops-pat") if 2 <= digits <= 40 else value


# A whole Docker config.json in base64 (Kubernetes .dockerconfigjson, DOCKER_AUTH_CONFIG
# pipelines): '{"auths":' compact or indented by 2, 4 spaces or a tab, encoded.
_DOCKER_CONFIG = (
    r"(?:eyJhdXRocyI6|ewogICJhdXRocyI6|ewogICAgImF1dGhz|ewoJImF1dGhz)[A-Za-z0-9+/]*+={0,2}"
)


def _may_hold_docker_config(text: str) -> bool:
    return "hdXRocyI6" in text or "ImF1dGhz" in text  # the four prefixes hold one of these


# .netrc / _netrc entries (machine HOST login USER password SECRET, on one line or several,
# also inside a diff or a JSON string): the word after "password" once "machine NAME" or
# "default login" opened the entry.
_NETRC_GAP = r"(?:[ \t\r\n+-]|\\[nrt]|remote:)++"  # also in a diff, a JSON string, push output
_NETRC = (
    r"(?P<pre>(?<![\w.-])(?:machine[ \t]++[^\s\\\"']++|default(?=" + _NETRC_GAP + r"login))"
    r"(?:" + _NETRC_GAP + r"(?:login|account|port)[ \t]++[^\s\\\"']++)*+"
    + _NETRC_GAP + r"password[ \t]++)"
    r"(?P<val>\"[^\"\n]*+\"|\$\([^)\n]*+\)|\$?\{\{[^}\n]*+\}\}|\$\{[^}\n]*+\}|[^\s\\\"']++)"
)

# Passwords on command lines that take them after -p: mysql's -pSECRET (glued), and -p SECRET
# of sshpass and of registry/cloud logins (a -p elsewhere is a port, a path or a parent flag).
# Found from "-p"; the command earlier on the same line is checked by the replacement.
_DASH_P = r"(?<=[ \t])-p(?P<sp>[ \t]++)?(?:'\"'\"'|\\?[\"'])?(?P<val>[^\s\"'\\]++)"


def _blank_dash_p(text: str) -> bool:
    """Cheap gate of the cli-password rule: a ``-p`` after a blank, as :data:`_DASH_P` needs
    (so ids such as trace2's ``...-P00007ae0`` and paths like ``my-project`` wake no regex)."""
    return " -p" in text or "\t-p" in text


_CLI_GLUED = (
    r"(?:^|[\s\"'(+-])(?:mysql(?:dump|admin|import|show|check)?|mariadb(?:-dump)?)(?:[ \t]|$)"
)
_CLI_SPACED = (
    r"(?:^|[\s\"'(+-])(?:sshpass|(?:docker|podman|buildah|skopeo|oras|nerdctl|helm[ \t]+registry"
    r"|az|cf|oc)[ \t]+login)(?:[ \t]|$)"
)
_CLI_LINE_ENDS = ("\n", "\\n", "|", ";", "&")
_CLI_COMMANDS = ("mysql", "mariadb", "sshpass", "login")


def _cli_repl(match: re.Match[str]) -> str:
    start = match.start()
    line = match.string[max(0, start - 200) : start]
    if not any(command in line for command in _CLI_COMMANDS):
        return match[0]  # the common case, without a regex
    for end in _CLI_LINE_ENDS:
        line = line.rpartition(end)[2]
    command = _pattern(_CLI_SPACED if match["sp"] else _CLI_GLUED)
    if command.search(line) is None or _is_placeholder(match["val"]):
        return match[0]
    return match[0][: match.start("val") - start] + marker("cli-password")


_SLACK_WEBHOOK = (  # gitleaks: slack-webhook-url
    r"(?P<pre>hooks\.slack\.com/(?:services|workflows|triggers)/)(?P<val>[A-Za-z0-9+/_-]{20,}+)"
)
_DISCORD_WEBHOOK = (  # not in gitleaks; Discord's documented webhook URL shape
    r"(?P<pre>discord(?:app)?\.com/api/webhooks/[0-9]{5,30}/)(?P<val>[A-Za-z0-9_-]{20,}+)"
)

# Payment card numbers: 13-19 digits, contiguous or in 4-4-4-4(-3) / 4-6-5 / 4-6-4 groups
# separated by one kind of space or dash, first digit 2-6 (the ISO/IEC 7812 major industry
# identifiers of payment cards: Mastercard 2/5, Amex/Diners/JCB 3, Visa 4, Discover/UnionPay/
# Maestro 6), so 13-digit epoch milliseconds and 16-digit epoch microseconds never qualify.
# Not preceded by a word char, '.' or ',' (decimals), and checked with Luhn in Python.
_CARD = (
    r"[2-6](?<![\w.,][2-6])(?:[0-9]{12,18}(?![0-9])"
    r"|[0-9]{3}(?P<s>[ -])(?:[0-9]{4}(?P=s)[0-9]{4}(?P=s)[0-9]{1,4}(?:(?P=s)[0-9]{1,3})?"
    r"|[0-9]{6}(?P=s)[0-9]{4,5})(?!(?P=s)[0-9]{4}))(?![0-9A-Za-z_]|[.,][0-9])"
)


def _card_repl(match: re.Match[str]) -> str:
    text = match[0]
    if _luhn_ok(text.replace(" ", "").replace("-", "")):
        return marker("card-number")
    sep = match["s"]
    if sep and text.count(sep) == 4:
        # "4111 1111 1111 1111 12/29": the fifth group may be what follows the number
        head, _, tail = text.rpartition(sep)
        if _luhn_ok(head.replace(sep, "")):
            return marker("card-number") + sep + tail
    return text


_PEM_LABEL = r"[A-Z0-9 _-]{0,40}PRIVATE KEY(?: BLOCK)?"
_PRIVATE_KEY = (  # gitleaks: private-key; detect-secrets private_key.py
    r"-----BEGIN" + _PEM_LABEL + r"-----(?:(?:[^-]|-(?!----))*+-----END" + _PEM_LABEL + r"-----"
    # truncated block (no END): the header lines and base64 lines that follow
    r"|(?:(?:\r?\n|\\[rn]|[ \t])++(?:[A-Za-z][A-Za-z-]*:[^\r\n\\]*|[A-Za-z0-9+/=]+))*+)"
)

_STATIC_RULES: tuple[_Rule, ...] = (
    _Rule("private-key", _PRIVATE_KEY, 27, ("-----begin",), ("private key",)),
    _Rule("url-credentials", _URL, 6, ("://",), ("@",), _url_repl),
    _Rule("authorization", _AUTHZ, 15, ("authorization",), repl=_authz_repl, anchored=True),
    _Rule("authorization", _EXTRAHEADER, 13, ("extraheader",), repl=_extraheader_repl,
          anchored=True),
    _Rule("basic-auth", _CURL_USER, 6, ("-u", "--user"), (":",), _curl_repl, anchored=True),
    _Rule("aws-secret-key", _AWS_SAK, 50,
          ("aws_secret", "awssecret", "secret_access", "secretaccess"), ("key",),
          r"\g<pre>[REDACTED:aws-secret-key]", anchored=True),
    _Rule("azure-storage-key", _AZURE_KEY, 27, ("accountkey", "sharedaccesskey"),
          repl=_keep_pre("azure-storage-key"), anchored=True),
    _Rule("azure-sas", _AZURE_SAS, 5, ("sharedaccesssignature", "sig="),
          repl=_keep_pre("azure-sas"), anchored=True),
    _Rule("netrc-password", _NETRC, 20, ("machine", "default"), ("password",),
          repl=_keep_pre("netrc-password"), anchored=True),
    _Rule("cli-password", _DASH_P, 4, ("-p",), repl=_cli_repl, anchored=True,
          gate=_blank_dash_p),
    *(_Rule("twilio-key", _TWILIO.format(sid=sid), 34, (sid,), repl=_twilio_repl)
      for sid in ("SK", "AC")),
    _Rule("azure-devops-pat", _ADO_PAT, 84, ("JQQJ9",), starts=_ado_new_starts),
    _Rule("azure-devops-pat", _ADO_LEGACY, 52, None, repl=_ado_legacy_repl,
          starts=_ado_legacy_starts),
    _Rule("docker-config", _DOCKER_CONFIG, 20, ("eyjhdxrocyi6", "ewogicjhdxrocyi6",
          "ewogicagimf1dghz", "ewojimf1dghz"), gate=_may_hold_docker_config),
    _Rule("slack-webhook", _SLACK_WEBHOOK, 45, ("hooks.slack.com",),
          repl=r"\g<pre>[REDACTED:slack-webhook]"),
    _Rule("webhook-url", _DISCORD_WEBHOOK, 50, ("/api/webhooks/",),
          repl=r"\g<pre>[REDACTED:webhook-url]"),
    *(_Rule(kind, source, size, words) for kind, source, size, words in _TOKENS),
)  # fmt: skip

_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")
_CARD_RUN = "0" * 13
_ASCII_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_") | _DIGITS
_NOT_BEFORE_CARD = _ASCII_WORD | {".", ","}  # the pattern's lookbehind, ASCII part


def _card_may_start(text: str, index: int) -> bool:
    """Whether the card pattern may start at ``index`` (digit 2-6, no word char before it)."""
    return text[index] in "23456" and (index == 0 or text[index - 1] not in _NOT_BEFORE_CARD)


def _card_run(text: str, start: int, end: int) -> bool:
    """Whether the digit run ``text[start:end]`` (13 digits or more) may be a whole card."""
    if end - start > 19 or not _card_may_start(text, start):
        return False
    after = text[end : end + 2]
    if not after:
        return True
    return after[0] not in _ASCII_WORD and not (
        after[0] in ".," and len(after) == 2 and after[1] in _DIGITS
    )


def _may_hold_card(text: str) -> bool:
    """Cheap gate of the card rule: the pattern's shape checked in plain Python.

    Passes a digit run of 13-19 that starts with 2-6 and that no letter, digit,
    ``_``, ``.`` or ``,`` touches (as the pattern's lookarounds require), or a
    4-digit group starting with 2-6 after such a boundary and followed by a
    space or dash and 4 more digits. Hex object ids, UUIDs and RFC 3339
    timestamps fail it, so :mod:`re` (~5 ms to import) is not imported for
    them. It never rejects a text the pattern could match.
    """
    shape = text.translate(_DIGITS_TO_ZERO)
    start = shape.find(_CARD_RUN)
    while start != -1:
        end = start + len(_CARD_RUN)
        while end < len(shape) and shape[end] == "0":
            end += 1
        if _card_run(text, start, end):
            return True
        start = shape.find(_CARD_RUN, end)
    for group in ("0000 0000", "0000-0000"):
        start = shape.find(group)
        while start != -1:
            if _card_may_start(text, start):
                return True
            start = shape.find(group, start + 1)
    return False


_CARD_RULE = _Rule("card-number", _CARD, 13, None, repl=_card_repl, gate=_may_hold_card)
