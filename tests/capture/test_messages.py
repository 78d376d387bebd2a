"""Messages are not stored unless capture_messages is on (gitaudit.capture.messages)."""

from __future__ import annotations

import hashlib
import json

import pytest

from gitaudit import events
from gitaudit.capture import messages
from gitaudit.config import Settings
from gitaudit.pipeline import Pipeline
from tests.gitfixtures import GitSandbox


def hidden(text: str) -> str:
    data = text.encode()
    return f"[message: {len(data)} bytes, sha256:{hashlib.sha256(data).hexdigest()}]"


M = hidden("msg")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["commit", "-m", "msg"], ["commit", "-m", M]),
        (["commit", "-mmsg"], ["commit", "-m" + M]),
        (["commit", "-am", "msg"], ["commit", "-am", M]),
        (["commit", "--message=msg"], ["commit", "--message=" + M]),
        (["commit", "--mess", "msg"], ["commit", "--mess", M]),
        (["-C", "dir", "commit", "-C", "HEAD", "-m", "msg", "--", "-m"],
         ["-C", "dir", "commit", "-C", "HEAD", "-m", M, "--", "-m"]),
        (["commit", "--author", "-m x", "-F", "msg.txt"], None),
        (["tag", "-a", "v1", "-m", "msg"], ["tag", "-a", "v1", "-m", M]),
        (["merge", "-m", "msg", "topic"], ["merge", "-m", M, "topic"]),
        (["stash", "push", "-m", "msg"], ["stash", "push", "-m", M]),
        (["stash", "save", "-k", "msg"], ["stash", "save", "-k", M]),
        (["notes", "add", "-m", "msg", "HEAD"], ["notes", "add", "-m", M, "HEAD"]),
        (["commit-tree", "-p", "HEAD", "-m", "msg", "abc"],
         ["commit-tree", "-p", "HEAD", "-m", M, "abc"]),
        (["update-ref", "-m", "msg", "refs/heads/x", "abc"],
         ["update-ref", "-m", M, "refs/heads/x", "abc"]),
        (["branch", "-m", "old", "new"], None),
        (["cherry-pick", "-m", "1", "abc"], None),
        (["status"], None),
    ],
)
def test_messages_in_a_command_line(argv: list[str], expected: list[str] | None) -> None:
    assert messages.hide_in_argv(argv) == expected
    if expected is not None:
        assert messages.hide_in_argv(expected) is None  # idempotent: nothing left to hide


def test_an_alias_is_read_as_the_command_it_stands_for() -> None:
    assert messages.hide_in_argv(["ci", "-m", "msg"], "commit") == ["ci", "-m", M]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("commit: msg", f"commit: {M}"),
        ("commit (amend): msg", f"commit (amend): {M}"),
        ("rebase (pick): msg", f"rebase (pick): {M}"),
        ("cherry-pick: msg", f"cherry-pick: {M}"),
        ("rebase (finish): returning to refs/heads/main", None),
        ("branch: Created from HEAD", None),
        ("merge topic: Fast-forward", None),
    ],
)
def test_commit_subjects_in_reflog_messages(message: str, expected: str | None) -> None:
    assert messages.hide_in_reflog(message) == (expected or message)


def _trace2_like_event() -> dict[str, object]:
    return {
        "operation": "git.rebase",
        "details": {
            "subcommand": "rebase",
            "argv": ["rebase", "-x", "git commit --amend -m inner", "main"],
            "children": [{"class": "git", "argv": ["git", "commit", "-m", "msg"]},
                         {"class": "hook", "argv": ["hooks/post-commit", "-m", "x"]}],
            "nested": [{"sid": "s", "argv": ["/usr/bin/git", "commit", "-m", "msg"]}],
            "reflog": {"message": "commit: msg", "name": "Ulla"},
        },
    }


def test_every_place_a_message_lands_in_an_event() -> None:
    found = messages.hide_messages(_trace2_like_event())["details"]
    assert isinstance(found, dict)
    assert found["argv"] == ["rebase", "-x", "git commit --amend -m inner", "main"]
    assert found["children"][0]["argv"] == ["git", "commit", "-m", M]
    assert found["children"][1]["argv"] == ["hooks/post-commit", "-m", "x"]
    assert found["nested"][0]["argv"] == ["/usr/bin/git", "commit", "-m", M]
    assert found["reflog"] == {"message": f"commit: {M}", "name": "Ulla"}


def test_the_pipeline_hides_messages_unless_capture_messages_is_on() -> None:
    event = {"operation": "git.commit", "details": {"subcommand": "commit",
                                                    "argv": ["commit", "-m", "msg"]}}
    assert Pipeline(Settings()).sanitize(event)["details"]["argv"] == ["commit", "-m", M]
    kept = Pipeline(Settings({"capture_messages": True})).sanitize(event)
    assert kept["details"]["argv"] == ["commit", "-m", "msg"]


def test_wrapped_commands_store_no_message_by_default(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    secret_words = "launch codes are in the fridge"
    sandbox.audited("commit", "-q", "--allow-empty", "-m", secret_words, cwd=repo)
    sandbox.audited("commit", "-q", "--allow-empty", f"--message={secret_words}", cwd=repo)
    sandbox.audited("tag", "-a", "v1", "-m", secret_words, cwd=repo)
    sandbox.audited("checkout", "-q", "-b", "topic", cwd=repo)
    sandbox.commit(repo, {"t.txt": "t\n"}, "topic work")
    sandbox.git("checkout", "-q", "main", cwd=repo)
    sandbox.audited("merge", "-q", "--no-ff", "-m", secret_words, "topic", cwd=repo)
    (repo / "README").write_text("changed\n")
    sandbox.audited("stash", "push", "-q", "-m", secret_words, cwd=repo)
    sandbox.audited("notes", "add", "-m", secret_words, cwd=repo)
    recorded = sandbox.events()
    assert all(event["outcome"] == "success" for event in recorded), recorded
    assert secret_words not in json.dumps(recorded)
    placeholder = hidden(secret_words)
    argvs = [event["details"]["argv"] for event in recorded]
    assert ["commit", "-q", "--allow-empty", "-m", placeholder] in argvs
    assert ["commit", "-q", "--allow-empty", f"--message={placeholder}"] in argvs
    assert ["tag", "-a", "v1", "-m", placeholder] in argvs
    assert ["merge", "-q", "--no-ff", "-m", placeholder, "topic"] in argvs
    assert ["stash", "push", "-q", "-m", placeholder] in argvs
    assert ["notes", "add", "-m", placeholder] in argvs
    for event in recorded:
        events.validate_event(event)


def test_capture_messages_keeps_them_redacted(sandbox: GitSandbox) -> None:
    repo = sandbox.repo()
    env = {"GITAUDIT_CAPTURE_MESSAGES": "true"}
    token = "ghp_" + "A1b2C3d4" * 5
    sandbox.audited("commit", "-q", "--allow-empty", "-m", f"fix login {token}", cwd=repo,
                    env=env)
    argv = sandbox.last_event("git.commit")["details"]["argv"]
    assert argv == ["commit", "-q", "--allow-empty", "-m", "fix login [REDACTED:github-token]"]
