"""`gitaudit resolve` end to end: the real CLI in a subprocess, real git repositories
stopped on real conflicts, the real SDK talking to a fake endpoint on loopback."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.claude.fakeapi import (
    FakeAnthropic,
    closed_port_url,
    error,
    message,
    section,
    take_theirs,
)
from tests.gitfixtures import GitSandbox, branched, gitaudit_command, stopping

MARKERS = ("<<<<<<<", ">>>>>>>")


def resolve(sandbox: GitSandbox, repo: Path, *args: str, fake: FakeAnthropic | None = None,
            env: Mapping[str, str] | None = None, drop: Sequence[str] = (),
            ) -> subprocess.CompletedProcess[str]:
    """Run ``gitaudit resolve ARGS`` in ``repo`` (stdin not a terminal)."""
    extra = {**(fake.env() if fake else {}), **(env or {})}
    return subprocess.run(
        [*gitaudit_command(), "resolve", *args], cwd=repo, env=sandbox.environ(extra, drop),
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )


def stopped_merge(sandbox: GitSandbox, base: Mapping[str, str], topic: Mapping[str, str],
                  main: Mapping[str, str]) -> Path:
    """A repository whose merge of topic into main stopped on conflicts (through the wrapper,
    so the conflict.detected event is recorded as a user's would be)."""
    repo = branched(sandbox, base, topic=[("topic", dict(topic))], main=[("main", dict(main))])
    done = sandbox.audited("merge", "topic", cwd=repo)
    assert done.returncode == 1, done.stderr
    return repo


def unmerged(sandbox: GitSandbox, repo: Path) -> set[str]:
    """Paths still conflicted in the index."""
    out = sandbox.out("ls-files", "-u", cwd=repo)
    return {line.split("\t", 1)[1] for line in out.splitlines() if "\t" in line}


def of(sandbox: GitSandbox, operation: str) -> list[dict[str, Any]]:
    return [event for event in sandbox.events() if event["operation"] == operation]


def test_resolves_stages_and_records_the_resolution_under_the_detected_conflict(
    sandbox: GitSandbox, fake: FakeAnthropic,
) -> None:
    repo = stopped_merge(sandbox, {"a.txt": "one\ntwo\n", "b.txt": "x\n"},
                         {"a.txt": "one\ntopic\n", "b.txt": "topic\n"},
                         {"a.txt": "one\nmain\n", "b.txt": "main\n"})
    detected = of(sandbox, "conflict.detected")
    assert len(detected) == 1

    done = resolve(sandbox, repo, "--yes", "--format", "json", fake=fake)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [f["status"] for f in report["files"]] == ["resolved", "resolved"]
    assert report["conflict_id"] == detected[0]["id"]
    assert (repo / "a.txt").read_text() == "one\ntopic\n"
    assert (repo / "b.txt").read_text() == "topic\n"
    assert unmerged(sandbox, repo) == set()
    assert len(fake.bodies) == 2
    assert fake.bodies[0]["model"] == "claude-sonnet-5-5"
    for body in fake.bodies:
        assert "<<<<<<< HEAD" in section(body, "working_tree_with_conflict_markers")
        assert section(body, "base") in {"one\ntwo\n", "x\n"}

    resolved = of(sandbox, "conflict.resolved")
    requests = of(sandbox, "claude.request")
    assert len(resolved) == 2
    assert len(requests) == 2
    request_ids = {event["id"] for event in requests}
    for event in resolved:
        assert event["parent_id"] == detected[0]["id"]
        assert event["correlation_id"] == detected[0]["correlation_id"]
        assert event["outcome"] == "success"
        assert event["source"] == "cli"
        details = event["details"]
        assert details["resolution"] == "claude"
        assert details["files"] == [{"path": details["path"], "kind": "content",
                                     "resolution": "claude"}]
        assert details["model"] == "claude-sonnet-5-5"
        assert len(details["claude_request_ids"]) == 1
        assert set(details["claude_request_ids"]) <= request_ids
        assert {check["check"]: check["ok"] for check in details["validation"]} == {
            "conflict_markers": True, "not_empty": True}
        assert "I kept theirs." in details["explanation"]
    for event in requests:
        assert event["parent_id"] == detected[0]["id"]
    # the user concludes the merge as usual
    assert sandbox.git("commit", "--no-edit", cwd=repo, env={"GIT_EDITOR": "true"}).returncode == 0


@pytest.mark.parametrize("kind", ["rebase", "cherry-pick", "pull-rebase"])
def test_every_kind_of_stop(sandbox: GitSandbox, fake: FakeAnthropic, kind: str) -> None:
    stop = stopping(sandbox, kind)
    assert sandbox.audited(*stop.start, cwd=stop.repo).returncode != 0
    detected = of(sandbox, "conflict.detected")

    done = resolve(sandbox, stop.repo, "a.txt", "--yes", fake=fake, drop=["GITAUDIT_LEVEL"])

    assert done.returncode == 0, done.stderr
    assert "resolved  a.txt" in done.stdout
    assert f"git {stop.stopped_in} --continue" in done.stdout
    assert unmerged(sandbox, stop.repo) == set()
    assert not any(m in (stop.repo / "a.txt").read_text() for m in MARKERS)
    event = of(sandbox, "conflict.resolved")[-1]
    assert event["parent_id"] == detected[0]["id"]
    assert event["details"]["stopped_in"] == stop.stopped_in


def test_the_parent_is_the_stop_s_id_even_when_no_capture_path_saw_it(
    sandbox: GitSandbox, fake: FakeAnthropic,
) -> None:
    """Plain git stopped (no wrapper, no hooks): the id is the one every path derives."""
    stop = stopping(sandbox, "merge")
    assert sandbox.git(*stop.start, cwd=stop.repo, check=False).returncode == 1
    done = resolve(sandbox, stop.repo, "--yes", fake=fake)
    assert done.returncode == 0, done.stderr
    # a capture path that sees the stop later (a hook replaying it) names it the same way
    from gitaudit.capture import conflicts, gitstate

    layout = gitstate.discover(str(stop.repo), {})
    assert layout is not None
    stop_now = ("merge", sandbox.out("rev-parse", "topic", cwd=stop.repo),
                (stop.repo / ".git" / "MERGE_HEAD").stat().st_mtime_ns)
    assert of(sandbox, "conflict.resolved")[0]["parent_id"] == conflicts.conflict_id(
        layout, stop_now)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("Here it is:\nresolved\n", "holds no <resolved_file> tag"),
        ("<resolved_file>\none\n</resolved_file>\n<resolved_file>\ntwo\n</resolved_file>",
         "holds 2 <resolved_file> and 2 </resolved_file> tags"),
        ("<resolved_file>\nhalf a fi", "cut short at max_tokens"),
        ("<resolved_file>\n<<<<<<< HEAD\nmain\n=======\ntopic\n>>>>>>> topic\n</resolved_file>",
         "conflict markers left"),
        ("<resolved_file>\n</resolved_file>", "the proposal is empty"),
    ],
    ids=["no-tag", "two-tags", "truncated", "markers-left", "empty"],
)
def test_a_bad_answer_leaves_the_file_untouched_and_records_why(
    sandbox: GitSandbox, answer: str, reason: str,
) -> None:
    stop = stopping(sandbox, "merge")
    assert sandbox.audited(*stop.start, cwd=stop.repo).returncode == 1
    before = (stop.repo / "a.txt").read_bytes()
    stop_reason = "max_tokens" if "half" in answer else "end_turn"
    with FakeAnthropic(lambda body: message(answer, stop_reason=stop_reason)) as fake:
        # the default level (writes_only) keeps what resolve records, reads included
        done = resolve(sandbox, stop.repo, "--yes", fake=fake, drop=["GITAUDIT_LEVEL"])
    assert done.returncode == 1
    assert reason in done.stdout
    assert "file left as it was" in done.stdout
    assert (stop.repo / "a.txt").read_bytes() == before
    assert unmerged(sandbox, stop.repo) == {"a.txt"}
    assert of(sandbox, "conflict.resolved") == []
    failed = of(sandbox, "validation.failed")
    assert len(failed) == 1
    assert reason in failed[0]["details"]["reason"]
    assert failed[0]["outcome"] == "failure"
    assert failed[0]["parent_id"] == of(sandbox, "conflict.detected")[0]["id"]
    assert failed[0]["details"]["claude_request_ids"] == [of(sandbox, "claude.request")[0]["id"]]


