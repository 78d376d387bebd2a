"""How much wall time do gitaudit's git hooks add to the git commands that run them?

In a temporary directory, three identical repositories push to their own local
bare remotes; two have every default gitaudit hook installed
(`gitaudit hooks install`), the third none. One hooked repository runs with
default settings (`GITAUDIT_HOOK_DETACH=auto`: the hook hands sanitizing and
delivery to a detached child), the other with `GITAUDIT_HOOK_DETACH=never`
(all work inline, column "inline x"). Interleaved, N times each:

- `git commit --allow-empty -m x`   (runs post-commit)
- `git checkout -q -b b<N>`         (runs post-checkout)
- `git push -q origin HEAD:main`    (runs pre-push; a fast-forward of one commit)

plus a bare `<python> -I -c pass`. Prints medians, the time the hooks add per
command (one hook invocation each) and that time as a multiple of the bare
interpreter start. Target: <= 1.5x per hook invocation. After each hooked
command the bench waits, untimed, until the event is spooled, so a detached
child's work is not counted against the next command.

    .venv/bin/python bench/bench_hooks.py [--runs 30] [--importtime]

The package is byte-compiled first and PYTHONDONTWRITEBYTECODE is dropped, as
for an installed package. The hooks record with the spool transport (no
daemon), at level all.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, isolated_env, print_importtime, runs_and_git, settle, spooled, timed

TARGET_RATIO = 1.5
COMMANDS = ("commit", "checkout -b", "push")
DETACH_ENV = "GITAUDIT_HOOK_DETACH"


def environment(tmp: Path) -> dict[str, str]:
    """The shared isolated environment, with this checkout importable."""
    return isolated_env(tmp, PYTHONPATH=str(ROOT))


def make_repo(git: str, tmp: Path, name: str, env: dict[str, str]) -> Path:
    """A repository with one pushed commit and a local bare ``origin``."""
    remote = tmp / f"{name}.git"
    repo = tmp / name
    subprocess.run([git, "init", "-q", "--bare", str(remote)], env=env, check=True)
    subprocess.run([git, "init", "-q", str(repo)], env=env, check=True)
    for args in (["commit", "-q", "--allow-empty", "-m", "init"],
                 ["remote", "add", "origin", str(remote)],
                 ["push", "-q", "origin", "HEAD:main"]):
        subprocess.run([git, *args], cwd=repo, env=env, check=True)
    return repo


def one_round(git: str, repo: Path, env: dict[str, str], index: int,
              hooked: bool) -> dict[str, float]:
    """Commit, branch, push once in ``repo``; seconds each (one hook event each if hooked)."""
    commands = {
        "commit": [git, "commit", "-q", "--allow-empty", "-m", f"x{index}"],
        "checkout -b": [git, "checkout", "-q", "-b", f"b{index}"],
        "push": [git, "push", "-q", "origin", "HEAD:main"],
    }
    seconds = {}
    for label, argv in commands.items():
        expected = spooled(env) + 1
        seconds[label] = timed(argv, repo, env)
        if hooked:
            settle(env, expected)
    return seconds


def importtime(repo: Path, env: dict[str, str]) -> None:
    """Print the hook path's heaviest imports (post-checkout, cumulative microseconds)."""
    hook = repo / ".git" / "hooks" / "post-checkout"
    code = (
        "import sys; sys.path.append(sys.argv.pop(1)); "
        "from gitaudit.capture.hookrun import main; sys.exit(main(sys.argv[1:]))"
    )
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, env=env, capture_output=True,
                          text=True, check=True).stdout.strip()
    argv = [sys.executable, "-X", "importtime", "-I", "-S", "-c", code, str(ROOT), str(hook),
            head, head, "1"]
    print_importtime(argv, repo, env, "the hook path (post-checkout)", 15)


def main() -> int:
    args, git = runs_and_git(__doc__)
    with tempfile.TemporaryDirectory(prefix="gitaudit-bench-hooks-") as name:
        tmp = Path(name)
        env = environment(tmp)
        # kind -> (repository, environment, hooks installed)
        kinds: dict[str, tuple[Path, dict[str, str], bool]] = {
            "plain": (make_repo(git, tmp, "plain", env), env, False),
            "inline": (make_repo(git, tmp, "inline", env), {**env, DETACH_ENV: "never"}, True),
            "hooked": (make_repo(git, tmp, "hooked", env), env, True),
        }
        for repo, _, hooks in kinds.values():
            if hooks:
                subprocess.run([sys.executable, "-m", "gitaudit", "hooks", "install", "--repo",
                                str(repo)], env=env, check=True, stdout=subprocess.DEVNULL)
        bare_argv = [sys.executable, "-I", "-c", "pass"]
        for repo, repo_env, hooks in kinds.values():  # warm up caches and byte-code once
            one_round(git, repo, repo_env, 0, hooks)
        timed(bare_argv, tmp, env)
        samples: dict[str, list[float]] = {"bare": []}
        for index in range(1, args.runs + 1):
            samples["bare"].append(timed(bare_argv, tmp, env))
            for kind, (repo, repo_env, hooks) in kinds.items():
                for label, seconds in one_round(git, repo, repo_env, index, hooks).items():
                    samples.setdefault(f"{kind} {label}", []).append(seconds)
        median = {label: statistics.median(values) * 1000 for label, values in samples.items()}
        bare = median["bare"]
        print(f"python: {sys.executable}   runs: {args.runs}")
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
              "(higher: noisier figures)")
        print(f"{'python -I -c pass':30s} {bare:9.2f} ms")
        print(f"\n{'command':14s} {'plain ms':>9s} {'hooked ms':>10s} {'added ms':>9s} "
              f"{'x bare start':>13s} {'inline x':>9s}   (one hook each; target <= "
              f"{TARGET_RATIO}x)")
        worst = 0.0
        for label in COMMANDS:
            added = median[f"hooked {label}"] - median[f"plain {label}"]
            inline = (median[f"inline {label}"] - median[f"plain {label}"]) / bare
            ratio = added / bare
            worst = max(worst, ratio)
            print(f"{label:14s} {median[f'plain {label}']:9.2f} "
                  f"{median[f'hooked {label}']:10.2f} {added:9.2f} {ratio:13.2f} {inline:9.2f}")
        print(f"(hooked: default settings, {DETACH_ENV}=auto; inline: {DETACH_ENV}=never)")
        verdict = "within" if worst <= TARGET_RATIO else "OVER"
        print(f"\nworst ratio {worst:.2f}x: {verdict} the {TARGET_RATIO}x target")
        if args.importtime:
            importtime(kinds["hooked"][0], env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
