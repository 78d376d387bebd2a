"""`gitaudit forget` as an operator runs it: a real git commit recorded, then forgotten."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from gitaudit.store import Store
from gitaudit.store.engine import create_store_engine
from tests.gitfixtures import GitSandbox, gitaudit_command
from tests.store.helpers import make_records


def run(env: dict[str, str], *args: str, stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run([*gitaudit_command(), *args], env=env, capture_output=True, text=True,
                          input=stdin if stdin is not None else "", check=False)  # fmt: skip


def dump(url: str) -> str:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            tables = [row[0] for row in conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'table'"))]  # fmt: skip
            return "\n".join(repr(tuple(row)) for table in tables
                             for row in conn.execute(text(f'SELECT * FROM "{table}"')))  # noqa: S608 - names from the catalog
    finally:
        engine.dispose()


@pytest.fixture
def sandbox(tmp_path: Path) -> GitSandbox:
    box = GitSandbox(tmp_path)
    box.env["GITAUDIT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'audit.db'}"
    return box


def test_a_recorded_commit_is_forgotten_and_the_chain_still_verifies(
    sandbox: GitSandbox, tmp_path: Path
) -> None:
    env = sandbox.environ()
    url = env["GITAUDIT_DATABASE_URL"]
    repo = sandbox.repo()
    (repo / "a.txt").write_text("a\n")
    sandbox.git("add", "a.txt", cwd=repo)
    message = "add a\n\nSigned-off-by: Carl Committer <carl@example.com>"
    assert sandbox.audited("commit", "-q", "-m", message, cwd=repo).returncode == 0
    shown = run(env, "log", "--actor", "carl@example.com", "--format", "jsonl")
    assert shown.returncode == 0, shown.stderr
    (commit,) = [json.loads(line) for line in shown.stdout.splitlines()]
    assert commit["operation"] == "git.commit"
    assert commit["actor"]["git_email"] == "carl@example.com"
    assert commit["actor"]["git_name"] == "Carl Committer"
    assert "carl" not in dump(url).lower()  # the store holds tokens only

    refused = run(env, "forget", "--subject", "carl@example.com")  # no TTY, no --yes
    assert refused.returncode == 2
    assert "--yes" in refused.stderr and "no terminal" in refused.stderr

    done = run(env, "forget", "--subject", "CARL@example.com", "--yes")
    assert done.returncode == 0, done.stderr
    assert "carl@example.com" in done.stdout and "Carl Committer" in done.stdout
    assert "forgotten: subject:" in done.stdout

    after = run(env, "log", "--op", "git.commit", "--format", "jsonl")
    (commit,) = [json.loads(line) for line in after.stdout.splitlines()]
    assert commit["actor"]["git_email"].startswith("forgotten subject subject:")
    assert "carl" not in after.stdout.lower()
    table = run(env, "log", "--op", "git.commit")
    assert "forgotten" in table.stdout and "carl" not in table.stdout.lower()
    assert run(env, "verify").returncode == 0
    recorded = run(env, "log", "--op", "audit.subject_forgotten", "--format", "jsonl")
    (event,) = [json.loads(line) for line in recorded.stdout.splitlines()]
    assert event["details"]["events"] >= 1 and "carl" not in recorded.stdout.lower()

    again = run(env, "forget", "--subject", "carl@example.com", "--yes")
    assert again.returncode == 3
    assert "no subject 'carl@example.com'" in again.stderr
    token = commit["actor"]["git_email"].removeprefix("forgotten subject ")
    twice = run(env, "forget", "--subject", token, "--yes")
    assert twice.returncode == 4
    assert "forgotten already" in twice.stderr


def test_unknown_subject_and_patterns(tmp_path: Path) -> None:
    box = GitSandbox(tmp_path)
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with Store.open(url, chain_id="c") as store:
        store.append(make_records(3))
    env = box.environ({"GITAUDIT_DATABASE_URL": url})
    unknown = run(env, "forget", "--subject", "nobody@example.com", "--yes")
    assert unknown.returncode == 3
    assert "hint:" in unknown.stderr
    pattern = run(env, "forget", "--subject", "*@example.com", "--yes")
    assert pattern.returncode == 2
    assert "not a pattern" in pattern.stderr
    assert run(env, "log", "--actor", "bob", "--count").stdout.strip() == "1"


def _on_a_terminal(env: dict[str, str], answer: str, *args: str) -> tuple[int, str]:
    """Run gitaudit with a pseudo-terminal as stdin, answering the prompt with ``answer``."""
    import os

    primary, secondary = os.openpty()
    try:
        process = subprocess.Popen(
            [*gitaudit_command(), *args], env=env, stdin=secondary,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        os.write(primary, answer.encode() + b"\n")
        out, _ = process.communicate(timeout=120)
    finally:
        os.close(primary)
        os.close(secondary)
    return process.returncode, out


def test_on_a_terminal_it_asks_first(tmp_path: Path) -> None:
    box = GitSandbox(tmp_path)
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with Store.open(url, chain_id="c") as store:
        store.append(make_records(3))
    env = box.environ({"GITAUDIT_DATABASE_URL": url})
    code, out = _on_a_terminal(env, "n", "forget", "--subject", "bob@example.com")
    assert code == 1, out
    assert "will forget 3 identities" in out and "Forget?" in out and "nothing forgotten" in out
    assert run(env, "log", "--actor", "bob@example.com", "--count").stdout.strip() == "1"
    code, out = _on_a_terminal(env, "y", "forget", "--subject", "bob@example.com")
    assert code == 0, out
    assert run(env, "log", "--actor", "bob@example.com", "--count").stdout.strip() == "0"
