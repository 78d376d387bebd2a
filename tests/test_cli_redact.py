"""`gitaudit redact`: a real process reading real stdin, and the streaming logic in-process."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gitaudit.cli.redact import CHUNK_BYTES, redact_stream
from gitaudit.sanitize import redact
from tests.corpus import fakes

ROOT = Path(__file__).resolve().parent.parent
COMMAND = [sys.executable, "-c", "from gitaudit.cli.redact import redact_command; redact_command()"]
LINE = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    + "\n".join(LINE for _ in range(8))
    + "\n-----END OPENSSH PRIVATE KEY-----\n"
)


def run(data: bytes, **environ: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITAUDIT_")}
    env["GITAUDIT_CONFIG"] = str(ROOT / "no-such-config.toml")
    env["XDG_CONFIG_HOME"] = str(ROOT / "no-such-config-home")
    env.update(environ)
    return subprocess.run(COMMAND, input=data, capture_output=True, cwd=ROOT, env=env, check=False)


def expected(data: bytes) -> bytes:
    return redact(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def test_redacts_stdin_to_stdout() -> None:
    result = run(b"git clone https://bob:hunter2@example.com/r.git\npassword=hunter2\nok\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        b"git clone https://[REDACTED:url-credentials]@example.com/r.git\n"
        b"password=[REDACTED:assignment]\nok\n"
    )
    assert result.stderr == b""


def test_uses_the_sensitive_fields_setting() -> None:
    data = b"ssn=123-45-6789 password=hunter2\n"
    result = run(data, GITAUDIT_SENSITIVE_FIELDS="ssn")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"ssn=[REDACTED:assignment] password=hunter2\n"


def test_empty_input_and_missing_final_newline() -> None:
    assert run(b"").stdout == b""
    assert run(b"token=abc123").stdout == b"token=[REDACTED:assignment]"


def test_invalid_utf8_passes_through_byte_for_byte() -> None:
    data = b"caf\xe9 \xff\xfe password=s\xe9cret \xc3\x28 end\n\xed\xa0\x80 ok\n"
    result = run(data)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        b"caf\xe9 \xff\xfe password=[REDACTED:assignment] \xc3\x28 end\n\xed\xa0\x80 ok\n"
    )


def test_private_key_across_chunk_boundaries() -> None:
    # The key starts a few bytes before the first 64 KiB read ends, so its END arrives later.
    filler = b"x" * 99 + b"\n"
    head = filler * ((CHUNK_BYTES - 200) // len(filler))
    data = head + KEY.encode() + b"after\n" + head
    result = run(data)
    assert result.returncode == 0, result.stderr
    assert result.stdout == head + b"[REDACTED:private-key]\nafter\n" + head


def test_large_corpus_input_matches_in_process_redaction() -> None:
    data = (fakes.corpus_text() * 30).encode("utf-8", "surrogateescape")
    assert len(data) > 1_000_000
    result = run(data)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected(data)


def test_closed_pipe_is_quiet() -> None:
    command = " ".join(f"'{part}'" for part in COMMAND)
    script = f"yes 'password=hunter2' | head -c 5000000 | {command} 2>err.txt | head -n 1"
    result = subprocess.run(["bash", "-c", script], capture_output=True, cwd=ROOT, check=False)
    err = ROOT / "err.txt"
    try:
        assert result.stdout == b"password=[REDACTED:assignment]\n"
        assert b"Traceback" not in err.read_bytes()
    finally:
        err.unlink(missing_ok=True)


class Trickle(io.BytesIO):
    """A reader that hands out at most ``size`` bytes per read, like a slow pipe."""

    def __init__(self, data: bytes, size: int) -> None:
        super().__init__(data)
        self.size = size

    def read1(self, size: int | None = -1) -> bytes:
        return super().read1(min(self.size, size if size and size > 0 else self.size))


@pytest.mark.parametrize("size", [1, 7, 64, 1000, 65536])
def test_streaming_equals_whole_text(size: int) -> None:
    netrc = "machine api.heroku.com\n  login me@example.com\n  password Xy7!pq9Lm\n"
    data = (fakes.corpus_text() + KEY + "  - name: DB_PASSWORD\n    value: pw\n" + netrc).encode()
    out = io.BytesIO()
    redact_stream(Trickle(data, size), out)
    assert out.getvalue() == expected(data)
    assert b"Xy7!pq9Lm" not in out.getvalue()  # the .netrc entry arrived in one piece


def test_truncated_key_is_redacted_at_end_of_input() -> None:
    data = b"before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx4\nMIIEowIBAAKCAQEAx4\n"
    out = io.BytesIO()
    redact_stream(Trickle(data, 5), out)
    assert out.getvalue() == b"before\n[REDACTED:private-key]\n"
