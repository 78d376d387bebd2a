"""Labelled redaction corpus: templates in JSONL, fake secrets generated at load time.

The corpus files hold templates such as ``token=%%ghp%%``; every ``%%name%%``
(or ``%%name#2%%`` for a second, different value of the same shape) is replaced
by a deterministic fake built from ``random.Random(<file>:<line>:<name>)``. No
realistic secret is stored in the repository, so secret scanners stay quiet,
and every run sees the same values.

- ``positives.jsonl``: ``{"text", "kind", "secret" (str or list), "expect"?}``:
  each secret must be gone from the redacted text, ``[REDACTED:<kind>]`` must be
  in it, and if ``expect`` is given the output must equal it.
- ``negatives.jsonl``: ``{"text", "why"}``: the text must come back unchanged.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

ALNUM = string.ascii_letters + string.digits
UPPER = string.ascii_uppercase
LOWER = string.ascii_lowercase
DIGITS = string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
PASSWORD_CHARS = ALNUM + "!%*_-.+~^"


def _s(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def _password(rng: random.Random, length: int | None = None) -> str:
    """Letter first, at least one digit, no character that ends a value or starts a variable."""
    size = length or rng.randint(10, 20)
    middle = _s(rng, PASSWORD_CHARS, size - 2)
    return rng.choice(string.ascii_letters) + middle + rng.choice(DIGITS)


def _luhn_digit(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str((10 - total % 10) % 10)


def _card(rng: random.Random, prefix: str, length: int, valid: bool = True) -> str:
    body = prefix + _s(rng, DIGITS, length - len(prefix) - 1)
    check = _luhn_digit(body)
    if not valid:
        check = str((int(check) + rng.randint(1, 9)) % 10)
    return body + check


def _group(number: str, sizes: tuple[int, ...], sep: str) -> str:
    parts, start = [], 0
    for size in sizes:
        parts.append(number[start : start + size])
        start += size
    return sep.join(parts)


def _b64url_json(obj: dict[str, Any]) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _jwt(rng: random.Random) -> str:
    header = _b64url_json({"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"})
    payload = _b64url_json(
        {"sub": _s(rng, DIGITS, 8), "name": _s(rng, LOWER, 6), "iat": rng.randint(10**9, 2 * 10**9)}
    )
    return f"{header}.{payload}.{_s(rng, B64URL, 43)}"


def _pem_body(rng: random.Random, sep: str = "\n") -> str:
    lines = [_s(rng, B64, 64) for _ in range(rng.randint(5, 12))]
    lines.append(_s(rng, B64, rng.randint(8, 60)) + "==")
    return sep.join(lines)


def _uuid(rng: random.Random, version: int = 4) -> str:
    raw = _s(rng, HEX, 32)
    raw = raw[:12] + str(version) + raw[13:16] + rng.choice("89ab") + raw[17:]
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def _sid(rng: random.Random) -> str:
    """A trace2 session id: <UTC time>-H<hostname hash>-P<pid>."""
    when = f"2026{rng.randint(1, 12):02}{rng.randint(1, 28):02}T{rng.randint(0, 23):02}"
    when += f"{rng.randint(0, 59):02}{rng.randint(0, 59):02}.{_s(rng, DIGITS, 6)}Z"
    return f"{when}-H{_s(rng, HEX, 8)}-P{_s(rng, HEX, 8)}"


Gen = Callable[[random.Random], str]

GENERATORS: dict[str, Gen] = {
    # GitHub
    "ghp": lambda r: "ghp_" + _s(r, ALNUM, 36),
    "gho": lambda r: "gho_" + _s(r, ALNUM, 36),
    "ghu": lambda r: "ghu_" + _s(r, ALNUM, 36),
    "ghs": lambda r: "ghs_" + _s(r, ALNUM, 36),
    "ghr": lambda r: "ghr_" + _s(r, ALNUM, 36),
    "github_pat": lambda r: "github_pat_" + _s(r, ALNUM, 22) + "_" + _s(r, ALNUM, 59),
    # GitLab
    "glpat": lambda r: "glpat-" + _s(r, ALNUM + "_-", 20),
    "glpat_routable": lambda r: "glpat-" + _s(r, ALNUM, 36) + "." + _s(r, LOWER + DIGITS, 9),
    "gldt": lambda r: "gldt-" + _s(r, ALNUM + "_-", 20),
    "glrt": lambda r: "glrt-" + _s(r, ALNUM + "_-", 20),
    "glrt_routable": lambda r: "glrt-t1_" + _s(r, ALNUM, 27) + "." + _s(r, LOWER + DIGITS, 9),
    "glptt": lambda r: "glptt-" + _s(r, HEX, 40),
    "glcbt": lambda r: "glcbt-" + _s(r, ALNUM, 2) + "_" + _s(r, ALNUM + "_-", 20),
    "glft": lambda r: "glft-" + _s(r, ALNUM + "_-", 20),
    "glimt": lambda r: "glimt-" + _s(r, ALNUM + "_-", 25),
    "glsoat": lambda r: "glsoat-" + _s(r, ALNUM + "_-", 20),
    "glagent": lambda r: "glagent-" + _s(r, ALNUM + "_-", 50),
    "gloas": lambda r: "gloas-" + _s(r, ALNUM + "_-", 64),
    "gr1348941": lambda r: "GR1348941" + _s(r, ALNUM + "_-", 20),
    # AWS
    "akia": lambda r: "AKIA" + _s(r, UPPER + "234567", 16),
    "asia": lambda r: "ASIA" + _s(r, UPPER + "234567", 16),
    "abia": lambda r: "ABIA" + _s(r, UPPER + "234567", 16),
    "acca": lambda r: "ACCA" + _s(r, UPPER + "234567", 16),
    "awssecret": lambda r: _s(r, ALNUM + "/+", 40),
    # Slack
    "xoxb": lambda r: f"xoxb-{_s(r, DIGITS, 12)}-{_s(r, DIGITS, 13)}-{_s(r, ALNUM, 24)}",
    "xoxp": lambda r: f"xoxp-{_s(r, DIGITS, 12)}-{_s(r, DIGITS, 12)}-{_s(r, DIGITS, 13)}-"
    + _s(r, HEX, 32),
    "xoxa": lambda r: "xoxa-2-" + _s(r, ALNUM, 40),
    "xoxe": lambda r: "xoxe.xoxp-1-" + _s(r, UPPER + DIGITS, 163),
    "xapp": lambda r: f"xapp-1-A{_s(r, UPPER + DIGITS, 10)}-{_s(r, DIGITS, 13)}-"
    + _s(r, HEX, 64),
    "slackhook": lambda r: f"T{_s(r, UPPER + DIGITS, 8)}/B{_s(r, UPPER + DIGITS, 10)}/"
    + _s(r, ALNUM, 24),
    "discordhook": lambda r: _s(r, DIGITS, 18) + "/" + _s(r, ALNUM + "_-", 68),
    # AI providers
    "anthropic": lambda r: "sk-ant-api03-" + _s(r, ALNUM + "_-", 93) + "AA",
    "anthropic_admin": lambda r: "sk-ant-admin01-" + _s(r, ALNUM + "_-", 93) + "AA",
    "openai_proj": lambda r: "sk-proj-" + _s(r, ALNUM + "_-", 74) + "T3BlbkFJ"
    + _s(r, ALNUM + "_-", 74),
    "openai_svc": lambda r: "sk-svcacct-" + _s(r, ALNUM + "_-", 58) + "T3BlbkFJ"
    + _s(r, ALNUM + "_-", 58),
    "openai_legacy": lambda r: "sk-" + _s(r, ALNUM, 20) + "T3BlbkFJ" + _s(r, ALNUM, 20),
    # payments, Google, registries, messaging
    "sk_live": lambda r: "sk_live_" + _s(r, ALNUM, 24),
    "sk_test": lambda r: "sk_test_" + _s(r, ALNUM, 24),
    "rk_live": lambda r: "rk_live_" + _s(r, ALNUM, 24),
    "whsec": lambda r: "whsec_" + _s(r, ALNUM, 32),
    "aiza": lambda r: "AIza" + _s(r, ALNUM + "_-", 35),
    "gocspx": lambda r: "GOCSPX-" + _s(r, ALNUM + "_-", 28),
    "ya29": lambda r: "ya29." + _s(r, ALNUM + "_-", 120),
    "npm": lambda r: "npm_" + _s(r, ALNUM, 36),
    "pypi": lambda r: "pypi-AgEIcHlwaS5vcmc" + _s(r, ALNUM + "_-", 70),
    "twilio_sk": lambda r: "SK" + _s(r, HEX, 32),
    "twilio_ac": lambda r: "AC" + _s(r, HEX, 32),
    "sendgrid": lambda r: "SG." + _s(r, ALNUM + "_-", 22) + "." + _s(r, ALNUM + "_-", 43),
    "azurekey": lambda r: _s(r, ALNUM + "+/", 86) + "==",
    "sassig": lambda r: _s(r, ALNUM, 20) + "%2B" + _s(r, ALNUM, 20) + "%3D",
    "jwt": _jwt,
    # other gitleaks-listed providers
    "dop": lambda r: "dop_v1_" + _s(r, HEX, 64),
    "hf": lambda r: "hf_" + _s(r, string.ascii_letters, 34),
    "shpat": lambda r: "shpat_" + _s(r, HEX, 32),
    "hvs": lambda r: "hvs." + _s(r, ALNUM + "_-", 95),
    "dapi": lambda r: "dapi" + _s(r, HEX, 32),
    "age": lambda r: "AGE-SECRET-KEY-1" + _s(r, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58),
    "doppler": lambda r: "dp.pt." + _s(r, ALNUM, 43),
    "atlassian": lambda r: "ATATT3" + _s(r, ALNUM + "_-", 186),
    "glsa": lambda r: "glsa_" + _s(r, ALNUM, 32) + "_" + _s(r, HEX, 8),
    "pmak": lambda r: "PMAK-" + _s(r, HEX, 24) + "-" + _s(r, HEX, 34),
    "pul": lambda r: "pul-" + _s(r, HEX, 40),
    "rubygems": lambda r: "rubygems_" + _s(r, HEX, 48),
    "sntryu": lambda r: "sntryu_" + _s(r, HEX, 64),
    "linapi": lambda r: "lin_api_" + _s(r, ALNUM, 40),
    "hrku": lambda r: "HRKU-AA" + _s(r, ALNUM + "_-", 58),
    "pplx": lambda r: "pplx-" + _s(r, ALNUM, 48),
    "dt0c01": lambda r: "dt0c01." + _s(r, UPPER + DIGITS, 24) + "." + _s(r, UPPER + DIGITS, 64),
    "pscale": lambda r: "pscale_tkn_" + _s(r, ALNUM + "_", 43),
    "pnu": lambda r: "pnu_" + _s(r, ALNUM, 36),
    "xkeysib": lambda r: "xkeysib-" + _s(r, HEX, 64) + "-" + _s(r, ALNUM, 16),
    "sq0atp": lambda r: "sq0atp-" + _s(r, ALNUM + "_-", 22),
    "dckr": lambda r: "dckr_pat_" + _s(r, ALNUM + "_-", 27),
    "akcp": lambda r: "AKCp" + _s(r, ALNUM, 69),
    # generic secrets
    "pw": _password,
    "pwat": lambda r: _password(r, 8) + "@" + _password(r, 8),
    "pwsp": lambda r: _password(r, 8) + " " + _password(r, 8),
    "pwpct": lambda r: _password(r, 8).replace("%", "x") + "%21%40" + _s(r, ALNUM, 6),
    "opaque": lambda r: _s(r, ALNUM, 32),
    "hex32": lambda r: _s(r, HEX, 32),
    "hex64": lambda r: _s(r, HEX, 64),
    "b64cred": lambda r: base64.b64encode(
        f"{_s(r, LOWER, 6)}:{_password(r)}".encode()
    ).decode(),
    "b64long": lambda r: _s(r, B64, 120) + "=",
    "b64body": _pem_body,
    "b64body_esc": lambda r: _pem_body(r, "\\n"),
    "b64body_crlf": lambda r: _pem_body(r, "\r\n"),
    # card numbers (Luhn-valid)
    "visa16": lambda r: _card(r, "4", 16),
    "visa13": lambda r: _card(r, "4", 13),
    "visa19": lambda r: _card(r, "4", 19),
    "mc16": lambda r: _card(r, str(r.randint(51, 55)), 16),
    "mc2": lambda r: _card(r, str(r.randint(2221, 2720)), 16),
    "amex15": lambda r: _card(r, r.choice(["34", "37"]), 15),
    "discover16": lambda r: _card(r, "6011", 16),
    "jcb16": lambda r: _card(r, "35" + str(r.randint(28, 89)), 16),
    "unionpay19": lambda r: _card(r, "62", 19),
    "diners14": lambda r: _card(r, "36", 14),
    "visa16_sp": lambda r: _group(_card(r, "4", 16), (4, 4, 4, 4), " "),
    "visa16_dash": lambda r: _group(_card(r, "4", 16), (4, 4, 4, 4), "-"),
    "mc16_sp": lambda r: _group(_card(r, "5" + str(r.randint(1, 5)), 16), (4, 4, 4, 4), " "),
    "visa19_sp": lambda r: _group(_card(r, "4", 19), (4, 4, 4, 4, 3), " "),
    "amex15_sp": lambda r: _group(_card(r, "37", 15), (4, 6, 5), " "),
    "amex15_dash": lambda r: _group(_card(r, "34", 15), (4, 6, 5), "-"),
    "diners14_sp": lambda r: _group(_card(r, "36", 14), (4, 6, 4), " "),
    # things that must never be touched
    "sha7": lambda r: _s(r, HEX, 7),
    "sha12": lambda r: _s(r, HEX, 12),
    "sha40": lambda r: _s(r, HEX, 40),
    "sha64": lambda r: _s(r, HEX, 64),
    "uuid": _uuid,
    "uuid7": lambda r: _uuid(r, 7),
    "sid": _sid,
    "epoch": lambda r: str(r.randint(1_600_000_000, 1_999_999_999)),
    "epochms": lambda r: str(r.randint(1_600_000_000_000, 1_999_999_999_999)),
    "epochus": lambda r: str(r.randint(1_600_000_000_000_000, 1_999_999_999_999_999)),
    "luhnbad16": lambda r: _card(r, "4", 16, valid=False),
    "luhnbad13": lambda r: _card(r, "5", 13, valid=False),
    "luhnbad19": lambda r: _card(r, "6", 19, valid=False),
    "luhnbad16_sp": lambda r: _group(_card(r, "4", 16, valid=False), (4, 4, 4, 4), " "),
    "luhnbad15_dash": lambda r: _group(_card(r, "37", 15, valid=False), (4, 6, 5), "-"),
}

_TEMPLATE = re.compile(r"%%([a-z0-9_]+)(#[0-9]+)?%%")


def expand(value: Any, where: str, cache: dict[str, str]) -> Any:
    """Replace every %%name%% in ``value`` (str, or list of str) by its fake."""
    if isinstance(value, list):
        return [expand(item, where, cache) for item in value]
    if not isinstance(value, str):
        return value

    def fake(match: re.Match[str]) -> str:
        token = match[0]
        if token not in cache:
            cache[token] = GENERATORS[match[1]](random.Random(f"{where}:{token}"))
        return cache[token]

    return _TEMPLATE.sub(fake, value)


def load(name: str) -> list[dict[str, Any]]:
    """Records of ``name`` (``positives`` or ``negatives``) with every template expanded."""
    records = []
    path = HERE / f"{name}.jsonl"
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        cache: dict[str, str] = {}
        expanded = {key: expand(value, f"{name}:{number}", cache) for key, value in record.items()}
        expanded["line"] = number
        records.append(expanded)
    return records


def corpus_text() -> str:
    """Every positive and negative text, one per line: the benchmark's input."""
    texts = [record["text"] for record in load("positives")]
    texts += [record["text"] for record in load("negatives")]
    return "\n".join(texts) + "\n"
