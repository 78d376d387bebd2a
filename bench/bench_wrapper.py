"""How much wall time does `gitaudit git ...` add over plain git?

In a temporary repository, runs interleaved (so drift hits all alike), N times
each: `git status`, `git rev-parse HEAD`, `git commit --allow-empty -m x`,
plainly and through the console script `gitaudit git ...`, plus `git status`
through the shim (`gitaudit shim install`) and a bare `<venv python> -I -c
pass`. Prints medians, the time the wrapper adds per command (wrapped median
minus plain git median), and that added time as a multiple of the bare
interpreter start ("adds X ms, N x a bare python -I -c pass start").
Target: <= 1.5x.

    .venv/bin/python bench/bench_wrapper.py [--runs 40] [--rounds 1] [--importtime]

Other processes on the machine make the figures noisy (a second or two of
milliseconds); the load average is printed with them, and so are the CPU
times (user + system, from wait4), which waiting for a core does not stretch. ``--rounds N`` repeats
the whole measurement N times and ends with the range of each ratio.

The package is byte-compiled first and PYTHONDONTWRITEBYTECODE is dropped, as
for an installed package (pip compiles on install). If the console script is
not installed, an equivalent one (same shebang, same entry point) is written
to the temporary directory.
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
import time
from pathlib import Path

from common import ROOT, isolated_env, print_importtime, timed  # bench/common.py

TARGET_RATIO = 1.5
COMMANDS = {
    "status": ["status"],
    "rev-parse HEAD": ["rev-parse", "HEAD"],
    "commit --allow-empty": ["commit", "-q", "--allow-empty", "-m", "x"],
}


def console_script(tmp: Path) -> list[str]:
    """The installed `gitaudit` script, or an equivalent one written to ``tmp``."""
    installed = Path(sys.executable).parent / "gitaudit"
    if installed.exists():
        return [str(installed)]
    script = tmp / "gitaudit"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from gitaudit.__main__ import main\n"
        "sys.exit(main())\n"
    )
    script.chmod(0o755)
    return [str(script)]


def shim(tmp: Path) -> list[str]:
    """A shim as `gitaudit shim install` writes it (in a directory that is not on PATH)."""
    sys.path.insert(0, str(ROOT))
    from gitaudit.cli.shim import shim_install

    shim_install(tmp / "shim")
    return [str(tmp / "shim" / "git")]


def environment(tmp: Path) -> dict[str, str]:
    """The shared isolated environment."""
    return isolated_env(tmp)


def importtime(wrapper: list[str], cwd: Path, env: dict[str, str]) -> None:
    """Print the wrapper path's heaviest imports (cumulative microseconds, one run)."""
    argv = [sys.executable, "-X", "importtime", *wrapper, "git", "rev-parse", "HEAD"]
    print_importtime(argv, cwd, env, "the wrapper path", 20)


def run_once(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one run: user + system time of the process and of the children
    it waited for (git, for the wrapper; not the wrapper's detached fsync child)."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, argv)
    return wall * 1000, (usage.ru_utime + usage.ru_stime) * 1000


def measure(cases: dict[str, list[str]], runs: int, repo: Path, env: dict[str, str]
            ) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and median CPU milliseconds of each case, runs interleaved."""
    walls: dict[str, list[float]] = {label: [] for label in cases}
    cpus: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(runs):
        for label, argv in cases.items():
            wall, cpu = run_once(argv, repo, env)
            walls[label].append(wall)
            cpus[label].append(cpu)
    return ({label: statistics.median(values) for label, values in walls.items()},
            {label: statistics.median(values) for label, values in cpus.items()})


def report(median: dict[str, float], cpu: dict[str, float]) -> dict[str, float]:
    """Print one round's medians and ratios; returns the (wall) ratio of each command.

    The CPU columns are steadier on a busy machine: waiting for a core stretches
    wall times, not CPU times (the wrapper's CPU includes git's, which is subtracted).
    """
    bare, bare_cpu = median["python -I -c pass"], cpu["python -I -c pass"]
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} on {os.cpu_count()} cores (higher: noisier figures)")
    print(f"{'command':34s} {'median ms':>10s} {'cpu ms':>8s}")
    for label, value in median.items():
        print(f"{label:34s} {value:10.2f} {cpu[label]:8.2f}")
    header = f"{'command':24s} {'added ms':>9s} {'x bare start':>13s} {'cpu x':>6s}"
    print(f"\n{header}   (target <= {TARGET_RATIO}x)")
    ratios = {}
    rows = [(label, f"gitaudit git {label}", f"git {label}") for label in COMMANDS]
    for label, wrapped, plain in [*rows, ("status (shim)", "shim status", "git status")]:
        added = median[wrapped] - median[plain]
        cpu_ratio = (cpu[wrapped] - cpu[plain]) / bare_cpu
        print(f"{label:24s} {added:9.2f} {added / bare:13.2f} {cpu_ratio:6.2f}")
        if label in COMMANDS:
            ratios[label] = added / bare
    worst = max(ratios.values())
    verdict = "within" if worst <= TARGET_RATIO else "OVER"
    print(f"\nworst ratio {worst:.2f}x: {verdict} the {TARGET_RATIO}x target")
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the measurement N times")
    parser.add_argument("--importtime", action="store_true", help="also show import costs")
    args = parser.parse_args()
    git = shutil.which("git") or "git"
    compileall.compile_dir(str(ROOT / "gitaudit"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="gitaudit-bench-") as name:
        tmp = Path(name)
        env = environment(tmp)
        repo = tmp / "repo"
        subprocess.run([git, "init", "-q", str(repo)], env=env, check=True)
        subprocess.run([git, "commit", "-q", "--allow-empty", "-m", "init"], cwd=repo, env=env,
                       check=True)
        wrapper = console_script(tmp)
        cases: dict[str, list[str]] = {"python -I -c pass": [sys.executable, "-I", "-c", "pass"]}
        for label, command in COMMANDS.items():
            cases[f"git {label}"] = [git, *command]
            cases[f"gitaudit git {label}"] = [*wrapper, "git", *command]
        cases["shim status"] = [*shim(tmp), *COMMANDS["status"]]
        for argv in cases.values():  # warm up caches and byte-code once
            timed(argv, repo, env)
        print(f"wrapper: {' '.join(wrapper)}   python: {sys.executable}   runs: {args.runs}")
        rounds: list[dict[str, float]] = []
        for number in range(args.rounds):
            if args.rounds > 1:
                print(f"\n== round {number + 1} of {args.rounds}")
            rounds.append(report(*measure(cases, args.runs, repo, env)))
        if args.rounds > 1:
            print(f"\nratio range over {args.rounds} rounds (target <= {TARGET_RATIO}x):")
            for label in COMMANDS:
                values = [ratios[label] for ratios in rounds]
                print(f"  {label:24s} {min(values):.2f}x .. {max(values):.2f}x")
        if args.importtime:
            importtime(wrapper, repo, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