@pytest.mark.parametrize(
    ("name", "base", "ours", "theirs", "broken", "complaint"),
    [
        ("config.json", '{"a": 1}\n', '{"a": 2}\n', '{"a": 3}\n', '{"a": 2,\n', "syntax:json"),
        ("app.py", "X = 1\n", "X = 2\n", "X = 3\n", "def broken(:\n", "syntax:python"),
        ("conf.toml", "a = 1\n", "a = 2\n", "a = 3\n", "a = = 2\n", "syntax:toml"),
        ("ci.yaml", "a: 1\n", "a: 2\n", "a: 3\n", "a: [2\n", "syntax:yaml"),
    ],
)
def test_a_proposal_that_no_longer_parses_is_rejected(
    sandbox: GitSandbox, name: str, base: str, ours: str, theirs: str, broken: str,
    complaint: str,
) -> None:
    repo = stopped_merge(sandbox, {name: base}, {name: theirs}, {name: ours})
    before = (repo / name).read_bytes()
    with FakeAnthropic(lambda body: message(f"<resolved_file>\n{broken}</resolved_file>")) as fake:
        done = resolve(sandbox, repo, "--yes", fake=fake)
    assert done.returncode == 1
    assert complaint in done.stdout
    assert (repo / name).read_bytes() == before
    failed = of(sandbox, "validation.failed")
    assert [c["check"] for c in failed[0]["details"]["validation"] if not c["ok"]] == [complaint]


