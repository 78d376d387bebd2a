"""The trace2 and packet-trace parsers, on lines as git 2.39 writes them."""

from __future__ import annotations

import json

from gitaudit.capture import trace2

ROOT = "20261122T045602.278155Z-H0a7c9cdf-P00000f44"
CHILD = ROOT + "/20261122T045602.281953Z-H0a7c9cdf-P00000f45"


def line(event: str, sid: str = ROOT, **fields: object) -> bytes:
    record = {"event": event, "sid": sid, "thread": "main", **fields}
    return json.dumps(record, separators=(",", ":")).encode()  # compact, as git writes it


ALIAS_TRACE = b"\n".join(
    [
        line("version", evt="3", exe="2.39.5"),
        line("start", t_abs=0.0004, argv=["git", "co", "nope"]),
        line("cmd_name", name="_run_dashed_", hierarchy="_run_dashed_"),
        line("alias", alias="co", argv=["checkout", "nope"]),
        line("def_param", scope="global", param="user.name", value="Global Name"),
        line("def_param", scope="local", param="user.name", value="Local Name"),
        line("def_param", scope="local", param="remote.origin.url", value="https://h/x.git"),
        line("child_start", child_id=1, child_class="git_alias", use_shell=False,
             argv=["git", "checkout", "nope"]),
        line("version", sid=CHILD, evt="3", exe="2.39.5"),
        line("def_repo", sid=CHILD, repo=1, worktree="/tmp/r"),
        line("cmd_name", sid=CHILD, name="checkout", hierarchy="_run_git_alias_/checkout"),
        line("def_param", sid=CHILD, scope="local", param="user.name", value="Child Name"),
        line("region_enter", sid=CHILD, repo=1, nesting=1, category="index", label="x"),
        line("error", sid=CHILD, msg="pathspec 'nope' did not match", fmt="pathspec '%s'"),
        line("exit", sid=CHILD, t_abs=0.001, code=1),
        line("child_exit", child_id=1, pid=3909, code=1, t_rel=0.003),
        line("exit", t_abs=0.005, code=1),
        line("atexit", t_abs=0.005, code=1),
    ]
)


def test_alias_command_errors_params_and_children() -> None:
    summary = trace2.summarize_bytes(ALIAS_TRACE)
    assert summary.sid == ROOT
    assert summary.command == "checkout"  # the first real (non "_...") command name
    assert summary.alias == "co"
    assert summary.alias_argv == ["checkout", "nope"]
    assert summary.exit_code == 1
    assert summary.signal is None
    assert summary.errors == ["pathspec 'nope' did not match"]  # from the child
    assert summary.worktree == "/tmp/r"
    # the root's parameters, last value wins; the child's never override them
    assert summary.params == {"user.name": "Local Name", "remote.origin.url": "https://h/x.git"}
    assert [(c.child_id, c.child_class, c.exit_code) for c in summary.children] == [
        (1, "git_alias", 1)
    ]


def test_root_errors_win_over_child_errors() -> None:
    data = b"\n".join(
        [
            line("version", evt="3"),
            line("error", sid=CHILD, msg="child problem"),
            line("error", msg="root problem"),
            line("error", msg="root problem"),
        ]
    )
    assert trace2.summarize_bytes(data).errors == ["root problem"]


def test_params_fall_back_to_first_child_that_has_any() -> None:
    data = b"\n".join(
        [
            line("version", evt="3"),
            line("def_param", sid=CHILD, param="user.email", value="c@x"),
        ]
    )
    assert trace2.summarize_bytes(data).params == {"user.email": "c@x"}


def test_malformed_and_noise_lines_are_skipped() -> None:
    data = b"\n".join(
        [
            b"",
            b"not json",
            b'{"event":"exit","sid":"' + ROOT.encode() + b'","code":',  # cut off mid-write
            b"[1, 2]",
            line("version", evt="3"),
            line("data", key="read/version", value="2"),
            line("exit", code=0),
        ]
    )
    events = list(trace2.parse_events(data.splitlines()))
    assert [event["event"] for event in events] == ["version", "exit"]
    assert trace2.summarize_bytes(data).exit_code == 0


def test_signal_and_hook_children() -> None:
    data = b"\n".join(
        [
            line("version", evt="3"),
            line("cmd_name", name="commit", hierarchy="commit"),
            line("child_start", child_id=0, child_class="hook", hook_name="pre-commit",
                 argv=[".git/hooks/pre-commit"], use_shell=False),
            line("child_exit", child_id=0, pid=12, code=0, t_rel=0.01),
            line("signal", t_abs=0.2, signo=15),
        ]
    )
    summary = trace2.summarize_bytes(data)
    assert summary.command == "commit"
    assert summary.signal == 15
    assert summary.exit_code is None
    assert summary.children[0].hook_name == "pre-commit"
    assert summary.children[0].exit_code == 0


