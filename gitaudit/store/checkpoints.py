"""Signed checkpoints: a statement of every chain's head, in the C2SP signed-note format.

A checkpoint is what lets an auditor prove, from a copy kept outside the
database, that the store still holds every record it once held, unchanged. The
per-append ``checkpoints`` rows inside the store cannot do that: whoever can
rewrite the store can rewrite them too. A signed checkpoint copied elsewhere
(``GITAUDIT_CHECKPOINT_DIR``, the sinks) can only be forged with the Ed25519
private key, which is not in the store.

Format (https://c2sp.org/signed-note): the body is UTF-8 text lines, each ending
in a newline; then a blank line; then one signature line per signer::

    gitaudit/<store identity>
    time 2026-12-04T14:00:00Z
    prev <SHA-256 hex of the previous checkpoint's body, or ->
    chain <chain id, percent-encoded> <seq> <head hash>
    ...

    — <key name> <base64(4-byte key hash || Ed25519 signature of the body)>

The first line is the origin, as in C2SP tlog-checkpoint (the later lines are
ours: chains are hash chains, not Merkle trees). An unsigned checkpoint is the
body alone; it still pins each head outside the store but anyone can forge one.

Keys are the signed-note key encodings (as golang.org/x/mod/sumdb/note):
the verifier key ``<name>+<8 hex key hash>+<base64(0x01 || public key)>`` and the
signer key ``PRIVATE+KEY+<name>+<8 hex key hash>+<base64(0x01 || seed)>``, where
the key hash is the first 4 bytes of SHA-256(name || "\\n" || 0x01 || public key).

Everything here is pure: build and parse bodies, sign, verify. Reading and
writing the store lives in :mod:`gitaudit.store.checkpoint_store`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote, unquote

from gitaudit.errors import ConfigError, GitauditError

EM_DASH: Final = "\u2014"
ORIGIN_PREFIX: Final = "gitaudit/"
ALG_ED25519: Final = 0x01
NO_PREVIOUS: Final = "-"
_SIGNER_PREFIX: Final = "PRIVATE+KEY+"
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_CHAIN_SAFE: Final = "@:/+=,"


class CheckpointError(GitauditError):
    """A checkpoint or key cannot be parsed, or a signature does not verify.

    ``kind`` names what is wrong: ``corrupt`` (not a checkpoint), ``unsigned``,
    ``other-key`` (signed, but not by the expected key), ``bad-signature``.
    """

    exit_code = 1

    def __init__(self, kind: str, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.kind = kind


@dataclass(frozen=True)
class ChainHead:
    """One chain's head as a checkpoint states it."""

    chain_id: str
    seq: int
    hash: str


@dataclass(frozen=True)
class Checkpoint:
    """The statement a checkpoint body makes."""

    origin: str
    time: datetime
    prev: str | None
    heads: tuple[ChainHead, ...]

    def head(self, chain_id: str) -> ChainHead | None:
        """The head this checkpoint states for ``chain_id``, if it names it."""
        return next((head for head in self.heads if head.chain_id == chain_id), None)


# --- bodies ----------------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with a Z, to the second (as checkpoints state time)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_body(checkpoint: Checkpoint) -> str:
    """The body text of ``checkpoint`` (chains sorted by id), each line ending in a newline."""
    if not checkpoint.origin.startswith(ORIGIN_PREFIX) or _bad_line(checkpoint.origin):
        raise ValueError(f"bad checkpoint origin {checkpoint.origin!r}")
    lines = [
        checkpoint.origin,
        f"time {format_time(checkpoint.time)}",
        f"prev {checkpoint.prev or NO_PREVIOUS}",
    ]
    for head in sorted(checkpoint.heads, key=lambda item: item.chain_id):
        lines.append(f"chain {quote(head.chain_id, safe=_CHAIN_SAFE)} {head.seq} {head.hash}")
    return "".join(line + "\n" for line in lines)


def _bad_line(text: str) -> bool:
    return not text or any(ch in text for ch in "\n\r") or text != text.strip()


