"""Sanitizer recall, false-positive rate and throughput, per kind, against the sanitizer before.

Run: .venv/bin/python bench/bench_sanitize.py [megabytes]

The baseline is the sanitizer as it was before the synthetic corpus existed
(``gitaudit/sanitize.py`` at commit ``BASELINE_COMMIT``, read with ``git
show`` and run from memory), measured on the same text in the same run, so the
ratio holds on a busy machine. Inputs:

- the labelled corpus (tests/corpus/*.jsonl, every positive and negative, one
  per line), dense with secrets: most lines take a second rule pass;
- the synthetic corpus (tests/corpus/synth.py), all of it, then each credential
  and look-alike kind on its own (a quarter of the size);
- plain git fetch/pull output, which is what the wrapper sees on almost every
  command.

Per kind it prints recall (positives) or false-positive rate (negatives) of
both sanitizers, and MB/s of both.
"""

from __future__ import annotations

import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gitaudit.sanitize import Redactor  # noqa: E402 - after the path is set
from tests.corpus import fakes, synth  # noqa: E402

#: main before the synthetic corpus and the rules it asked for (issue 8, defect 7).
BASELINE_COMMIT = "20aad1cb953aa15a75e6fc080c7d073316859445"

GIT_OUTPUT = (
    "remote: Enumerating objects: 1234, done.\n"
    "remote: Counting objects: 100% (1234/1234), done.\n"
    "Receiving objects: 100% (1234/1234), 5.67 MiB | 10.00 MiB/s, done.\n"
    "Resolving deltas: 100% (567/567), completed with 12 local objects.\n"
    "From https://github.com/org/repo\n"
    "   1a2b3c4d5e..6f7a8b9c0d  main       -> origin/main\n"
    " * [new branch]      fix/password-reset -> origin/fix/password-reset\n"
    "Updating 1a2b3c4d5e..6f7a8b9c0d\nFast-forward\n"
    " src/auth/token.py | 12 ++++++------\n 1 file changed, 6 insertions(+), 6 deletions(-)\n"
)


def baseline_redactor() -> Callable[[str], str]:
    """``Redactor().redact_text`` of the sanitizer at ``BASELINE_COMMIT``."""
    try:
        source = subprocess.run(
            ["git", "show", f"{BASELINE_COMMIT}:gitaudit/sanitize.py"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(
            f"cannot read the baseline sanitizer at {BASELINE_COMMIT[:12]} ({exc}); "
            "run the benchmark in a git checkout of gitaudit with its history"
        ) from exc
    module = types.ModuleType("baseline_sanitize")
    sys.modules[module.__name__] = module  # dataclass-free, but keep imports inside it sane
    exec(compile(source, "baseline_sanitize.py", "exec"), module.__dict__)  # noqa: S102
    redactor: Callable[[str], str] = module.Redactor().redact_text
    return redactor


def best_of(function: Callable[[str], object], text: str, rounds: int = 5) -> float:
    """Best CPU time of ``rounds`` runs of ``function(text)``, in seconds.

    CPU time of this process, not wall time: redaction is single-threaded, and on a
    shared machine the wall clock mostly measures the neighbours.
    """
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        function(text)
        best = min(best, time.process_time() - start)
    return best


def throughput(
    title: str, text: str, new: Callable[[str], str], old: Callable[[str], str]
) -> tuple[float, float]:
    size = len(text.encode("utf-8", "surrogateescape")) / 1e6
    new(text), old(text)  # compile every rule outside the timing
    new_best = old_best = float("inf")
    for _ in range(3):  # interleaved, so both see the same load
        new_best = min(new_best, best_of(new, text, 2))
        old_best = min(old_best, best_of(old, text, 2))
    new_mbs, old_mbs = size / new_best, size / old_best
    print(
        f"  {title:36s} {size:5.1f} MB  now {new_mbs:6.1f} MB/s  before {old_mbs:6.1f} MB/s"
        f"  ratio {new_mbs / old_mbs:4.2f}x"
    )
    return new_mbs, old_mbs


def _scaled(text: str, megabytes: float) -> str:
    return text * max(1, int(megabytes * 1e6 / len(text)))


def quality(new: Callable[[str], str], old: Callable[[str], str]) -> None:
    positives, negatives = synth.positives(), synth.negatives()
    for title, samples, what in (
        ("positives", positives, "recall"),
        ("negatives", negatives, "false-positive rate"),
    ):
        now, before = synth.score(new, samples), synth.score(old, samples)
        total, wrong = synth.totals(now)
        _, wrong_before = synth.totals(before)
        value = (lambda w, t: 1 - w / t) if what == "recall" else (lambda w, t: w / t)
        print(
            f"synthetic corpus, {title} ({total} records): {what} now "
            f"{value(wrong, total):.3f}, before {value(wrong_before, total):.3f}"
        )
        for kind, score in now.items():
            old_score = before[kind]
            print(
                f"  {kind:28s} {score.total:4d}  now {value(score.wrong, score.total):.3f}"
                f"  before {value(old_score.wrong, old_score.total):.3f}"
            )


def main() -> None:
    target = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
    new = Redactor().redact_text
    old = baseline_redactor()
    quality(new, old)
    print(f"\nthroughput (best CPU time of 6), against the sanitizer at {BASELINE_COMMIT[:12]}:")
    throughput("labelled corpus (secret-dense)", _scaled(fakes.corpus_text(), target), new, old)
    everything = synth.positives() + synth.negatives()
    synth_text = "\n".join(sample.text for sample in everything) + "\n"
    throughput("synthetic corpus (secret-dense)", _scaled(synth_text, target), new, old)
    throughput("git fetch/pull output (no secrets)", _scaled(GIT_OUTPUT, target), new, old)
    print("\nper kind (each kind's records only, scaled to 1/4 of the size):")
    kinds: dict[str, list[str]] = {}
    for sample in everything:
        kinds.setdefault(sample.kind, []).append(sample.text)
    for kind, texts in kinds.items():
        throughput(kind, _scaled("\n".join(texts) + "\n", target / 4), new, old)


if __name__ == "__main__":
    main()
