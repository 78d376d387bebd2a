"""`gitaudit keys generate`, `checkpoint` and `verify --checkpoints` as an operator runs them."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gitaudit.store import Store
from gitaudit.store.checkpoints import parse_signer_key, parse_verifier_key
from tests.cli.helpers import isolated_env
from tests.store.helpers import make_records


def gitaudit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitaudit", *args], env=env, capture_output=True, text=True
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with Store.open(url, chain_id="host-a") as store:
        store.append(make_records(6))
    return isolated_env(
        tmp_path, GITAUDIT_DATABASE_URL=url, GITAUDIT_CHECKPOINT_DIR=str(tmp_path / "cps")
    )


def test_keys_generate_writes_a_private_0600_and_a_public_key(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    result = gitaudit(env, "keys", "generate", "--out", str(tmp_path), "--name", "ci-host")
    assert result.returncode == 0, result.stderr
    private, public = tmp_path / "ci-host.key", tmp_path / "ci-host.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    signer = parse_signer_key(private.read_text())
    assert parse_verifier_key(public.read_text()) == signer.verifier()
    assert public.read_text().startswith("ci-host+")
    again = gitaudit(env, "keys", "generate", "--out", str(tmp_path), "--name", "ci-host")
    assert again.returncode == 2
    assert "refusing to overwrite" in again.stderr
    assert private.read_text() == signer.encode() + "\n"


def test_keys_generate_refuses_a_bad_name(tmp_path: Path) -> None:
    result = gitaudit(isolated_env(tmp_path), "keys", "generate", "--out", str(tmp_path),
                      "--name", "two words")  # fmt: skip
    assert result.returncode == 2
    assert "bad key name" in result.stderr


def test_checkpoint_then_verify_with_the_right_and_a_wrong_key(
    env: dict[str, str], tmp_path: Path
) -> None:
    gitaudit(env, "keys", "generate", "--out", str(tmp_path), "--name", "mine")
    gitaudit(env, "keys", "generate", "--out", str(tmp_path), "--name", "theirs")
    made = gitaudit(env, "checkpoint", "--sign", str(tmp_path / "mine.key"), "--format", "json")
    assert made.returncode == 0, made.stderr
    summary = json.loads(made.stdout)
    assert summary["signed_by"] == "mine"
    assert {"chain_id": "host-a", "seq": 6}.items() <= summary["chains"][0].items()
    assert Path(summary["file"]).parent == tmp_path / "cps"
    ok = gitaudit(env, "verify", "--checkpoints", str(tmp_path / "cps"),
                  "--key", str(tmp_path / "mine.pub"))  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "checkpoints: 1 read, signatures checked: ok" in ok.stdout
    wrong = gitaudit(env, "verify", "--checkpoints", str(tmp_path / "cps"),
                     "--key", str(tmp_path / "theirs.pub"), "--format", "json")  # fmt: skip
    assert wrong.returncode == 1
    report = json.loads(wrong.stdout)
    assert report["ok"] is False
    assert [f["kind"] for f in report["checkpoints"]["findings"]] == ["other-key"]
    assert "signed by mine" in wrong.stderr


def test_a_private_key_readable_by_others_is_warned_about(
    env: dict[str, str], tmp_path: Path
) -> None:
    gitaudit(env, "keys", "generate", "--out", str(tmp_path), "--name", "loose")
    (tmp_path / "loose.key").chmod(0o644)
    made = gitaudit(env, "checkpoint", "--sign", str(tmp_path / "loose.key"))
    assert made.returncode == 0, made.stderr
    assert "readable by others (mode 0o644)" in made.stderr


def test_unsigned_checkpoint_is_said_to_be_unsigned(env: dict[str, str], tmp_path: Path) -> None:
    made = gitaudit(env, "checkpoint")
    assert made.returncode == 0, made.stderr
    assert "UNSIGNED" in made.stdout
    result = gitaudit(env, "verify", "--checkpoints", str(tmp_path / "cps"))
    assert result.returncode == 0, result.stderr
    assert "signatures NOT checked" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("verify", "--key", "x.pub"), "--key needs --checkpoints"),
        (("verify", "--checkpoints", "/nonexistent/dir"), "no checkpoints at /nonexistent/dir"),
        (("checkpoint", "--sign", "/nonexistent/key"), "cannot read checkpoint key"),
    ],
)
def test_usage_errors_say_what_to_do(
    env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    result = gitaudit(env, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr


def test_public_key_given_as_signing_key_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    gitaudit(env, "keys", "generate", "--out", str(tmp_path), "--name", "k")
    result = gitaudit(env, "checkpoint", "--sign", str(tmp_path / "k.pub"))
    assert result.returncode == 2
    assert "not a signed-note private key" in result.stderr


def test_verify_with_jobs(env: dict[str, str]) -> None:
    result = gitaudit(env, "verify", "--jobs", "2", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["chains"][0]["records"] == 6
    refused = gitaudit(env, "verify", "--jobs", "0")
    assert refused.returncode == 2
    assert "--jobs" in refused.stderr
