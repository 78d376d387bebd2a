"""Secrets replaced by placeholders before sending, restored in the answer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitaudit.claude.placeholders import MaskError, SecretMask, secret_spans
from gitaudit.sanitize import Redactor

TOKEN = "ghp_" + "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2"
AWS = "AKIA" + "QWERTYUIOPASDFGH"
KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
       "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
       "QyNTUxOQAAACDx3v9Q2kz8Lw0PnE1rT5yU7iO9pA2sD4fG6hJ8kL0zXwAAAJgAAAAA\n"
       "-----END OPENSSH PRIVATE KEY-----")
TEXT = (f'token = "{TOKEN}"\naws_key_id = {AWS}\nkey = """{KEY}"""\n'
        f"clone https://deploy:{TOKEN[4:]}@git.example.com/app.git\nagain = {TOKEN}\n")


def test_every_secret_is_replaced_and_comes_back() -> None:
    mask = SecretMask(Redactor(), nonce="abc123")
    masked = mask.mask(TEXT)
    for secret in (TOKEN, AWS, KEY, TOKEN[4:]):
        assert secret not in masked
    assert Redactor().redact_text(masked) == masked  # nothing left for the sanitizer to find
    assert masked.count(mask.by_secret[TOKEN]) == 2  # the same secret, the same placeholder
    assert mask.unmask(masked) == TEXT
    assert mask.count == 4


def test_placeholders_are_shared_across_texts_of_one_request() -> None:
    mask = SecretMask(Redactor())
    first, second = mask.mask(f"a = {TOKEN}\n"), mask.mask(f"token: {TOKEN}\n")
    placeholder = mask.by_secret[TOKEN]
    assert placeholder in first and placeholder in second
    assert mask.unmask(f"merged: {placeholder}") == f"merged: {TOKEN}"


def test_unknown_placeholders_are_reported_not_guessed() -> None:
    mask = SecretMask(Redactor(), nonce="abc123")
    mask.mask(f"token = {TOKEN}\n")
    answer = "x = <gitaudit-secret-abc123-1>\ny = <gitaudit-secret-abc123-9>\n"
    assert mask.unknown(answer) == ["<gitaudit-secret-abc123-9>"]
    assert mask.unmask(answer) == f"x = {TOKEN}\ny = <gitaudit-secret-abc123-9>\n"


def test_text_without_secrets_is_unchanged() -> None:
    mask = SecretMask(Redactor())
    text = "def add(a, b):\n    return a + b\n"
    assert mask.mask(text) == text
    assert mask.count == 0


def test_spans_from_markers() -> None:
    assert secret_spans("a SECRET b", "a [REDACTED:x] b") == [(2, 8)]
    assert secret_spans("S1S2 rest", "[REDACTED:x][REDACTED:y] rest") == [(0, 4)]
    assert secret_spans("abc", "abc") == []
    assert secret_spans("abc", "xyz") is None
    assert secret_spans("a b", "a [REDACTED:x] c") is None


def test_a_text_that_cannot_be_masked_is_refused() -> None:
    class Stubborn(Redactor):
        def redact_text(self, text: str) -> str:
            return "[REDACTED:x]" + text  # finds a "secret" no span of the text explains

    with pytest.raises(MaskError, match="not sent"):
        SecretMask(Stubborn()).mask("anything")


@given(st.lists(st.sampled_from([TOKEN, AWS, "plain text ", "\n", "x = ", '"', "=", " "]),
                max_size=12))
def test_mask_then_unmask_is_the_identity(pieces: list[str]) -> None:
    text = "".join(pieces)
    mask = SecretMask(Redactor())
    masked = mask.mask(text)
    assert Redactor().redact_text(masked) == masked  # whatever the sanitizer finds is masked
    assert mask.unmask(masked) == text
