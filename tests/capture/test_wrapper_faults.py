"""Whatever goes wrong inside gitaudit, git's output and exit code stay git's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gitaudit import events
from gitaudit.capture import wrapper
from gitaudit.errors import GitNotFoundError
from tests.gitfixtures import PROJECT_ROOT, REAL_GIT, GitSandbox


def same_as_plain(sandbox: GitSandbox, repo: Path, *args: str, **kwargs: object) -> bytes:
    """Run plainly and wrapped; assert the same stdout and exit code; return the extra stderr."""
    plain = sandbox.git(*args, cwd=repo, check=False)
    wrapped = sandbox.audited(*args, cwd=repo, **kwargs)  # type: ignore[arg-type]
    assert (wrapped.returncode, wrapped.stdout) == (plain.returncode, plain.stdout)
    assert wrapped.stderr.startswith(plain.stderr)
    return wrapped.stderr[len(plain.stderr):]


def test_unwritable_spool_goes_to_the_emergency_spool(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    blocked = sandbox.root / "blocked"
    if os.geteuid() == 0:
        blocked.write_text("a file where the spool directory should be")  # root ignores modes
        spool = blocked / "spool"
    else:
        blocked.mkdir(mode=0o500)
        spool = blocked / "spool"
    extra = same_as_plain(sandbox, repo, "status", env={"GITAUDIT_SPOOL_DIR": str(spool)})
    lines = extra.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("gitaudit: ")
    assert "emergency spool" in lines[0]
    emergency = sandbox.tmp / f"gitaudit-{os.getuid()}" / "spool"
    (event,) = sandbox.events(emergency)
    events.validate_event(event)
    assert event["operation"] == "git.other"
    assert event["details"]["subcommand"] == "status"


def test_invalid_setting_warns_once_and_still_records(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    extra = same_as_plain(sandbox, repo, "status", env={"GITAUDIT_ERROR_MAX_CHARS": "lots"})
    lines = extra.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("gitaudit: invalid value 'lots' for error_max_chars")
    assert "GITAUDIT_ERROR_MAX_CHARS" in lines[0]
    event = sandbox.last_event()  # the valid GITAUDIT_SPOOL_DIR was still honoured
    events.validate_event(event)


def test_broken_config_file_warns_and_records(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    config = sandbox.root / "broken.toml"
    config.write_text("this is [not toml")
    extra = same_as_plain(sandbox, repo, "rev-parse", "HEAD", env={"GITAUDIT_CONFIG": str(config)})
    (line,) = extra.decode().splitlines()
    assert line.startswith("gitaudit: cannot read config file")
    assert sandbox.last_event()["details"]["subcommand"] == "rev-parse"


def test_disabled_records_nothing(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    extra = same_as_plain(sandbox, repo, "log", "--oneline", env={"GITAUDIT_ENABLED": "false"})
    assert extra == b""
    assert sandbox.events() == []


def test_git_not_on_path(sandbox: GitSandbox) -> None:
    empty = sandbox.root / "empty-bin"
    empty.mkdir()
    python_dir = str(Path(sys.executable).parent)
    result = sandbox.audited("status", env={"PATH": f"{empty}:{python_dir}"})
    if Path(python_dir, "git").exists():  # pragma: no cover - a venv never ships git
        pytest.fail("the interpreter's directory contains a git; cannot test a missing git")
    assert result.returncode == 127
    assert result.stdout == b""
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith("gitaudit: cannot find the real git on PATH")
    assert "GITAUDIT_GIT" in line
    assert sandbox.events() == []


def test_gitaudit_git_setting_is_used_and_checked(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    fine = sandbox.audited("status", cwd=repo, env={"GITAUDIT_GIT": REAL_GIT, "PATH": "/nowhere"})
    assert fine.returncode == 0, fine.stderr
    missing = sandbox.audited("status", cwd=repo, env={"GITAUDIT_GIT": "/no/such/git"})
    assert missing.returncode == 127
    assert missing.stderr.startswith(b"gitaudit: GITAUDIT_GIT=/no/such/git is not an executable")


def test_find_real_git_skips_shims_and_the_running_script(tmp_path: Path) -> None:
    shim_dir, fake_dir, real_dir = (tmp_path / name for name in ("shim", "fake", "real"))
    for folder in (shim_dir, fake_dir, real_dir):
        folder.mkdir()
    (shim_dir / "git").write_text("#!/bin/sh\n# gitaudit-shim\n")
    (fake_dir / "git").write_text("#!/bin/sh\necho not a shim but running\n")
    (real_dir / "git").symlink_to(REAL_GIT)
    for path in (shim_dir / "git", fake_dir / "git"):
        path.chmod(0o755)
    environ = {"PATH": f"{shim_dir}:{fake_dir}:{real_dir}"}
    assert wrapper.find_real_git(None, environ, None) == str(fake_dir / "git")
    assert wrapper.find_real_git(None, environ, str(fake_dir / "git")) == str(real_dir / "git")
    with pytest.raises(GitNotFoundError) as shim_setting:
        wrapper.find_real_git(str(shim_dir / "git"), environ, None)
    assert "is a gitaudit shim" in str(shim_setting.value)
    with pytest.raises(GitNotFoundError):
        wrapper.find_real_git(None, {"PATH": str(shim_dir)}, None)


def test_settings_tolerate_one_bad_value() -> None:
    settings, problem = wrapper.load_settings(
        {"GITAUDIT_SPOOL_DIR": "/tmp/x-spool", "GITAUDIT_ENABLED": "perhaps",
         "GITAUDIT_CONFIG": "/nonexistent.toml"}
    )
    assert problem is not None
    assert "enabled" in problem
    assert settings.enabled is True
    assert str(settings.spool_dir) == "/tmp/x-spool"


def test_tracing_respects_the_users_own_trace2(tmp_path: Path) -> None:
    config = tmp_path / "gitconfig"
    config.write_text("[trace2]\n\teventTarget = /var/log/git-trace\n")
    own = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(config)}
    tracing = wrapper.setup_tracing(own, want_packets=False)
    assert tracing.event_fd is None
    assert tracing.env == {}
    assert tracing.link_sid is False  # their sids are left as git makes them
    user_env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_TRACE2_EVENT": "/tmp/mine"}
    assert wrapper.setup_tracing(user_env, want_packets=False).event_fd is None


DAEMON_TARGET_PROBE = """
import json, sys
from gitaudit.capture import wrapper
own = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": sys.argv[1]}
tracing = wrapper.setup_tracing(own, want_packets=False)
print(json.dumps({"target": wrapper.trace2_target(own), "fd": tracing.event_fd,
                  "env": tracing.env, "link": tracing.link_sid}))