def body_hash(body: str) -> str:
    """SHA-256 hex of a checkpoint body: what the next checkpoint's ``prev`` names."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def parse_body(body: str) -> Checkpoint:
    """The statement in a checkpoint body; CheckpointError("corrupt") if it is not one."""
    if not body.endswith("\n"):
        raise _corrupt("the checkpoint text does not end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3 or not lines[0].startswith(ORIGIN_PREFIX):
        raise _corrupt(f"the first line is not a gitaudit origin ({ORIGIN_PREFIX}...)")
    origin, time_line, prev_line, *chain_lines = lines
    time_word, _, time_text = time_line.partition(" ")
    prev_word, _, prev = prev_line.partition(" ")
    if time_word != "time" or prev_word != "prev":
        raise _corrupt("the second and third lines must be `time ...` and `prev ...`")
    try:
        moment = datetime.strptime(time_text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise _corrupt(f"bad time {time_text!r}") from None
    if prev != NO_PREVIOUS and not _HEX64.fullmatch(prev):
        raise _corrupt(f"bad previous checkpoint hash {prev!r}")
    heads = []
    for line in chain_lines:
        parts = line.split(" ")
        if len(parts) != 4 or parts[0] != "chain" or not parts[2].isdigit():
            raise _corrupt(f"bad chain line {line!r}")
        if not _HEX64.fullmatch(parts[3]):
            raise _corrupt(f"bad head hash in {line!r}")
        heads.append(ChainHead(unquote(parts[1]), int(parts[2]), parts[3]))
    prev_hash = None if prev == NO_PREVIOUS else prev
    return Checkpoint(origin, moment, prev_hash, tuple(heads))


def _corrupt(why: str) -> CheckpointError:
    return CheckpointError("corrupt", f"not a gitaudit checkpoint: {why}")


# --- keys ------------------------------------------------------------------------------


def key_hash(name: str, public: bytes) -> int:
    """The signed-note key hash: first 4 bytes of SHA-256(name || LF || 0x01 || key)."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public)
    return int.from_bytes(digest.digest()[:4], "big")


def _check_name(name: str) -> str:
    if not name or any(ch.isspace() or ch == "+" for ch in name):
        raise ConfigError(
            f"bad key name {name!r}", "a key name is non-empty, without spaces or '+'"
        )
    return name


@dataclass(frozen=True)
class VerifierKey:
    """A public key as signed-note verifiers know it."""

    name: str
    hash: int
    public: bytes

    def encode(self) -> str:
        """``<name>+<hash>+<base64(0x01 || public key)>``."""
        blob = base64.b64encode(bytes([ALG_ED25519]) + self.public).decode("ascii")
        return f"{self.name}+{self.hash:08x}+{blob}"


@dataclass(frozen=True)
class SignerKey:
    """A private key (Ed25519 seed) with its name."""

    name: str
    hash: int
    seed: bytes

    def encode(self) -> str:
        """``PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>``."""
        blob = base64.b64encode(bytes([ALG_ED25519]) + self.seed).decode("ascii")
        return f"{_SIGNER_PREFIX}{self.name}+{self.hash:08x}+{blob}"

    def verifier(self) -> VerifierKey:
        """The matching public key."""
        return VerifierKey(self.name, self.hash, _public_of(self.seed))