def test_secrets_never_leave_the_machine_yet_the_resolved_file_keeps_them(
    sandbox: GitSandbox, fake: FakeAnthropic,
) -> None:
    token = "ghp_" + "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2"
    aws = "AKIA" + "QWERTYUIOPASDFGH"
    key = ("-----BEGIN RSA PRIVATE KEY-----\n"
           "MIIEowIBAAKCAQEAx3v9Q2kz8Lw0PnE1rT5yU7iO9pA2sD4fG6hJ8kL0zX1cV3bN\n"
           "5mQ7wE9rT1yU3iO5pA7sD9fG1hJ3kL5zX7cV9bN1mQ3wE5rT7yU9iO1pA3sD5fG7\n"
           "-----END RSA PRIVATE KEY-----")
    base = f'TOKEN = "{token}"\nAWS_KEY_ID = "{aws}"\nKEY = """{key}"""\nmode = "base"\n'
    repo = stopped_merge(sandbox, {"settings.py": base},
                         {"settings.py": base.replace('"base"', '"topic"')},
                         {"settings.py": base.replace('"base"', '"main"')})

    done = resolve(sandbox, repo, "--yes", fake=fake)

    assert done.returncode == 0, done.stderr
    sent = b"".join(fake.raw).decode()
    for secret in (token, aws, "MIIEowIBAAKCAQEAx3v9Q2kz8Lw0PnE1rT5yU7iO9pA2sD4fG6hJ8kL0zX1cV3bN"):
        assert secret not in sent
        assert secret not in json.dumps(sandbox.events())
    assert "<gitaudit-secret-" in sent
    resolved = (repo / "settings.py").read_text()
    assert resolved == base.replace('"base"', '"topic"')
    assert token in resolved and aws in resolved and key in resolved
    event = of(sandbox, "conflict.resolved")[0]
    assert event["details"]["secrets_masked"] == 3


def test_a_file_that_is_not_valid_utf8_is_skipped(sandbox: GitSandbox,
                                                   fake: FakeAnthropic) -> None:
    repo = branched(sandbox, {"latin1.txt": "base\n", "ok.txt": "base\n"},
                    topic=[("topic", {"ok.txt": "topic\n"})],
                    main=[("main", {"ok.txt": "main\n"})])
    with sandbox.open(repo) as handle:
        for branch, data in (("topic", b"caf\xe9 topic\n"), ("main", b"caf\xe9 main\n")):
            handle.git.checkout("-q", branch)
            (repo / "latin1.txt").write_bytes(data)
            handle.git.commit("-q", "-am", f"latin-1 on {branch}")
    assert sandbox.audited("merge", "topic", cwd=repo).returncode == 1
    before = (repo / "latin1.txt").read_bytes()

    done = resolve(sandbox, repo, "--yes", fake=fake)

    assert done.returncode == 1
    assert "skipped   latin1.txt: not valid UTF-8 text" in done.stdout
    assert "resolved  ok.txt" in done.stdout
    assert (repo / "latin1.txt").read_bytes() == before
    assert unmerged(sandbox, repo) == {"latin1.txt"}
    assert len(fake.bodies) == 1  # only ok.txt was sent