"""


def test_tracing_replaces_the_daemons_target(tmp_path: Path) -> None:
    config = tmp_path / "gitconfig"
    config.write_text('[trace2]\n\teventTarget = "af_unix:stream:/run/gitaudit/trace2.sock"\n'
                      "\tenvVars = GITAUDIT_CORRELATION_ID\n")
    # in a fresh interpreter: pytest itself keeps descriptors 3..9 busy
    probe = subprocess.run([sys.executable, "-c", DAEMON_TARGET_PROBE, str(config)],
                           capture_output=True, check=True, cwd=PROJECT_ROOT)
    result = json.loads(probe.stdout)
    assert result["target"] == "af_unix:stream:/run/gitaudit/trace2.sock"
    assert result["fd"] is not None
    assert result["env"]["GIT_TRACE2_EVENT"] == str(result["fd"])
    assert result["link"] is True


NESTED_PROBE = """
import json, sys
from gitaudit.capture import wrapper
outer = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_TRACE2_EVENT": "9", "GITAUDIT_TRACE2_FD": "9",
         "GIT_TRACE_PACKET": "8", "GITAUDIT_TRACE_PACKET_FD": "8"}
tracing = wrapper.setup_tracing(outer, want_packets=False, extra_params=["remote.pushdefault"])
print(json.dumps({"fd": tracing.event_fd, "env": tracing.env, "unset": tracing.unset}))
"""


def test_tracing_replaces_an_outer_gitaudits_targets() -> None:
    # in a fresh interpreter: pytest itself keeps descriptors 3..9 busy
    probe = subprocess.run([sys.executable, "-c", NESTED_PROBE], capture_output=True,
                           check=True, cwd=PROJECT_ROOT)
    result = json.loads(probe.stdout)
    assert result["fd"] == 9  # the outer fd number is free here; the highest free one is used
    assert result["env"]["GIT_TRACE2_EVENT"] == "9"
    assert result["env"]["GITAUDIT_TRACE2_FD"] == "9"
    assert result["env"]["GIT_TRACE2_CONFIG_PARAMS"] == (
        "user.name,user.email,remote.*.url,remote.pushdefault"
    )
    assert result["unset"] == ["GIT_TRACE_PACKET"]  # an outer packet trace is not inherited


def test_nested_git_through_the_shim_links_to_its_parent(sandbox: GitSandbox) -> None:
    from gitaudit.cli.shim import shim_install

    shims = sandbox.root / "shims"
    shim_install(shims)
    repo = sandbox.repo()
    hook = repo / ".git/hooks/post-commit"
    # git puts its exec-path first on PATH for hooks, so a hook must name the shim itself
    hook.write_text(f"#!/bin/sh\n{shims}/git rev-parse HEAD > /dev/null\n")
    hook.chmod(0o755)
    result = sandbox.audited("commit", "-q", "--allow-empty", "-m", "x", cwd=repo)
    assert result.returncode == 0, result.stderr
    inner, outer = sandbox.events()
    assert (outer["operation"], inner["details"]["subcommand"]) == ("git.commit", "rev-parse")
    assert inner["parent_id"] == outer["id"]
    assert inner["correlation_id"] == outer["correlation_id"]
    assert inner["details"]["trace2_sid"] != outer["details"]["trace2_sid"]


def recorded_capture(sandbox: GitSandbox, monkeypatch: pytest.MonkeyPatch,
                     argv: list[str]) -> wrapper.Capture:
    """A Capture prepared in-process in a sandbox repository (git not run)."""
    repo = sandbox.repo()
    monkeypatch.chdir(repo)
    settings, _ = wrapper.load_settings(sandbox.env)
    capture = wrapper.Capture(argv, sandbox.env, settings, REAL_GIT)
    capture.prepare()
    return capture


def test_a_capture_bug_still_records_a_minimal_event(
    sandbox: GitSandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = recorded_capture(sandbox, monkeypatch, ["commit", "-m", "x"])

    def broken(self: object) -> list[dict[str, object]]:
        raise RuntimeError("detail collection exploded")

    monkeypatch.setattr(wrapper._Builder, "build", broken)
    capture.record(1 << 8)  # wait status of "exited with code 1"
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("gitaudit: could not collect event details")
    assert "detail collection exploded" in line
    event = sandbox.last_event()
    events.validate_event(event)
    assert (event["operation"], event["outcome"]) == ("git.commit", "failure")
    assert event["result"]["exit_code"] == 1
    assert event["details"]["capture_error"] == "RuntimeError: detail collection exploded"


def test_a_pipeline_bug_retries_with_a_minimal_event(
    sandbox: GitSandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gitaudit import pipeline

    capture = recorded_capture(sandbox, monkeypatch, ["status"])
    real_emit = pipeline.emit

    def picky(batch: list[dict[str, object]], settings: object) -> object:
        if "capture_error" not in batch[0]["details"]:  # type: ignore[operator]
            raise ValueError("sanitizer choked")
        return real_emit(batch, settings)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "emit", picky)
    capture.record(0)
    (line,) = capsys.readouterr().err.splitlines()
    assert "event delivery failed (ValueError: sanitizer choked)" in line
    assert "recorded a minimal event instead" in line
    event = sandbox.last_event()
    assert event["outcome"] == "success"
    assert event["details"]["subcommand"] == "status"
