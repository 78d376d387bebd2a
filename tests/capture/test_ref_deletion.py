"""Every way of deleting a ref is recorded as `category: delete`, `severity: medium`."""

from __future__ import annotations

from tests.gitfixtures import GitSandbox


def test_ref_deletions_through_the_wrapper(sandbox: GitSandbox) -> None:
    remote = sandbox.bare_remote()
    repo = sandbox.repo(remote=remote)
    for name in ("tmp", "gone", "plumbing"):
        sandbox.git("branch", name, cwd=repo)
    sandbox.git("tag", "v1", cwd=repo)
    sandbox.git("push", "-q", "origin", "main", "tmp", "gone", cwd=repo)
    commands = [
        ("branch", "-D", "tmp"),
        ("tag", "-d", "v1"),
        ("push", "-q", "--delete", "origin", "tmp"),
        ("push", "-q", "origin", ":gone"),
        ("update-ref", "-d", "refs/heads/plumbing"),
    ]
    for command in commands:
        result = sandbox.audited(*command, cwd=repo)
        assert result.returncode == 0, result.stderr
    recorded = sandbox.events()[-len(commands):]
    assert [event["details"]["argv"][0] for event in recorded] == [c[0] for c in commands]
    assert [(event["category"], event["severity"]) for event in recorded] == [
        ("delete", "medium")
    ] * len(commands)
