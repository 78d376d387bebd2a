"""How much wall time do gitaudit's git hooks add to the git commands that run them?

In a temporary directory, two identical repositories push to their own local
bare remotes; one has every default gitaudit hook installed
(`gitaudit hooks install`), the other none. Interleaved, N times each:

- `git commit --allow-empty -m x`   (runs post-commit)
- `git checkout -q -b b<N>`         (runs post-checkout)
- `git push -q origin HEAD:main`    (runs pre-push; a fast-forward of one commit)

plus a bare `<python> -I -c pass`. Prints medians, the time the hooks add per
command (one hook invocation each) and that time as a multiple of the bare
interpreter start. Target: <= 1.5x per hook invocation.

    .venv/bin/python bench/bench_hooks.py [--runs 30] [--importtime]

The package is byte-compiled first and PYTHONDONTWRITEBYTECODE is dropped, as
for an installed package. The hooks record with the spool transport (no
daemon), at level all.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, isolated_env, print_importtime, timed  # bench/common.py

TARGET_RATIO = 1.5
COMMANDS = ("commit", "checkout -b", "push")


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


def one_round(git: str, repo: Path, env: dict[str, str], index: int) -> dict[str, float]:
    """Commit, branch, push once in ``repo``; seconds each."""
    return {
        "commit": timed([git, "commit", "-q", "--allow-empty", "-m", f"x{index}"], repo, env),
        "checkout -b": timed([git, "checkout", "-q", "-b", f"b{index}"], repo, env),
        "push": timed([git, "push", "-q", "origin", "HEAD:main"], repo, env),
    }


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--importtime", action="store_true", help="also show import costs")
    args = parser.parse_args()
    git = shutil.which("git") or "git"
    compileall.compile_dir(str(ROOT / "gitaudit"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="gitaudit-bench-hooks-") as name:
        tmp = Path(name)
        env = environment(tmp)
        plain = make_repo(git, tmp, "plain", env)
        hooked = make_repo(git, tmp, "hooked", env)
        subprocess.run([sys.executable, "-m", "gitaudit", "hooks", "install", "--repo",
                        str(hooked)], env=env, check=True, stdout=subprocess.DEVNULL)
        bare_argv = [sys.executable, "-I", "-c", "pass"]
        for repo in (plain, hooked):  # warm up caches and byte-code once
            one_round(git, repo, env, 0)
        timed(bare_argv, tmp, env)
        samples: dict[str, list[float]] = {"bare": []}
        for label in COMMANDS:
            samples[f"plain {label}"] = []
            samples[f"hooked {label}"] = []
        for index in range(1, args.runs + 1):
            samples["bare"].append(timed(bare_argv, tmp, env))
            for kind, repo in (("plain", plain), ("hooked", hooked)):
                for label, seconds in one_round(git, repo, env, index).items():
                    samples[f"{kind} {label}"].append(seconds)
        median = {label: statistics.median(values) * 1000 for label, values in samples.items()}
        bare = median["bare"]
        print(f"python: {sys.executable}   runs: {args.runs}")
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
              "(higher: noisier figures)")
        print(f"{'python -I -c pass':30s} {bare:9.2f} ms")
        print(f"\n{'command':14s} {'plain ms':>9s} {'hooked ms':>10s} {'added ms':>9s} "
              f"{'x bare start':>13s}   (one hook each; target <= {TARGET_RATIO}x)")
        worst = 0.0
        for label in COMMANDS:
            added = median[f"hooked {label}"] - median[f"plain {label}"]
            ratio = added / bare
            worst = max(worst, ratio)
            print(f"{label:14s} {median[f'plain {label}']:9.2f} "
                  f"{median[f'hooked {label}']:10.2f} {added:9.2f} {ratio:13.2f}")
        verdict = "within" if worst <= TARGET_RATIO else "OVER"
        print(f"\nworst ratio {worst:.2f}x: {verdict} the {TARGET_RATIO}x target")
        if args.importtime:
            importtime(hooked, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