def test_binary_oversized_and_modify_delete_files_are_skipped(
    sandbox: GitSandbox, fake: FakeAnthropic,
) -> None:
    big = "line\n" * 100
    repo = branched(
        sandbox, {"text.txt": "base\n", "big.txt": big, "gone.txt": "base\n"},
        topic=[("topic", {"text.txt": "topic\n", "big.txt": big + "topic\n", "gone.txt": None})],
        main=[("main", {"text.txt": "main\n", "big.txt": big + "main\n",
                        "gone.txt": "main edit\n"})],
    )
    with sandbox.open(repo) as handle:
        for branch in ("topic", "main"):
            handle.git.checkout("-q", branch)
            (repo / "image.bin").write_bytes(b"\x89PNG\0\0" + branch.encode())
            handle.git.add("image.bin")
            handle.git.commit("-q", "-m", f"binary on {branch}")
    assert sandbox.audited("merge", "topic", cwd=repo).returncode == 1

    done = resolve(sandbox, repo, "--yes", "--format", "json", fake=fake,
                   env={"GITAUDIT_RESOLVE_MAX_BYTES": "300"})

    assert done.returncode == 1
    files = {item["path"]: item for item in json.loads(done.stdout)["files"]}
    assert files["text.txt"]["status"] == "resolved"
    assert files["image.bin"]["status"] == "skipped"
    assert "binary" in files["image.bin"]["reason"]
    assert files["big.txt"]["status"] == "skipped"
    assert "over resolve_max_bytes (300)" in files["big.txt"]["reason"]
    assert files["gone.txt"]["status"] == "skipped"
    assert "modify/delete" in files["gone.txt"]["reason"]
    assert unmerged(sandbox, repo) == {"image.bin", "big.txt", "gone.txt"}
    assert len(fake.bodies) == 1
    assert "skipped   image.bin: binary" in done.stderr


def test_not_stopped_on_a_conflict_is_a_clear_error(sandbox: GitSandbox,
                                                    fake: FakeAnthropic) -> None:
    repo = sandbox.repo()
    done = resolve(sandbox, repo, "--yes", fake=fake)
    assert done.returncode == 2
    assert "not stopped on a conflict" in done.stderr
    assert "hint:" in done.stderr
    assert fake.bodies == []
    outside = resolve(sandbox, sandbox.root, "--yes", fake=fake)
    assert outside.returncode == 2
    assert "not inside a git working tree" in outside.stderr


def test_check_command_failing_rejects_and_puts_the_file_back(
    sandbox: GitSandbox, fake: FakeAnthropic,
) -> None:
    stop = stopping(sandbox, "merge")
    assert sandbox.audited(*stop.start, cwd=stop.repo).returncode == 1
    before = (stop.repo / "a.txt").read_bytes()
    seen = stop.repo.parent / "seen.txt"
    check = f'cp "$GITAUDIT_RESOLVE_PATH" {seen} && grep -q main "$GITAUDIT_RESOLVE_PATH"'

    done = resolve(sandbox, stop.repo, "--yes", "--check", check, fake=fake)

    assert done.returncode == 1
    assert "--check failed with exit code 1" in done.stdout
    assert seen.read_text() == "topic\n"  # the check ran with the proposal in place
    assert (stop.repo / "a.txt").read_bytes() == before
    assert unmerged(sandbox, stop.repo) == {"a.txt"}
    failed = of(sandbox, "validation.failed")[0]
    assert {"check": "command", "ok": False, "detail": "exit code 1"} in (
        failed["details"]["validation"])

    passing = resolve(sandbox, stop.repo, "--yes", "--check", "grep -q topic a.txt", fake=fake)
    assert passing.returncode == 0, passing.stdout
    assert unmerged(sandbox, stop.repo) == set()
    resolved = of(sandbox, "conflict.resolved")[0]
    assert {"check": "command", "ok": True, "detail": None} in resolved["details"]["validation"]


