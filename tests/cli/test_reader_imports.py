"""What `gitaudit log` (and `stats`, `trace`) imports: the readers' start-up cost guarded by
their module set, not by timing (``bench/bench_startup.py`` measures it).

A reader needs the CLI parser (Typer), SQLAlchemy Core with the SQLite dialect, and the
query layer. Every gitaudit module on that path is listed here: a change that pulls in
another one (the writer, the verifier, the sanitizer, the whole CLI...) fails this test
and has to be listed deliberately, with its cost measured. Third-party packages that only
other commands need are never imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gitaudit.store import Store
from tests.cli.helpers import isolated_env
from tests.store.helpers import make_record

# every gitaudit module `gitaudit log --no-ingest` loads
READER_PATH = frozenset({
    "gitaudit", "gitaudit.__main__", "gitaudit.catalog", "gitaudit.config", "gitaudit.errors",
    "gitaudit.jsonfast", "gitaudit.limits", "gitaudit.paths",
    "gitaudit.cli", "gitaudit.cli.common", "gitaudit.cli.log", "gitaudit.cli.output",
    "gitaudit.cli.runner",
    "gitaudit.store", "gitaudit.store.engine", "gitaudit.store.keys", "gitaudit.store.reader",
    "gitaudit.store.search", "gitaudit.store.subjects", "gitaudit.store.tables",
})  # fmt: skip
# plus, without --no-ingest, what looks for spool segments waiting to be ingested
SPOOL_CHECK = frozenset({"gitaudit.store.pending", "gitaudit.transport",
                         "gitaudit.transport.spool"})  # fmt: skip
# packages (and subpackages) a reader never imports. pydantic is not among them: Typer
# (0.29, as installed) validates every command-line value through pydantic TypeAdapters;
# nor is cryptography: identities are stored as subject tokens, and showing one opens its
# AES-GCM seal (gitaudit.store.subjects imports it only then).
NEVER = (
    "alembic", "rich", "psycopg", "pygit2", "anthropic", "jinja2", "structlog",
    "watchfiles", "prometheus_client", "httpx", "mako", "git", "opentelemetry", "google",
    "orjson", "sqlalchemy.orm", "sqlalchemy.dialects.postgresql",
)  # fmt: skip


# runs `gitaudit ARGS...` as the console script does, then lists every module loaded
_RUN = (
    "import sys\n"
    "from gitaudit.__main__ import main\n"
    "code = main(sys.argv[1:])\n"
    "sys.stdout.flush()\n"
    "print('MODULES', *sorted(sys.modules), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _imported(env: dict[str, str], *args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", _RUN, *args], env=env, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout
    return set(done.stderr.rsplit("MODULES", 1)[1].split())


def _heavy(imported: set[str]) -> list[str]:
    return sorted(name for name in imported
                  if any(name == top or name.startswith(f"{top}.") for top in NEVER))  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with Store.open(url, chain_id="cli-test") as store:
        store.append([make_record(i) for i in range(8)])
    return isolated_env(tmp_path, GITAUDIT_DATABASE_URL=url)


@pytest.mark.parametrize("args", [("--no-ingest",), ()], ids=["no-ingest", "spool-checked"])
def test_log_imports_only_the_query_layer(env: dict[str, str], args: tuple[str, ...]) -> None:
    imported = _imported(env, "log", "--limit", "5", *args)
    ours = {name for name in imported if name.split(".")[0] == "gitaudit"}
    expected = READER_PATH if args else READER_PATH | SPOOL_CHECK
    assert ours == expected, (
        f"added: {sorted(ours - expected)}, gone: {sorted(expected - ours)}")  # fmt: skip
    assert not _heavy(imported)


@pytest.mark.parametrize(("args", "own"), [
    (("stats", "--no-ingest"), {"gitaudit.cli.stats", "gitaudit.store.stats"}),
    (("trace", "job-0", "--no-ingest"), {"gitaudit.cli.trace", "gitaudit.store.trace"}),
], ids=["stats", "trace"])  # fmt: skip
def test_stats_and_trace_add_only_their_own_modules(
    env: dict[str, str], args: tuple[str, ...], own: set[str]
) -> None:
    imported = _imported(env, *args)
    ours = {name for name in imported if name.split(".")[0] == "gitaudit"}
    assert ours == READER_PATH | own, (
        f"added: {sorted(ours - READER_PATH - own)}, gone: {sorted(READER_PATH | own - ours)}")
    assert not _heavy(imported)