def test_empty_trace() -> None:
    summary = trace2.summarize_bytes(b"")
    assert summary.sid is None
    assert summary.command is None
    assert summary.errors == []
    assert summary.params == {}


OLD = "a24b5e5db377a1701931483562c06bb8a90a9a04"
NEW = "a485141b132cfb3a75303aea28dd0d8f8fe970f4"
ZERO = "0" * 40
CAPS = r"\0report-status report-status-v2 delete-refs side-band-64k"

PUSH_TRACE = "\n".join(
    [
        f"04:58:22.139405 pkt-line.c:80 packet: receive-pack> {OLD} refs/heads/main{CAPS}",
        f"04:58:22.139541 pkt-line.c:80 packet:         push< {OLD} refs/heads/main{CAPS}",
        f"04:58:22.139592 pkt-line.c:80 packet:         push< {OLD} refs/heads/other",
        f"04:58:22.139593 pkt-line.c:80 packet:         push< {OLD} refs/tags/v1^{{}}",
        "04:58:22.139595 pkt-line.c:80 packet:         push< 0000",
        f"04:58:22.139848 pkt-line.c:80 packet:         push> {OLD} {NEW} refs/heads/main"
        r"\0 report-status-v2 side-band-64k quiet",
        f"04:58:22.139851 pkt-line.c:80 packet:         push> {OLD} {ZERO} refs/heads/other",
        f"04:58:22.139852 pkt-line.c:80 packet:         push> {ZERO} {NEW} refs/heads/new",
        "04:58:22.139859 pkt-line.c:80 packet:         push> 0000",
        f"04:58:22.140173 pkt-line.c:80 packet: receive-pack< {OLD} {NEW} refs/heads/main",
        "04:58:22.152844 pkt-line.c:80 packet:         push< unpack ok",
        "04:58:22.152849 pkt-line.c:80 packet:         push< ok refs/heads/main",
        "04:58:22.152853 pkt-line.c:80 packet:         push< ng refs/heads/other deny deleting",
        "04:58:22.152856 pkt-line.c:80 packet:     sideband< \\1000eunpack ok0017ok",
    ]
).encode()


def test_push_packets_commands_reports_and_advertisement() -> None:
    packets = trace2.parse_push_packets(PUSH_TRACE)
    assert packets.advertised == {"refs/heads/main": OLD, "refs/heads/other": OLD}
    assert packets.commands == [
        trace2.PushCommand("refs/heads/main", OLD, NEW, "ok", None),
        trace2.PushCommand("refs/heads/other", OLD, None, "ng", "deny deleting"),
        trace2.PushCommand("refs/heads/new", None, NEW, None, None),
    ]


def test_push_packets_over_smart_http_use_send_pack_identity() -> None:
    data = (
        f"packet:    send-pack> {ZERO} {NEW} refs/heads/x\\0 report-status\n"
        "packet:    send-pack< ok refs/heads/x\n"
        f"packet:  remote-curl< {OLD} refs/heads/ignored\n"
    ).encode()
    packets = trace2.parse_push_packets(data)
    assert packets.commands == [trace2.PushCommand("refs/heads/x", None, NEW, "ok", None)]
    assert packets.advertised == {}


def test_a_top_process_under_a_parent_sid_is_still_the_root() -> None:
    parent = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"  # GIT_TRACE2_PARENT_SID set by the wrapper
    top, child = f"{parent}/{ROOT}", f"{parent}/{CHILD}"
    data = b"\n".join([
        line("version", sid=top, evt="3", exe="2.39.5"),
        line("start", sid=top, t_abs=0.0004, argv=["git", "commit", "-m", "x"]),
        line("cmd_name", sid=top, name="commit", hierarchy="commit"),
        line("child_start", sid=top, child_id=0, child_class="hook", hook_name="post-commit",
             argv=["hooks/post-commit"]),
        line("version", sid=child, evt="3", exe="2.39.5"),
        line("exit", sid=child, t_abs=0.001, code=0),
        line("child_exit", sid=top, child_id=0, pid=7, code=0, t_rel=0.002),
        line("exit", sid=top, t_abs=0.004, code=0),
    ])  # fmt: skip
    summary = trace2.summarize_bytes(data)
    assert summary.sid == top
    assert summary.command == "commit"
    assert summary.exit_code == 0
    assert [c.hook_name for c in summary.children] == ["post-commit"]