def _public_of(seed: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    private = Ed25519PrivateKey.from_private_bytes(seed)
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def generate_key(name: str) -> SignerKey:
    """A fresh Ed25519 key pair named ``name``."""
    import os

    seed = os.urandom(32)
    return SignerKey(_check_name(name), key_hash(name, _public_of(seed)), seed)


def _split_key(text: str, what: str) -> tuple[str, int, bytes]:
    parts = text.strip().split("+", 2)
    hint = f"give the {what} file `gitaudit keys generate` wrote"
    if len(parts) != 3:
        raise ConfigError(f"not a signed-note {what}: expected NAME+HASH+KEY", hint)
    name, hash_text, blob = parts
    try:
        hash_value = int(hash_text, 16)
        raw = base64.b64decode(blob, validate=True)
    except (ValueError, binascii.Error):
        raise ConfigError(f"not a signed-note {what}: bad hash or base64", hint) from None
    if len(hash_text) != 8 or len(raw) != 33 or raw[0] != ALG_ED25519:
        raise ConfigError(f"not an Ed25519 signed-note {what}", hint)
    return _check_name(name), hash_value, raw[1:]


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse ``<name>+<hash>+<base64>``; ConfigError if it is not one (or its hash is wrong)."""
    if text.strip().startswith(_SIGNER_PREFIX):
        raise ConfigError(
            "that is a private (signer) key, not a public key",
            "give the .pub file; keep the private key only where checkpoints are signed",
        )
    name, hash_value, public = _split_key(text, "public key")
    if key_hash(name, public) != hash_value:
        raise ConfigError(f"public key {name}: its key hash does not match the key")
    return VerifierKey(name, hash_value, public)


def parse_signer_key(text: str) -> SignerKey:
    """Parse ``PRIVATE+KEY+<name>+<hash>+<base64>``; ConfigError if it is not one."""
    stripped = text.strip()
    if not stripped.startswith(_SIGNER_PREFIX):
        raise ConfigError(
            "not a signed-note private key (PRIVATE+KEY+...)",
            "give the private key file `gitaudit keys generate` wrote, not the .pub file",
        )
    name, hash_value, seed = _split_key(stripped[len(_SIGNER_PREFIX) :], "private key")
    key = SignerKey(name, hash_value, seed)
    if key_hash(name, key.verifier().public) != hash_value:
        raise ConfigError(f"private key {name}: its key hash does not match the key")
    return key


# --- notes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """One signature line of a note."""

    name: str
    hash: int
    signature: bytes


def sign(body: str, key: SignerKey) -> str:
    """The signed note: ``body``, a blank line, and the signature line of ``key``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not body.endswith("\n"):
        raise ValueError("a note body ends with a newline")
    signature = Ed25519PrivateKey.from_private_bytes(key.seed).sign(body.encode("utf-8"))
    blob = base64.b64encode(key.hash.to_bytes(4, "big") + signature).decode("ascii")
    return f"{body}\n{EM_DASH} {key.name} {blob}\n"


def split_note(note: str) -> tuple[str, list[Signature]]:
    """The body and signature lines of a note (an unsigned checkpoint has none)."""
    body, sep, block = note.rpartition("\n\n")
    if not sep or not block.startswith(EM_DASH):
        return note, []
    body += "\n"
    signatures = []
    for line in block.split("\n"):
        if not line:
            continue
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != EM_DASH:
            raise _corrupt(f"bad signature line {line!r}")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except (ValueError, binascii.Error):
            raise _corrupt(f"bad signature base64 in {line!r}") from None
        if len(raw) < 5:
            raise _corrupt(f"signature too short in {line!r}")
        signatures.append(Signature(parts[1], int.from_bytes(raw[:4], "big"), raw[4:]))
    if not block.endswith("\n"):
        raise _corrupt("the note does not end with a newline")
    return body, signatures


def open_note(note: str, key: VerifierKey | None) -> str:
    """The body of ``note`` once its signature by ``key`` verifies (``key`` None: no check).

    CheckpointError ``unsigned``, ``other-key`` or ``bad-signature`` otherwise.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    body, signatures = split_note(note)
    if key is None:
        return body
    if not signatures:
        raise CheckpointError(
            "unsigned", f"the checkpoint is not signed (expected a signature by {key.name})"
        )
    mine = [sig for sig in signatures if (sig.name, sig.hash) == (key.name, key.hash)]
    if not mine:
        others = ", ".join(f"{sig.name}+{sig.hash:08x}" for sig in signatures)
        raise CheckpointError(
            "other-key",
            f"the checkpoint is signed by {others}, not by {key.name}+{key.hash:08x}",
            "check that --key is the public key of GITAUDIT_CHECKPOINT_KEY; a checkpoint "
            "signed by a key you do not trust proves nothing",
        )
    public = Ed25519PublicKey.from_public_bytes(key.public)
    for sig in mine:
        try:
            public.verify(sig.signature, body.encode("utf-8"))
        except InvalidSignature:
            continue
        return body
    raise CheckpointError(
        "bad-signature",
        f"the signature by {key.name} does not match the checkpoint text: it was altered",
    )
