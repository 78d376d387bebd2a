"""Secrets out, placeholders in: what ``gitaudit resolve`` sends instead of a secret.

Before any text leaves the machine, every secret the sanitizer
(:mod:`gitaudit.sanitize`) finds in it is replaced by a placeholder such as
``<gitaudit-secret-3f9a1c-2>``; the same secret gets the same placeholder in
every text of one :class:`SecretMask` (base, ours and theirs agree), and the
model's answer gets the secrets back locally (:meth:`SecretMask.unmask`). The
resolved file then keeps its secrets although the request held none.

The sanitizer replaces secrets in place and does not report where they were,
so :func:`secret_spans` recovers them by aligning the redacted text with the
original: the text between two markers is copied from the original verbatim,
so each marker stands for the span of the original between those copies.
Masking repeats until the sanitizer finds nothing more in the masked text;
a text it cannot bring to that point raises :class:`MaskError` and is never
sent. The placeholder's ``<...>`` form is one the sanitizer's own rules take
for a placeholder (as they do ``<token>``), so ``password = "<gitaudit-secret-…>"``
is left alone and the loop ends.
"""

from __future__ import annotations

import re
import secrets as _random

from gitaudit.errors import GitauditError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from gitaudit.sanitize import Redactor

_MARKER = re.compile(r"\[REDACTED:[a-z0-9-]+\]")
_MAX_ROUNDS = 4


class MaskError(GitauditError):
    """A text's secrets could not all be replaced by placeholders: it must not be sent."""


def secret_spans(original: str, redacted: str) -> list[tuple[int, int]] | None:
    """``[(start, end)]`` of the spans of ``original`` that ``redacted`` shows as markers.

    None when ``redacted`` is not ``original`` with spans replaced by markers.
    Adjacent markers (no text between them) are one span.
    """
    literals = _MARKER.split(redacted)
    if len(literals) == 1:
        return [] if redacted == original else None
    merged = [literals[0]]
    for piece in literals[1:-1]:
        if piece:
            merged.append(piece)
    merged.append(literals[-1])
    head, tail = merged[0], merged[-1]
    if not original.startswith(head):
        return None
    spans: list[tuple[int, int]] = []
    position = len(head)
    for piece in merged[1:-1]:
        found = original.find(piece, position + 1)  # a secret is never empty
        if found < 0:
            return None
        spans.append((position, found))
        position = found + len(piece)
    end = len(original) - len(tail)
    if end <= position or not original.endswith(tail):
        return None
    spans.append((position, end))
    return spans


class SecretMask:
    """Placeholders for the secrets of the texts of one request, and the way back."""

    def __init__(self, redactor: Redactor, nonce: str | None = None) -> None:
        self.redactor = redactor
        self.nonce = nonce or _random.token_hex(3)
        self.by_secret: dict[str, str] = {}
        self.by_placeholder: dict[str, str] = {}
        self._pattern = re.compile(rf"<gitaudit-secret-{self.nonce}-\d+>")

    def _placeholder(self, secret: str) -> str:
        found = self.by_secret.get(secret)
        if found is None:
            found = f"<gitaudit-secret-{self.nonce}-{len(self.by_secret) + 1}>"
            self.by_secret[secret] = found
            self.by_placeholder[found] = secret
        return found

    def collides(self, text: str) -> bool:
        """True if ``text`` already holds something shaped like this mask's placeholders."""
        return f"<gitaudit-secret-{self.nonce}-" in text

    def mask(self, text: str) -> str:
        """``text`` with every secret replaced by its placeholder; raises :class:`MaskError`."""
        masked = text
        for _ in range(_MAX_ROUNDS):
            redacted = self.redactor.redact_text(masked)
            if redacted == masked:
                return masked
            spans = secret_spans(masked, redacted)
            if not spans:
                break
            pieces: list[str] = []
            position = 0
            for start, end in spans:
                pieces += [masked[position:start], self._placeholder(masked[start:end])]
                position = end
            pieces.append(masked[position:])
            masked = "".join(pieces)
        raise MaskError(
            "cannot replace every secret of the text by a placeholder, so it is not sent",
            "resolve this file by hand",
        )

    def unmask(self, text: str) -> str:
        """``text`` with this mask's placeholders replaced by the secrets they stand for."""
        if not self.by_placeholder:
            return text
        return self._pattern.sub(lambda m: self.by_placeholder.get(m.group(0), m.group(0)), text)

    def unknown(self, text: str) -> list[str]:
        """Placeholders of this mask's shape in ``text`` that stand for no secret."""
        return sorted({m for m in self._pattern.findall(text) if m not in self.by_placeholder})

    @property
    def count(self) -> int:
        """How many distinct secrets were replaced."""
        return len(self.by_secret)