def test_dry_run_changes_nothing(sandbox: GitSandbox, fake: FakeAnthropic) -> None:
    stop = stopping(sandbox, "merge")
    assert sandbox.audited(*stop.start, cwd=stop.repo).returncode == 1
    before = (stop.repo / "a.txt").read_bytes()
    index = (stop.repo / ".git" / "index").read_bytes()

    done = resolve(sandbox, stop.repo, "--dry-run", "--check", "true", fake=fake)

    assert done.returncode == 0, done.stderr
    assert "valid     a.txt (dry run: not written)" in done.stdout
    assert "+topic" in done.stdout and "-main" in done.stdout  # the diff against ours
    assert (stop.repo / "a.txt").read_bytes() == before
    assert (stop.repo / ".git" / "index").read_bytes() == index
    assert of(sandbox, "conflict.resolved") == []
    assert len(of(sandbox, "claude.request")) == 1


def test_without_a_terminal_it_asks_for_yes_before_sending_anything(
    sandbox: GitSandbox, fake: FakeAnthropic,
) -> None:
    stop = stopping(sandbox, "merge")
    assert sandbox.audited(*stop.start, cwd=stop.repo).returncode == 1
    done = resolve(sandbox, stop.repo, fake=fake)
    assert done.returncode == 2
    assert "pass --yes" in done.stderr
    assert fake.bodies == []


def test_no_api_key(sandbox: GitSandbox, fake: FakeAnthropic) -> None:
    stop = stopping(sandbox, "merge")
    assert sandbox.audited(*stop.start, cwd=stop.repo).returncode == 1
    before = (stop.repo / "a.txt").read_bytes()
    done = resolve(sandbox, stop.repo, "--yes", env={"ANTHROPIC_BASE_URL": fake.url},
                   drop=["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"])
    assert done.returncode == 2
    assert "no Anthropic API key" in done.stderr
    assert "ANTHROPIC_API_KEY" in done.stderr
    assert fake.bodies == []
    assert (stop.repo / "a.txt").read_bytes() == before
    assert unmerged(sandbox, stop.repo) == {"a.txt"}
    failed = of(sandbox, "claude.request")
    assert [event["outcome"] for event in failed] == ["failure"]


