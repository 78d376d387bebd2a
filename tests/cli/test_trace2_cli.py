"""`gitaudit trace2 enable|disable`: pure planning, then real `git config` files."""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

import pytest

from gitaudit.capture import context
from gitaudit.cli import trace2 as cli
from gitaudit.cli.app import run
from gitaudit.errors import GitauditError
from tests.gitfixtures import REAL_GIT

SOCKET = "/run/gitaudit/trace2.sock"
NOTHING: dict[str, str | None] = dict.fromkeys(cli.KEYS)


def test_enable_plan_sets_target_brief_and_lists() -> None:
    plan = cli.plan_enable(NOTHING, SOCKET, force=False)
    assert plan[cli.TARGET] == "af_unix:stream:/run/gitaudit/trace2.sock"
    assert plan[cli.BRIEF] == "true" and plan[cli.BRIEF_MARKER] == "true"
    assert str(plan[cli.ENV_VARS]).split(",") == list(context.TRACE2_ENV_VARS)
    assert plan[cli.CONFIG_PARAMS] == "user.name,user.email,remote.*.url"


def test_enable_keeps_the_users_items_and_is_idempotent() -> None:
    current = {**NOTHING, cli.ENV_VARS: "MY_VAR", cli.BRIEF: "false"}
    plan = cli.plan_enable(current, SOCKET, force=False)
    assert str(plan[cli.ENV_VARS]).startswith("MY_VAR,GITAUDIT_CORRELATION_ID,")
    assert cli.BRIEF not in plan and cli.BRIEF_MARKER not in plan  # the user's choice stays
    after = {**current, **plan}
    assert cli.plan_enable(after, SOCKET, force=False) == {}
    undone = {**after, **cli.plan_disable(after)}
    assert undone == current  # exactly what enable set, and nothing else
    assert cli.plan_disable(undone) == {}


def test_enable_refuses_a_foreign_target_unless_forced() -> None:
    current = {**NOTHING, cli.TARGET: "/var/log/git-trace2.json"}
    with pytest.raises(GitauditError, match="already set"):
        cli.plan_enable(current, SOCKET, force=False)
    assert str(cli.plan_enable(current, SOCKET, force=True)[cli.TARGET]).endswith(SOCKET)
    assert cli.TARGET not in cli.plan_disable(current)  # never removes someone else's target


def _config(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read_string(path.read_text().replace("\t", ""))
    return parser


@pytest.fixture
def git_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    files = {"global": tmp_path / "global.gitconfig", "system": tmp_path / "system.gitconfig"}
    files["global"].write_text("[user]\n\tname = Someone\n[trace2]\n\tenvVars = MINE\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(files["global"]))
    monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(files["system"]))
    monkeypatch.delenv("GIT_CONFIG_NOSYSTEM", raising=False)
    monkeypatch.setenv("GITAUDIT_GIT", REAL_GIT)
    monkeypatch.setenv("GITAUDIT_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("GITAUDIT_RUNTIME_DIR", str(tmp_path / "run"))
    return files


def _get(key: str, scope: str) -> str:
    done = subprocess.run([REAL_GIT, "config", f"--{scope}", "--get", key],
                          capture_output=True, check=False)
    return done.stdout.decode().strip()


@pytest.mark.parametrize("scope", ["global", "system"])
def test_enable_then_disable_with_real_git_config(
    scope: str, git_config: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = git_config[scope].read_text() if git_config[scope].exists() else ""
    assert run(["trace2", "enable", f"--{scope}"]) == 0
    assert "enabled" in capsys.readouterr().out
    assert _get("trace2.eventTarget", scope) == f"af_unix:stream:{tmp_path}/run/trace2.sock"
    assert _get("trace2.eventBrief", scope) == "true"
    assert "GITAUDIT_CORRELATION_ID" in _get("trace2.envVars", scope)
    assert _get("trace2.configParams", scope) == "user.name,user.email,remote.*.url"
    assert run(["trace2", "enable", f"--{scope}"]) == 0
    assert "already enabled" in capsys.readouterr().out
    assert run(["trace2", "disable", f"--{scope}"]) == 0
    assert run(["trace2", "disable", f"--{scope}"]) == 0
    assert "already disabled" in capsys.readouterr().out
    assert _config(git_config[scope]).sections() == _config_sections(before)
    assert _get("trace2.eventTarget", scope) == ""
    if scope == "global":
        assert _get("trace2.envVars", "global") == "MINE"  # the user's own item stays
        assert _get("user.name", "global") == "Someone"


def _config_sections(text: str) -> list[str]:
    parser = configparser.RawConfigParser()
    parser.read_string(text.replace("\t", ""))
    return [section for section in parser.sections() if parser.items(section)]


def test_custom_socket_and_scope_errors(git_config: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["trace2", "enable", "--global", "--socket", str(tmp_path / "t.sock")]) == 0
    assert _get("trace2.eventTarget", "global") == f"af_unix:stream:{tmp_path}/t.sock"
    capsys.readouterr()
    assert run(["trace2", "enable"]) == 2
    assert "exactly one of --system and --global" in capsys.readouterr().err
    assert run(["trace2", "enable", "--system", "--global"]) == 2


def test_system_config_that_cannot_be_written_says_what_to_do(
    git_config: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(tmp_path / "no-such-dir" / "gitconfig"))
    assert run(["trace2", "enable", "--system"]) == 2
    err = capsys.readouterr().err
    assert "cannot write the system git config" in err
    assert "sudo gitaudit trace2 enable --system" in err
