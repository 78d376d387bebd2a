"""Reading the hash chain's HMAC key file.

Apart from :mod:`gitaudit.store.integrity` so that opening a store for reading
(``gitaudit log``) does not import the verifier.
"""

from __future__ import annotations

from pathlib import Path

from gitaudit.errors import ConfigError

__all__ = ["load_chain_key"]


def load_chain_key(path: str | Path | None) -> bytes | None:
    """Read the HMAC key of the hash chain from ``path`` (None: no key, plain SHA-256).

    Surrounding whitespace (a trailing newline) is not part of the key. Raises
    :class:`ConfigError` when the file cannot be read or holds no key.
    """
    if path is None:
        return None
    try:
        key = Path(path).read_bytes().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read chain key file {path}: {exc.strerror or exc}",
            "make the file readable by this user or unset GITAUDIT_CHAIN_KEY_FILE",
        ) from exc
    if not key:
        raise ConfigError(
            f"chain key file {path} is empty",
            "write a random secret into it, e.g. `head -c 32 /dev/urandom | base64 > FILE`",
        )
    return key
