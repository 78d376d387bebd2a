"""Sanitizer throughput over the labelled corpus, against trivial passes over the same text.

Run: .venv/bin/python bench/bench_sanitize.py [megabytes]

The corpus (every positive and negative, one per line) is dense with secrets:
most lines take a second rule pass. Plain git output, which has none, is also
measured: that is what the wrapper sees on almost every command.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gitaudit.sanitize import Redactor
from tests.corpus import fakes

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


def best_of(function: Callable[[str], object], text: str, rounds: int = 3) -> float:
    """Best wall time of ``rounds`` runs of ``function(text)``, in seconds."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        function(text)
        best = min(best, time.perf_counter() - start)
    return best


def report(title: str, text: str, redactor: Redactor) -> None:
    size = len(text.encode("utf-8", "surrogateescape")) / 1e6
    literal = re.compile("ghp_")
    candidates = {
        "str.replace of one literal": lambda t: t.replace("ghp_", "[REDACTED]"),
        "one simple re.sub": lambda t: literal.sub("[REDACTED]", t),
        "gitaudit.sanitize": redactor.redact_text,
    }
    print(f"{title}: {size:.1f} MB")
    seconds = {name: best_of(function, text) for name, function in candidates.items()}
    for name, took in seconds.items():
        print(f"  {name:28s} {size / took:9.1f} MB/s")
    sanitizer = seconds["gitaudit.sanitize"]
    for name in ("str.replace of one literal", "one simple re.sub"):
        print(f"  sanitizer is {sanitizer / seconds[name]:.0f}x slower than {name}")


def main() -> None:
    target = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
    redactor = Redactor()
    redactor.redact_text(fakes.corpus_text())  # compile every rule outside the timing
    corpus = fakes.corpus_text()
    corpus_text = corpus * max(1, int(target * 1e6 / len(corpus)))
    report("labelled corpus (secret-dense)", corpus_text, redactor)
    git_text = GIT_OUTPUT * max(1, int(target * 1e6 / len(GIT_OUTPUT)))
    report("git fetch/pull output (no secrets)", git_text, redactor)


if __name__ == "__main__":
    main()