def test_network_error(sandbox: GitSandbox) -> None:
    stop = stopping(sandbox, "merge")
    assert sandbox.audited(*stop.start, cwd=stop.repo).returncode == 1
    before = (stop.repo / "a.txt").read_bytes()
    url = closed_port_url()
    done = resolve(sandbox, stop.repo, "--yes",
                   env={"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "sk-ant-test"})
    assert done.returncode == 2
    assert f"cannot reach the Anthropic API at {url}" in done.stderr
    assert "nothing was changed" in done.stderr
    assert (stop.repo / "a.txt").read_bytes() == before
    assert unmerged(sandbox, stop.repo) == {"a.txt"}
    failed = of(sandbox, "claude.request")
    assert len(failed) == 1
    assert failed[0]["outcome"] == "failure"
    assert failed[0]["parent_id"] == of(sandbox, "conflict.detected")[0]["id"]


def test_a_store_that_is_down_loses_nothing(sandbox: GitSandbox) -> None:
    repo = stopped_merge(sandbox, {"a.txt": "base\n", "b.txt": "base\n"},
                         {"a.txt": "topic a\n", "b.txt": "topic b\n"},
                         {"a.txt": "main a\n", "b.txt": "main b\n"})
    down = {"GITAUDIT_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}

    def reply(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if "File: b.txt" in body["messages"][0]["content"]:
            return message("no tags here")
        return take_theirs(body)

    with FakeAnthropic(reply) as fake:
        done = resolve(sandbox, repo, "--yes", fake=fake, env=down)
    assert done.returncode == 1, done.stderr
    spooled = {e["id"]: e["operation"] for e in sandbox.events()}
    assert sorted(spooled.values()).count("claude.request") == 2
    assert sorted(spooled.values()).count("conflict.resolved") == 1
    assert sorted(spooled.values()).count("validation.failed") == 1
    # once the store is there, everything spooled while it was down reaches it
    ingest = subprocess.run([*gitaudit_command(), "ingest", "--format", "json"],
                            env=sandbox.environ(), capture_output=True, text=True, check=False)
    assert ingest.returncode == 0, ingest.stderr
    logged = subprocess.run([*gitaudit_command(), "log", "--format", "json", "--no-ingest"],
                            env=sandbox.environ(), capture_output=True, text=True, check=False)
    assert logged.returncode == 0, logged.stderr
    stored = {e["id"]: e["operation"] for e in json.loads(logged.stdout)}
    assert stored == spooled


def test_a_refusal_leaves_the_file_and_says_so(sandbox: GitSandbox) -> None:
    stop = stopping(sandbox, "merge")
    assert sandbox.audited(*stop.start, cwd=stop.repo).returncode == 1
    before = (stop.repo / "a.txt").read_bytes()
    with FakeAnthropic(lambda body: message("I can't help with that.",
                                            stop_reason="refusal")) as fake:
        done = resolve(sandbox, stop.repo, "--yes", fake=fake)
    assert done.returncode == 1
    assert "declined to resolve this file (stop_reason refusal): resolve it by hand" in done.stdout
    assert (stop.repo / "a.txt").read_bytes() == before
    failed = of(sandbox, "validation.failed")[0]
    assert failed["details"]["stop_reason"] == "refusal"
    assert failed["details"]["claude_request_ids"] == [of(sandbox, "claude.request")[0]["id"]]


def test_rate_limited_after_the_sdk_retries_ends_the_run(sandbox: GitSandbox) -> None:
    stop = stopping(sandbox, "merge")
    assert sandbox.audited(*stop.start, cwd=stop.repo).returncode == 1
    before = (stop.repo / "a.txt").read_bytes()
    with FakeAnthropic(lambda body: error(429, "rate_limit_error", "slow down")) as fake:
        done = resolve(sandbox, stop.repo, "--yes", "--format", "json", fake=fake)
    assert done.returncode == 2
    assert "rate limited or unavailable (HTTP 429)" in done.stderr
    assert "hint: wait a little" in done.stderr
    assert len(fake.bodies) == 3  # the first attempt and the SDK's two retries
    report = json.loads(done.stdout)
    requests = of(sandbox, "claude.request")
    assert report["files"] == [{
        "path": "a.txt", "kind": "content", "status": "error", "reason": report["error"],
        "claude_request_ids": [requests[0]["id"]], "checks": [], "event_id": None,
        "secrets_masked": 0}]
    assert "rate limited" in report["error"]
    assert (stop.repo / "a.txt").read_bytes() == before
    assert [(e["outcome"], e["details"].get("status_code")) for e in requests] == [
        ("failure", 429)]


def test_on_a_terminal_it_shows_the_diff_and_asks(sandbox: GitSandbox, fake: FakeAnthropic,
                                                  ) -> None:
    import os
    import pty
    import select
    import time

    repo = stopped_merge(sandbox, {"a.txt": "base\n", "b.txt": "base\n"},
                         {"a.txt": "topic a\n", "b.txt": "topic b\n"},
                         {"a.txt": "main a\n", "b.txt": "main b\n"})
    before = (repo / "a.txt").read_bytes()
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*gitaudit_command(), "resolve"], cwd=repo, env=sandbox.environ(fake.env()),
        stdin=follower, stdout=follower, stderr=follower, close_fds=True,
    )
    os.close(follower)
    seen = b""

    def until(text: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 60
        while text not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            ready, _, _ = select.select([leader], [], [], 1)
            if ready:
                try:
                    seen += os.read(leader, 65536)
                except OSError:  # the child closed the terminal
                    assert text in seen, seen.decode(errors="replace")

    until(b"Write and stage the proposal for a.txt?")
    assert b"-main a" in seen and b"+topic a" in seen
    os.write(leader, b"n\n")
    until(b"Write and stage the proposal for b.txt?")
    os.write(leader, b"y\n")
    assert process.wait(timeout=60) == 1
    os.close(leader)
    assert (repo / "a.txt").read_bytes() == before
    assert (repo / "b.txt").read_text() == "topic b\n"
    assert unmerged(sandbox, repo) == {"a.txt"}
    assert of(sandbox, "validation.failed")[0]["details"]["reason"] == "declined by the operator"
    assert of(sandbox, "conflict.resolved")[0]["details"]["path"] == "b.txt"


def test_the_stop_s_own_resolution_says_claude_for_the_files_claude_resolved(
    sandbox: GitSandbox, fake: FakeAnthropic,
) -> None:
    repo = stopped_merge(sandbox, {"a.txt": "base\n", "b.txt": "base\n"},
                         {"a.txt": "topic a\n", "b.txt": "topic b\n"},
                         {"a.txt": "main a\n", "b.txt": "main b\n"})
    assert resolve(sandbox, repo, "a.txt", "--yes", fake=fake).returncode == 0
    sandbox.git("checkout", "--ours", "--", "b.txt", cwd=repo)
    sandbox.git("add", "b.txt", cwd=repo)
    done = sandbox.audited("commit", "--no-edit", cwd=repo, env={"GIT_EDITOR": "true"})
    assert done.returncode == 0, done.stderr
    concluded = [e for e in of(sandbox, "conflict.resolved") if e["source"] == "wrapper"]
    assert len(concluded) == 1
    assert {f["path"]: f["resolution"] for f in concluded[0]["details"]["files"]} == {
        "a.txt": "claude", "b.txt": "ours"}


def test_the_model_comes_from_the_setting_or_the_option(sandbox: GitSandbox,
                                                        fake: FakeAnthropic) -> None:
    repo = stopped_merge(sandbox, {"a.txt": "base\n", "b.txt": "base\n"},
                         {"a.txt": "topic a\n", "b.txt": "topic b\n"},
                         {"a.txt": "main a\n", "b.txt": "main b\n"})
    configured = {"GITAUDIT_CLAUDE_MODEL": "claude-haiku-4-5"}
    assert resolve(sandbox, repo, "a.txt", "--yes", fake=fake, env=configured).returncode == 0
    chosen = resolve(sandbox, repo, "b.txt", "--yes", "--model", "claude-opus-5-5", fake=fake,
                     env=configured)
    assert chosen.returncode == 0, chosen.stderr
    assert [body["model"] for body in fake.bodies] == ["claude-haiku-4-5", "claude-opus-5-5"]
    assert [e["details"]["model"] for e in of(sandbox, "conflict.resolved")] == [
        "claude-haiku-4-5", "claude-opus-5-5"]
    assert [e["details"]["model"] for e in of(sandbox, "claude.request")] == [
        "claude-haiku-4-5", "claude-opus-5-5"]


def test_a_path_that_is_not_conflicted_is_named(sandbox: GitSandbox, fake: FakeAnthropic) -> None:
    stop = stopping(sandbox, "merge")
    assert sandbox.audited(*stop.start, cwd=stop.repo).returncode == 1
    done = resolve(sandbox, stop.repo, "README", "--yes", fake=fake)
    assert done.returncode == 2
    assert "README is not a conflicted file" in done.stderr
    assert "conflicted files: a.txt" in done.stderr
    assert fake.bodies == []


def test_an_unknown_model_ends_the_run_with_what_to_check(sandbox: GitSandbox) -> None:
    stop = stopping(sandbox, "merge")
    assert sandbox.audited(*stop.start, cwd=stop.repo).returncode == 1
    with FakeAnthropic(lambda body: error(404, "not_found_error", "model: claude-nope")) as fake:
        done = resolve(sandbox, stop.repo, "--yes", "--model", "claude-nope", fake=fake)
    assert done.returncode == 2
    assert "404 model: claude-nope" in done.stderr
    assert "check the model name (--model, GITAUDIT_CLAUDE_MODEL)" in done.stderr
    assert unmerged(sandbox, stop.repo) == {"a.txt"}


def test_a_symbolic_link_is_skipped(sandbox: GitSandbox, fake: FakeAnthropic) -> None:
    repo = branched(sandbox, {"t.txt": "base\n"}, topic=[], main=[])
    with sandbox.open(repo) as handle:
        for branch in ("topic", "main"):
            handle.git.checkout("-q", branch)
            (repo / "link").symlink_to(f"target-{branch}")
            handle.git.add("link")
            handle.git.commit("-q", "-m", f"link on {branch}")
            (repo / "link").unlink()
        handle.git.checkout("-q", "-f", "main")
    assert sandbox.audited("merge", "topic", cwd=repo).returncode == 1
    done = resolve(sandbox, repo, "--yes", fake=fake)
    assert done.returncode == 1
    assert "skipped   link: symbolic link" in done.stdout
    assert fake.bodies == []
    assert (repo / "link").is_symlink()
