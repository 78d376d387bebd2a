"""Pure trace2 assembly: the bounded stream, folding processes into commands, the record.

No sockets here: lines are as git 2.39 writes them (brief format), time is passed in.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from gitaudit.capture.trace2 import ProcessTrace, Trace2Stream
from gitaudit.daemon.api import Peer
from gitaudit.daemon.trace2_receiver import Assembler, Connection, Group, build_event

ROOT = "20261122T055223.850717Z-H0a7c9cdf-P00007604"
CHILD = ROOT + "/20261122T055223.854982Z-H0a7c9cdf-P00007607"
GRANDCHILD = CHILD + "/20261122T055223.855000Z-H0a7c9cdf-P00007608"
PEER = Peer(pid=0x7604, uid=1000, gid=1000)


def line(event: str, sid: str = ROOT, **fields: object) -> bytes:
    record = {"event": event, "sid": sid, "thread": "main", **fields}
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def process_lines(sid: str, argv: list[str], code: int | None = 0, **extra: Any) -> bytes:
    """A whole process: version, start, cmd_name, def_repo, params, then exit/atexit."""
    out = line("version", sid, evt="3", exe="2.39.5", time="2026-11-22T05:52:23.850876Z")
    out += line("start", sid, t_abs=0.0006, argv=argv)
    out += line("cmd_name", sid, name=extra.get("name", argv[1]), hierarchy=argv[1])
    out += line("def_repo", sid, repo=1, worktree="/srv/repo")
    for key, value in extra.get("params", {}).items():
        out += line("def_param", sid, scope="local", param=key, value=value)
    out += line("region_enter", sid, nesting=1, category="index", label="do_read_index")
    if code is not None:
        out += line("exit", sid, t_abs=0.0125, code=code)
        out += line("atexit", sid, t_abs=0.0126, code=code, time="2026-11-22T05:52:23.863300Z")
    return out


def connection(data: bytes, peer: Peer | None = PEER, max_bytes: int = 1 << 20) -> Connection:
    conn = Connection(peer, max_bytes, wall=1_700_000_000.0)
    conn.stream.feed(data)
    return conn


# --- the bounded stream ---------------------------------------------------------------------


def test_stream_joins_lines_split_across_reads() -> None:
    data = process_lines(ROOT, ["git", "status"])
    proc = ProcessTrace()
    stream = Trace2Stream(proc, 1 << 20)
    for start in range(0, len(data), 7):
        stream.feed(data[start : start + 7])
    stream.close()
    assert (proc.sid, proc.command, proc.exit_code, proc.exited) == (ROOT, "status", 0, True)
    assert proc.argv == ["git", "status"]
    assert proc.t_abs_end == 0.0126


def test_noise_is_skipped_and_never_counted() -> None:
    proc = ProcessTrace()
    stream = Trace2Stream(proc, 10_000)
    noise = line("region_enter", nesting=1, category="x", label="y" * 200)
    stream.feed(noise * 1000)
    assert stream.detail_bytes == 0
    assert not proc.dropped


def test_detail_past_the_bound_is_dropped_but_the_end_is_kept() -> None:
    proc = ProcessTrace()
    stream = Trace2Stream(proc, max_bytes=2_000)
    stream.feed(process_lines(ROOT, ["git", "commit"], code=None))
    for child_id in range(40):
        stream.feed(line("child_start", child_id=child_id, child_class="hook",
                         hook_name="pre-commit", argv=[".git/hooks/pre-commit"]))
        stream.feed(line("error", msg=f"problem {child_id}"))
    stream.feed(line("exit", t_abs=0.5, code=1) + line("atexit", t_abs=0.5, code=1))
    assert proc.dropped
    assert proc.children == {}  # detail forgotten
    assert len(proc.errors) <= 1
    assert (proc.exit_code, proc.exited, proc.command) == (1, True, "commit")  # still known


def test_an_overlong_line_is_skipped_up_to_its_newline() -> None:
    proc = ProcessTrace()
    stream = Trace2Stream(proc, max_bytes=50_000, line_limit=20_000)
    stream.feed(line("version", evt="3", exe="2.39.5"))
    huge = line("start", argv=["git", "add", *(["x" * 100] * 1000)])
    for start in range(0, len(huge), 4096):
        stream.feed(huge[start : start + 4096])
        assert stream.buffered() <= 20_000 + 4096
    stream.feed(line("exit", t_abs=0.1, code=0))
    assert proc.argv == []  # the start line was dropped whole
    assert proc.dropped
    assert proc.exit_code == 0


def test_a_line_nested_too_deeply_is_skipped_and_the_rest_kept() -> None:
    """Anyone may write to the trace2 socket; one such line once ended the whole stream."""
    proc = ProcessTrace()
    stream = Trace2Stream(proc, 1 << 20)
    deep = b'{"event":"def_param","sid":"' + ROOT.encode() + b'","value":'
    stream.feed(line("version", evt="3") + deep + b"[" * 50_000 + b"]" * 50_000 + b"}\n")
    stream.feed(line("start", t_abs=0.001, argv=["git", "fetch"]) + line("exit", code=0))
    stream.close()
    assert (proc.argv, proc.exit_code) == (["git", "fetch"], 0)


def test_a_cut_last_line_is_ignored_and_a_whole_one_used() -> None:
    proc = ProcessTrace()
    stream = Trace2Stream(proc, 1 << 20)
    stream.feed(line("version", evt="3") + b'{"event":"exit","sid":"' + ROOT.encode() + b'","co')
    stream.close()
    assert proc.exit_code is None
    proc2 = ProcessTrace()
    stream2 = Trace2Stream(proc2, 1 << 20)
    stream2.feed(line("version", evt="3") + line("exit", code=3).rstrip(b"\n"))
    stream2.close()
    assert proc2.exit_code == 3


# --- folding processes into commands --------------------------------------------------------


def test_nested_processes_fold_into_their_top_level_command() -> None:
    asm = Assembler(grace=0.2, max_wait=30)
    top = connection(process_lines(ROOT, ["git", "commit", "-m", "x"]))
    child = connection(process_lines(CHILD, ["git", "rev-parse", "HEAD"]))
    grandchild = connection(process_lines(GRANDCHILD, ["git", "cat-file", "-t", "HEAD"]))
    for conn in (child, grandchild, top):  # the child's lines may come first
        asm.heard(conn, now=1.0)
    assert asm.due(now=1.1) == []  # within the grace period
    groups = asm.due(now=1.3)
    assert len(groups) == 1
    assert groups[0].top is top
    assert {conn.sid for conn in groups[0].nested} == {CHILD, GRANDCHILD}
    assert asm.pending() == 0


def test_a_command_waits_for_its_nested_processes() -> None:
    asm = Assembler(grace=0.2, max_wait=30)
    top = connection(process_lines(ROOT, ["git", "commit"]))
    child = connection(process_lines(CHILD, ["git", "rev-parse"], code=None))
    asm.heard(top, 1.0)
    asm.heard(child, 1.0)
    assert asm.due(5.0) == []
    assert asm.next_check() == 31.0  # only the max_wait deadline is left
    asm.closed(child, 6.0, wall=0.0)
    assert asm.due(6.1) == []
    assert len(asm.due(6.3)) == 1


def test_a_helper_still_open_after_max_wait_does_not_hold_the_record() -> None:
    asm = Assembler(grace=0.2, max_wait=2.0)
    top = connection(process_lines(ROOT, ["git", "fetch"]))
    helper = connection(process_lines(CHILD, ["git", "credential-cache--daemon"], code=None))
    asm.heard(top, 1.0)
    asm.heard(helper, 1.0)
    assert len(asm.due(3.1)) == 1
    late = connection(process_lines(CHILD + "/x-P1", ["git", "x"]))
    asm.heard(late, 4.0)  # a late helper of a recorded command is absorbed
    assert late.absorbed
    assert asm.pending() == 0


def test_processes_under_a_foreign_parent_sid_are_separate_commands() -> None:
    asm = Assembler(grace=0.1, max_wait=30)
    first = connection(process_lines("job-42/A-P1", ["git", "status"]))
    second = connection(process_lines("job-42/B-P2", ["git", "push"]))
    asm.heard(first, 1.0)
    asm.heard(second, 1.0)
    groups = asm.due(2.0)
    assert sorted(group.top.sid or "" for group in groups) == ["job-42/A-P1", "job-42/B-P2"]
    event = build_event(groups[0], host="h", error_max_chars=100)
    assert event["correlation_id"] == "job-42"  # the root of the sid chain


def test_a_process_whose_connection_closed_without_exit_is_killed() -> None:
    asm = Assembler(grace=0.1, max_wait=30)
    top = connection(process_lines(ROOT, ["git", "commit"], code=None))
    asm.heard(top, 1.0)
    assert asm.due(2.0) == []  # still running
    two_seconds_later = datetime.fromisoformat("2026-11-22T05:52:25.850876Z").timestamp()
    asm.closed(top, 2.0, wall=two_seconds_later)
    (group,) = asm.due(2.5)
    event = build_event(group, host="h", error_max_chars=100)
    assert event["outcome"] == "failure"
    assert event["result"]["exit_code"] is None
    assert event["details"]["killed"] is True
    assert event["duration_ms"] == 2000.0  # from git's start time to the connection's end


# --- the record -------------------------------------------------------------------------------


def _event(top: bytes, *nested: bytes, peer: Peer | None = PEER) -> dict[str, Any]:
    group = Group(connection(top, peer), [connection(data, peer) for data in nested])
    for conn in (group.top, *group.nested):
        conn.done_at = 1.0
    return build_event(group, host="build-7", error_max_chars=30)


def test_record_shape_matches_the_wrapper() -> None:
    params = {
        "user.name": "Ulla", "user.email": "ulla@example.com",
        "remote.origin.url": "https://bob:s3cret@example.com/team/app.git",
    }
    event = _event(process_lines(ROOT, ["git", "push", "--force"], params=params))
    assert event["operation"] == "git.push"
    assert event["source"] == "trace2"
    assert event["outcome"] == "success"
    assert event["duration_ms"] == 12.6
    assert event["occurred_at"].startswith("2026-11-22T05:52:23.85")
    assert event["correlation_id"] == ROOT  # nothing else given: the root sid
    assert event["repo"]["remote"] == "https://example.com/team/app.git"
    assert event["repo"]["name"] == "app"
    assert event["repo"]["head_before"] is None
    assert event["actor"]["uid"] == 1000 and event["actor"]["verified"] is True
    assert (event["actor"]["git_name"], event["actor"]["host"]) == ("Ulla", "build-7")
    details = event["details"]
    assert details["trace2_sid"] == ROOT
    assert details["force"] is True and details["remote"] == "origin"
    assert details["url"] == "https://example.com/team/app.git"
    assert details["refs_source"] == "unavailable"


def test_correlation_and_ci_come_from_env_vars_git_reported() -> None:
    env = {"GITLAB_CI": "true", "CI_JOB_ID": "77", "CI_PIPELINE_ID": "9"}
    event = _event(process_lines(ROOT, ["git", "fetch"], params=env))
    assert event["correlation_id"] == "gitlab:77"
    assert event["actor"]["ci"]["provider"] == "gitlab"
    assert event["actor"]["ci"]["pipeline"] == "9"
    explicit = _event(process_lines(ROOT, ["git", "fetch"],
                                    params={**env, "GITAUDIT_CORRELATION_ID": "corr-1"}))
    assert explicit["correlation_id"] == "corr-1"


def test_alias_failure_and_hook_children() -> None:
    top = process_lines(ROOT, ["git", "co", "nope"], code=None, name="_run_dashed_")
    top += line("alias", alias="co", argv=["checkout", "nope"])
    top += line("child_start", child_id=1, child_class="git_alias", argv=["git", "checkout"])
    top += line("child_exit", child_id=1, pid=3, code=1)
    top += line("exit", t_abs=0.01, code=1) + line("atexit", t_abs=0.01, code=1)
    child = process_lines(CHILD, ["git", "checkout", "nope"], code=None)
    child += line("error", CHILD, msg="pathspec 'nope' did not match any file(s) known to git")
    child += line("exit", CHILD, t_abs=0.004, code=1)
    event = _event(top, child)
    assert event["operation"] == "git.checkout"
    assert event["details"]["alias"] == "co"
    assert event["outcome"] == "failure"
    assert event["result"]["exit_code"] == 1
    assert event["result"]["error"].endswith("…") and len(event["result"]["error"]) == 30
    assert event["details"]["children"][0]["class"] == "git_alias"
    assert event["details"]["nested"][0]["command"] == "checkout"


def test_a_signal_is_a_failure_with_the_signal_named() -> None:
    top = process_lines(ROOT, ["git", "gc"], code=None) + line("signal", t_abs=0.3, signo=15)
    event = _event(top, peer=None)
    assert event["outcome"] == "failure"
    assert event["result"]["exit_code"] == 143
    assert event["details"]["signal"] == "SIGTERM"
    assert event["actor"]["verified"] is False and event["actor"]["uid"] is None
