"""Twins: the wrapper or the hooks and a REAL daemon's trace2 receiver see one git command.

The wrapper under `gitaudit trace2 enable`: its git reports to the wrapper, not the daemon.

With the daemon's ``trace2.eventTarget`` in the global config, the wrapper
still gives the git it runs its own trace file (``GIT_TRACE2_EVENT`` wins over
the config): it keeps what only git's trace tells (here: the alias ``ci``
resolved to ``commit``), and the daemon gets the wrapper's event instead of a
second copy of the command through trace2. The wrapper also sets
``GIT_TRACE2_PARENT_SID`` to its event id, so a trace2 record of that git,
wherever it goes, names the wrapper's event (``details.trace2_sid``).

Hooks under `gitaudit trace2 enable`: git gives its hooks its own session id
(``GIT_TRACE2_PARENT_SID``); the hook's event carries it, and the daemon keeps
one event per command and operation.
"""

from __future__ import annotations

import subprocess
from typing import Any

from tests.daemon.daemon_harness import Daemons, send_trace2_to, wait_for
from tests.gitfixtures import GitSandbox, gitaudit_command


def test_a_wrapped_command_reaches_the_daemon_once_with_what_trace2_told(
    sandbox: GitSandbox, daemons: Daemons
) -> None:
    run = daemons().start()
    repo = sandbox.repo()
    sandbox.git("config", "--global", "alias.ci", "commit")
    sandbox.git("config", "--global", "trace2.eventTarget",
                f"af_unix:stream:{run.runtime / 'trace2.sock'}")
    sandbox.env["GITAUDIT_RUNTIME_DIR"] = str(run.runtime)
    done = sandbox.audited("ci", "-q", "--allow-empty", "-m", "wrapped", cwd=repo)
    assert done.returncode == 0, done.stderr
    sandbox.git("tag", "sentinel", cwd=repo)  # plain git: through trace2, after any twin

    def stored() -> list[dict[str, Any]] | None:
        found = run.stored()
        ready = any(e["operation"] == "git.tag" for e in found) and any(
            e["source"] == "wrapper" for e in found)
        return found if ready else None

    found = wait_for(stored, "the wrapped commit and the plain tag")
    commits = [e for e in found if e["operation"] == "git.commit"]
    assert [e["source"] for e in commits] == ["wrapper"]
    [wrapped] = commits
    assert wrapped["details"]["argv"][0] == "ci"
    assert wrapped["details"]["alias"] == "ci"
    assert wrapped["details"]["trace2_sid"].startswith(wrapped["id"] + "/")
    tag = next(e for e in found if e["operation"] == "git.tag")
    assert tag["source"] == "trace2"
    assert run.metric_sum("gitaudit_events_duplicate_total") == 0


def test_hooks_and_trace2_on_plain_git_store_one_event_per_command(
    sandbox: GitSandbox, daemons: Daemons
) -> None:
    run = daemons().start()
    repo = sandbox.repo()  # its first commit untraced
    send_trace2_to(run, sandbox)
    installed = subprocess.run([*gitaudit_command(), "hooks", "install", "--repo", str(repo)],
                               env=sandbox.environ(), capture_output=True, check=False)
    assert installed.returncode == 0, installed.stderr
    sandbox.git("commit", "-q", "--allow-empty", "-m", "hooked and traced", cwd=repo)
    sandbox.git("checkout", "-q", "-b", "topic", cwd=repo)
    sandbox.git("tag", "sentinel", cwd=repo)  # trace2 only: stored after the twins

    def settled() -> list[dict[str, Any]] | None:
        found = run.stored()
        sources = {(e["operation"], e["source"]) for e in found}
        ready = ("git.tag", "trace2") in sources and run.metric_sum(
            "gitaudit_events_duplicate_total") >= 2
        return found if ready else None

    found = wait_for(settled, "both twins refused and the tag stored")
    for operation in ("git.commit", "git.checkout"):
        twins = [e for e in found if e["operation"] == operation]
        assert len(twins) == 1, twins
        assert twins[0]["details"]["trace2_sid"]
