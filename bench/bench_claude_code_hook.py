"""How long does gitaudit's Claude Code hook command take per tool call?

Claude Code runs the installed hook command (``<python> -I -S -c <code>``, see
gitaudit.claude.settings_install; through ``/bin/sh -c``) for every hook event and
waits for it; a tool call costs one PostToolUse run. In a temporary directory with
its own repository, interleaved, N times each:

- ``python -c pass``: a bare interpreter start, started the same way (the yardstick);
- the hook command with a PostToolUse payload of a Bash ``git commit`` (as
  Claude Code 2.1.197 sends it) on stdin, run as Claude Code runs it
  (``/bin/sh -c``), recording to the spool (no daemon): with default settings
  (``hook_detach = auto``: a detached child sanitizes and spools; the bench
  waits for it, untimed) and with ``GITAUDIT_HOOK_DETACH=never`` (all inline);
- for reference, a git hook run: ``git commit --allow-empty`` in a repository with
  gitaudit's hooks installed minus the same commit in one without.

Prints medians, each as a multiple of the bare start. Target: the hook command
<= 1.5x a bare start (like the git hooks). The yardstick is started through
``/bin/sh -c`` too, so the shell's start is on both sides.

    .venv/bin/python bench/bench_claude_code_hook.py [--runs 30] [--importtime]

The package is byte-compiled first and PYTHONDONTWRITEBYTECODE is dropped, as
for an installed package.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, isolated_env, print_importtime, runs_and_git, settle, spooled, timed

from gitaudit.claude.settings_install import hook_command

TARGET_RATIO = 1.5
SESSION = "0c1ceea0-202e-49c2-a0d4-39b78f7cacc0"


def payload(cwd: Path, index: int) -> bytes:
    """A PostToolUse payload of one Bash tool call, key for key as Claude Code sends it."""
    command = f"echo {index} >> f && git commit -qam 'agent change {index}'"
    return json.dumps({
        "session_id": SESSION,
        "transcript_path": f"/home/u/.claude/projects/-repo/{SESSION}.jsonl",
        "cwd": str(cwd),
        "prompt_id": "75a23174-d454-42bd-9570-5e92ed17f598",
        "permission_mode": "default",
        "effort": {"level": "high"},
        "hook_event_name": "PostToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": command, "description": "commit the change"},
        "tool_response": {"stdout": f"[main {index:07x}] agent change", "stderr": "",
                          "interrupted": False, "isImage": False, "noOutputExpected": False},
        "tool_use_id": f"toolu_01bench{index:06d}",
        "duration_ms": 32,
    }).encode()


def run_once(argv: list[str], cwd: Path, env: dict[str, str], data: bytes = b""
             ) -> tuple[float, float]:
    """(wall s, CPU s) of one run of ``argv`` with ``data`` on stdin: user + system time of
    the process and of the children it waited for (not a detached child). It must succeed
    and say nothing."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdin.write(data)
    process.stdin.close()
    said = process.stdout.read() + process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    process.stdout.close()
    process.stderr.close()
    if process.returncode or said:
        raise SystemExit(f"{argv} failed ({process.returncode}) or said {said!r}")
    return wall, usage.ru_utime + usage.ru_stime


def make_repo(git: str, path: Path, env: dict[str, str]) -> Path:
    """A repository with one commit."""
    subprocess.run([git, "init", "-q", str(path)], env=env, check=True)
    subprocess.run([git, "commit", "-q", "--allow-empty", "-m", "init"], cwd=path, env=env,
                   check=True)
    return path


