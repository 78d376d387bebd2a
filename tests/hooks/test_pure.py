"""Pure parts of hook capture and installation, tested without git."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

from gitaudit import hookinstall
from gitaudit.capture import hookrun, hooks, wrapper
from gitaudit.capture.gitstate import Head
from gitaudit.hookinstall import HookFile, Step
from gitaudit.policy import _Globs

A, B, C = "a" * 40, "b" * 40, "c" * 40
ZERO = "0" * 40


def test_push_lines_become_refs() -> None:
    data = (
        f"refs/heads/main {B} refs/heads/main {A}\n"
        f"refs/heads/new {C} refs/heads/new {ZERO}\n"
        f"(delete) {ZERO} refs/heads/old {A}\n"
    ).encode()
    refs = hooks.parse_push_lines(data)
    assert refs == [
        {"ref": "refs/heads/main", "local_ref": "refs/heads/main", "old": A, "new": B,
         "created": False, "deleted": False, "forced": False},
        {"ref": "refs/heads/new", "local_ref": "refs/heads/new", "old": None, "new": C,
         "created": True, "deleted": False, "forced": False},
        {"ref": "refs/heads/old", "local_ref": None, "old": A, "new": None,
         "created": False, "deleted": True, "forced": False},
    ]


def test_rewrite_and_transaction_lines() -> None:
    assert hooks.parse_rewrite_lines(f"{A} {B}\n{B} {C} extra\n\n".encode()) == [[A, B], [B, C]]
    changes = hooks.parse_transaction_lines(f"{ZERO} {A} refs/heads/x\n".encode())
    assert changes == [{"ref": "refs/heads/x", "old": None, "new": A,
                        "created": True, "deleted": False}]


def test_diff_tree_output() -> None:
    data = f"{C} {A} {B}\0\nM\0dir/a file\0A\0b\0D\0c\0".encode()
    commit, parents, files = hooks.parse_diff_tree(data)
    assert commit == C
    assert parents == [A, B]
    assert files == [{"path": "dir/a file", "status": "M"}, {"path": "b", "status": "A"},
                     {"path": "c", "status": "D"}]
    assert hooks.parse_diff_tree(b"") == (None, [], [])
    assert hooks.parse_diff_tree(f"{C}\0".encode()) == (C, [], [])


def test_reflog_line_and_action() -> None:
    entry = hooks.parse_reflog_line(f"{A} {B} Ann <a@x> 1700000000 +0000\tcommit (amend): fix")
    assert entry == (A, B, "commit (amend): fix")
    assert hooks.reflog_action(entry[2]) == "commit (amend)"
    assert hooks.parse_reflog_line("garbage") is None
    assert hooks.reflog_action(None) is None


def test_config_text_reader() -> None:
    found: dict[str, str] = {}
    text = (
        "[user]\n\tname = \"Ann Author\" # comment\n\temail = ann@example.com\n"
        "[remote \"origin\"]\n\turl = https://tok@host/x.git\n[core]\n\tbare = false\n"
    )
    assert hooks.parse_config_text(text, found)
    assert found == {"user.name": "Ann Author", "user.email": "ann@example.com",
                     "remote.origin.url": "https://tok@host/x.git"}
    assert not hooks.parse_config_text("[include]\n\tpath = other\n", {})
    assert not hooks.parse_config_text("[user]\n\tname = a \\\n b\n", {})


def _input(name: str, args: list[str], stdin: bytes = b"") -> hooks.HookInput:
    return hooks.HookInput(name, args, stdin, {}, None, Head("refs/heads/main", A))


def test_handlers_without_a_repository() -> None:
    checkout = hooks.post_checkout(_input("post-checkout", [A, B, "1"]))
    assert checkout.details["kind"] == "branch"
    assert checkout.details["branch"] == "main"
    files = hooks.post_checkout(_input("post-checkout", [A, A, "0"]))
    assert files.details["kind"] == "files"
    rewrite = hooks.post_rewrite(_input("post-rewrite", ["amend"], f"{A} {B}\n".encode()))
    assert rewrite.operation == "git.commit"
    assert rewrite.details["rewritten"] == [[A, B]]
    rebase = hooks.pre_rebase(_input("pre-rebase", ["upstream"]))
    assert rebase.details == {"phase": "pre-rebase", "upstream": "upstream", "branch": "main"}
    assert hooks.reference_transaction(
        _input("reference-transaction", ["prepared"], f"{A} {B} refs/heads/x\n".encode())
    ) is None


def test_refused_only_for_gating_hooks() -> None:
    assert hooks.refused("pre-push", 1)
    assert not hooks.refused("pre-push", 0)
    assert not hooks.refused("post-commit", 1)


# --- chaining ----------------------------------------------------------------------------


def _script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def test_shell_hooks_are_sourced_with_our_path_as_dollar_zero(tmp_path: Path) -> None:
    legacy = _script(tmp_path, "pre-push.gitaudit-legacy", "#!/bin/sh\necho hi\n")
    argv = hookrun.chained_argv(legacy, "/repo/.git/hooks/pre-push", ["origin", "url"])
    assert argv[:3] == ["/bin/sh", "-c", hookrun._SOURCE_AS]
    assert argv[3:] == ["/repo/.git/hooks/pre-push", legacy, "origin", "url"]
    env_bash = _script(tmp_path, "b", "#!/usr/bin/env bash\n")
    assert hookrun.chained_argv(env_bash, "/h", [])[:2] == ["/usr/bin/env", "bash"]


def test_other_hooks_run_as_they_are(tmp_path: Path) -> None:
    python = _script(tmp_path, "p", "#!/usr/bin/env python3\n")
    assert hookrun.chained_argv(python, "/h", ["x"]) == [python, "x"]
    zsh = _script(tmp_path, "z", "#!/bin/zsh\n")  # zsh sets $0 to a sourced file's name
    assert hookrun.chained_argv(zsh, "/h", []) == [zsh]


def test_find_chained_prefers_the_kept_hook(tmp_path: Path) -> None:
    assert hookrun.find_chained(str(tmp_path), "pre-push", {}, str(tmp_path)) is None
    legacy = _script(tmp_path, "pre-push.gitaudit-legacy", "#!/bin/sh\n")
    assert hookrun.find_chained(str(tmp_path), "pre-push", {}, str(tmp_path)) == legacy
    os.chmod(legacy, 0o644)  # git ignores a hook that is not executable; so do we
    assert hookrun.find_chained(str(tmp_path), "pre-push", {}, str(tmp_path)) is None


def test_global_state_chains_to_the_previous_hooks_path(tmp_path: Path) -> None:
    ours, previous = tmp_path / "ours", tmp_path / "previous"
    ours.mkdir()
    previous.mkdir()
    (ours / hookrun.GLOBAL_STATE).write_text(hookinstall.format_state(str(previous), None))
    target = _script(previous, "post-commit", "#!/bin/sh\n")
    assert hookrun.find_chained(str(ours), "post-commit", {}, str(tmp_path)) == target
    assert hookrun.read_global_state(str(ours)) == {"chain": str(previous), "previous_global": ""}


def test_shim_marker_matches_the_wrappers() -> None:
    assert hookrun.SHIM_MARKER == wrapper.SHIM_MARKER


# --- install planning --------------------------------------------------------------------

OURS = b"#!/bin/sh\n# gitaudit-hook: x\n# gitaudit-template: version 1 sha256 abc\n"


def test_plan_install_never_clobbers() -> None:
    files = [
        HookFile("pre-push", "absent"),
        HookFile("post-commit", "ours", OURS, 1, "abc"),
        HookFile("post-checkout", "ours", OURS + b"old", 1, "old"),
        HookFile("post-merge", "foreign", b"#!/bin/sh\n"),
        HookFile("pre-rebase", "foreign", b"#!/bin/sh\n", legacy=True),
    ]
    steps = hookinstall.plan_install(files, dict.fromkeys(hookinstall.ALL_HOOKS, OURS))
    assert [step.action for step in steps] == [
        hookinstall.WRITE, hookinstall.UNCHANGED, hookinstall.UPGRADE,
        hookinstall.KEEP_AND_WRITE, hookinstall.CONFLICT,
    ]
    assert hookinstall.conflicts(steps) == ["pre-rebase"]


def test_plan_uninstall_only_touches_ours() -> None:
    files = [
        HookFile("pre-push", "ours", OURS, legacy=True),
        HookFile("post-commit", "ours", OURS),
        HookFile("post-merge", "foreign", b"#!/bin/sh\n"),
        HookFile("pre-rebase", "absent"),
    ]
    assert hookinstall.plan_uninstall(files) == [
        Step("pre-push", hookinstall.RESTORE), Step("post-commit", hookinstall.REMOVE),
        Step("post-merge", hookinstall.NOT_OURS), Step("pre-rebase", hookinstall.ABSENT),
    ]


def test_template_renders_marked_and_quoted() -> None:
    template = hookinstall.Template.load()
    text = template.render("/opt/my env/bin/python", "/src/it's here", "pre-push").decode()
    assert hookinstall.identify(text.encode()) == hookinstall.Identity(
        template.version, template.sha256, "pre-push", hookinstall.RECORD)
    chainer = template.render("/p", "/r", "commit-msg", hookinstall.CHAIN)
    assert hookinstall.identify(chainer) == hookinstall.Identity(
        template.version, template.sha256, "commit-msg", hookinstall.CHAIN)
    assert "python='/opt/my env/bin/python'" in text
    assert "root='/src/it'\"'\"'s here'" in text
    assert hookinstall.identify(b"#!/bin/sh\necho foreign\n") is None


def test_scoped_value_parsing() -> None:
    parsed = hookinstall.parse_scoped_value(b"local\t.husky/_\n")
    assert (parsed.value, parsed.scope, parsed.local) == (".husky/_", "local", True)
    assert hookinstall.parse_scoped_value(b"").value is None
    assert not hookinstall.parse_scoped_value(b"global\t/x\n").local


def test_unknown_optional_hook_is_refused() -> None:
    with pytest.raises(hookinstall.HookInstallError, match="unknown optional hook"):
        hookinstall.hook_names(["pre-commit"])
    assert hookinstall.hook_names(["reference-transaction"])[-1] == "reference-transaction"


def test_public_names() -> None:
    assert all(hasattr(hookinstall, name) for name in hookinstall.__all__)


@pytest.mark.parametrize(
    ("pattern", "value"),
    [("conflict.*", "conflict.detected"), ("conflict.*", "conflicts"), ("a.b", "a.b"),
     ("a.b", "a.bc"), ("*", "x"), ("git.[ab]", "git.a"), ("git.?", "git.bc")],
)
def test_policy_globs_agree_with_fnmatch(pattern: str, value: str) -> None:
    assert _Globs([pattern]).any([value]) == fnmatch.fnmatchcase(value, pattern)


# --- peers: what hook managers do to gitaudit's hooks -------------------------------------

PRE_COMMIT_SCRIPT = b"#!/usr/bin/env bash\n# File generated by pre-commit: https://pre-commit.com\n"
LEGACY = hookinstall.LEGACY_SUFFIX
HUSKY_STUB = b'#!/usr/bin/env sh\n. "$(dirname "$0")/h"'


def _ours(name: str) -> bytes:
    return hookinstall.Template.load().render("/p", "/r", name)


def _files(folder: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        (folder / name).write_bytes(content)
        (folder / name).chmod(0o755)


def test_pre_commit_runs_its_legacy_hook_so_gitaudit_takes_that_place(tmp_path: Path) -> None:
    _files(tmp_path, {"pre-push": PRE_COMMIT_SCRIPT})
    hook = hookinstall.inspect_hook(tmp_path, "pre-push")
    assert (hook.peer, hook.file, hook.kind) == ("pre-commit", "pre-push.legacy", "absent")
    rendered = {"pre-push": _ours("pre-push")}
    assert hookinstall.plan_install([hook], rendered) == [
        Step("pre-push", hookinstall.WRITE, "pre-push.legacy")]
    _files(tmp_path, {"pre-push.legacy": rendered["pre-push"]})  # as pre-commit leaves ours
    hook = hookinstall.inspect_hook(tmp_path, "pre-push")
    assert hook.kind == "ours" and not hook.stale
    assert hookinstall.plan_uninstall([hook]) == [
        Step("pre-push", hookinstall.REMOVE, "pre-push.legacy")]


def test_a_peer_that_wrote_over_ours_is_repaired_not_refused(tmp_path: Path) -> None:
    _files(tmp_path, {"post-commit": HUSKY_STUB, f"post-commit{LEGACY}": HUSKY_STUB})
    hook = hookinstall.inspect_hook(tmp_path, "post-commit")
    assert hook.copy and hook.peer == "husky"
    assert [step.action for step in hookinstall.plan_install(
        [hook], {"post-commit": _ours("post-commit")})] == [
        hookinstall.DROP_COPY, hookinstall.KEEP_AND_WRITE]


def test_ours_moved_aside_is_stale_and_the_kept_hook_goes_where_the_peer_put_ours(
    tmp_path: Path,
) -> None:
    lefthook = b"#!/bin/sh\ncall_lefthook()\n{\n}\n"
    mine = b"#!/bin/sh\necho mine\n"
    _files(tmp_path, {"pre-push": lefthook, "pre-push.old": _ours("pre-push"),
                      f"pre-push{LEGACY}": mine})
    hook = hookinstall.inspect_hook(tmp_path, "pre-push")
    assert hook.stale == ("pre-push.old",) and not hook.copy
    steps = hookinstall.plan_install([hook], {"pre-push": _ours("pre-push")})
    assert [step.action for step in steps] == [hookinstall.DROP_STALE, hookinstall.KEEP_AND_WRITE]
    hookinstall.apply_install(tmp_path, steps, {"pre-push": _ours("pre-push")})
    assert (tmp_path / "pre-push.old").read_bytes() == mine  # where lefthook would have put it
    assert (tmp_path / f"pre-push{LEGACY}").read_bytes() == lefthook
    assert (tmp_path / "pre-push").read_bytes() == _ours("pre-push")