def main() -> int:
    args, git = runs_and_git(__doc__)
    python = shlex.quote(sys.executable)
    with tempfile.TemporaryDirectory(prefix="gitaudit-bench-cchook-") as name:
        tmp = Path(name)
        env = isolated_env(tmp, PYTHONPATH=str(ROOT))
        repo = make_repo(git, tmp / "repo", env)
        plain = make_repo(git, tmp / "plain", env)
        hooked = make_repo(git, tmp / "hooked", env)
        subprocess.run([sys.executable, "-m", "gitaudit", "hooks", "install", "--repo",
                        str(hooked)], env=env, check=True, stdout=subprocess.DEVNULL)
        bare = ["/bin/sh", "-c", f"{python} -c pass"]
        # exactly the command `gitaudit claude-code install` writes into the settings
        hook = ["/bin/sh", "-c", hook_command()]
        commit = [git, "commit", "-q", "--allow-empty", "-m", "x"]
        inline = {**env, "GITAUDIT_HOOK_DETACH": "never"}
        # what Claude Code puts in its hooks' environment: under an agent the hook delivers
        # inline (auto), so the daemon can prove the session from this process's ancestry
        agent = {**env, "CLAUDECODE": "1", "AI_AGENT": "claude-code_2-1-197_harness",
                 "CLAUDE_CODE_SESSION_ID": "0c1ceea0-202e-49c2-a0d4-39b78f7cacc0"}
        run_once(bare, tmp, env)  # warm up caches and byte-code once
        run_once(hook, repo, env, payload(repo, 0))
        samples: dict[str, list[float]] = {"bare": [], "hook": [], "inline": [], "agent": [],
                                           "plain": [], "hooked": []}
        cpu: dict[str, list[float]] = {"bare": [], "hook": [], "inline": [], "agent": []}
        for index in range(1, args.runs + 1):
            for label, argv, cwd, run_env, data in (
                ("bare", bare, tmp, env, b""),
                ("hook", hook, repo, env, payload(repo, index)),
                ("inline", hook, repo, inline, payload(repo, -index)),
                ("agent", hook, repo, agent, payload(repo, 10_000 + index)),
            ):
                expected = spooled(env) + (label != "bare")
                wall, used = run_once(argv, cwd, run_env, data)
                samples[label].append(wall)
                cpu[label].append(used)
                settle(env, expected)  # a detached child's delivery is not counted
            samples["plain"].append(timed(commit, plain, env))
            expected = spooled(env) + 1
            samples["hooked"].append(timed(commit, hooked, env))
            settle(env, expected)
        median = {label: statistics.median(values) * 1000 for label, values in samples.items()}
        cpu_ms = {label: statistics.median(values) * 1000 for label, values in cpu.items()}
        base, base_cpu = median["bare"], cpu_ms["bare"]
        git_hook = median["hooked"] - median["plain"]
        print(f"python: {sys.executable}   runs: {args.runs}")
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
              "(higher: noisier figures)")
        print(f"{'':44s} {'wall ms':>8s} {'x bare':>7s} {'cpu ms':>7s} {'cpu x':>6s}")
        rows = (("sh -c python -c pass", "bare", ""),
                ("sh -c <installed hook command>", "hook",
                 "one PostToolUse payload, spooled; default settings"),
                ("  the same, GITAUDIT_HOOK_DETACH=never", "inline", "all in the hook process"),
                ("  the same, in Claude Code's environment", "agent",
                 "auto delivers inline under an agent (the daemon proves it)"))
        for title, label, note in rows:
            print(f"{title:44s} {median[label]:8.2f} {median[label] / base:6.2f}x "
                  f"{cpu_ms[label]:7.2f} {cpu_ms[label] / base_cpu:5.2f}x   {note}")
        print(f"{'git hook (post-commit) added to git commit':44s} {git_hook:8.2f} "
              f"{git_hook / base:6.2f}x   (reference, wall)")
        for label, title in (("hook", "hook command"), ("agent", "under Claude Code")):
            ratio = median[label] / base
            verdict = "within" if ratio <= TARGET_RATIO else "OVER"
            print(f"{title}: {ratio:.2f}x a bare start: {verdict} the {TARGET_RATIO}x target")
        if args.importtime:
            data = tmp / "payload.json"
            data.write_bytes(payload(repo, 99))
            argv = ["/bin/sh", "-c", f"{python} -X importtime -m gitaudit claude-code-hook"
                    f" < {shlex.quote(str(data))}"]
            print_importtime(argv, repo, env, "the Claude Code hook (PostToolUse)", 15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
