"""Retention: the expired prefix of each chain is archived, then deleted, and still verifies.

Every test runs on SQLite and PostgreSQL (the ``store``/``store_url`` fixtures).
Records age by ``recorded_at`` (the store's clock); instead of waiting, a run is
given a ``now`` in the future.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from gitaudit.config import Settings
from gitaudit.errors import ConfigError
from gitaudit.store import EventFilter, Store, verify_parallel
from gitaudit.store.archive import Archive, ArchiveError
from gitaudit.store.retention import (
    PAUSE_ENV,
    Policy,
    RetentionOptions,
    RetentionReport,
    recorder,
)
from gitaudit.store.tables import checkpoints, events, retention_grants
from tests.cli.helpers import isolated_env
from tests.store.helpers import REPO_ROOT, make_record, make_records

DAY = timedelta(days=1)


def expire(
    store: Store,
    archive: Path | None,
    *,
    days: int | None = None,
    patterns: tuple[tuple[str, int | None], ...] = (),
    later: timedelta = timedelta(0),
    batch: int = 3,
    dry_run: bool = False,
) -> RetentionReport:
    options = RetentionOptions(
        Policy(days, patterns),
        str(archive) if archive is not None else None,
        batch,
        dry_run,
        datetime.now(UTC) + later,
    )
    return store.expire(options, recorder(store, Settings(), "cli"))


def seqs(url: str, chain_id: str = "test-chain") -> list[int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(
                conn.scalars(
                    select(events.c.seq).where(events.c.chain_id == chain_id).order_by(events.c.seq)
                )
            )
    finally:
        engine.dispose()


def scalar(url: str, query: Any) -> Any:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(query)
    finally:
        engine.dispose()


def archived_seqs(directory: Path, chain_id: str = "test-chain") -> list[int]:
    found = []
    for manifest in Archive(directory).manifests(chain_id):
        path = Path(manifest["_path"]).parent / manifest["file"]
        with gzip.open(path, "rt") as lines:
            found += [json.loads(line)["record"]["seq"] for line in lines]
    return found


# --- policy --------------------------------------------------------------------------------


def test_longest_matching_pattern_wins() -> None:
    policy = Policy(30, (("*", 7), ("git.*", 90), ("git.push", None), ("audit.*", 1095)))
    assert policy.days_for("git.push") is None
    assert policy.days_for("git.fetch") == 90
    assert policy.days_for("conflict.detected") == 7
    assert policy.days_for("audit.retention") == 1095
    assert Policy(30).days_for("claude.request") == 30
    assert Policy(None, (("git.*", None),)).keeps_everything


def test_a_pattern_matching_no_operation_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"'gti\.\*' matches no operation"):
        Policy(None, (("gti.*", 90),))


def test_retention_table_and_variables_are_read(tmp_path: Path) -> None:
    from gitaudit import config

    file = tmp_path / "config.toml"
    file.write_text('[gitaudit]\nretention_days = 30\n\n[retention]\n"git.*" = 90\n'
                    '"audit.*" = "forever"\n')  # fmt: skip
    settings = config.load({"GITAUDIT_CLEANUP_BATCH_SIZE": "100"}, [file])
    assert settings.retention_days == 30
    assert settings.retention == (("git.*", 90), ("audit.*", None))
    from gitaudit.cli.config import shown

    assert shown(settings.retention) == "git.*=90,audit.*=forever"  # as `config show` prints it
    assert settings.cleanup_batch_size == 100
    assert settings.archive is True
    env = {"GITAUDIT_RETENTION": "claude.*=365", "GITAUDIT_RETENTION_DAYS": "0"}
    settings = config.load(env, [file])
    assert (settings.retention, settings.retention_days) == ((("claude.*", 365),), 0)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GITAUDIT_RETENTION_DAYS": "-1"}, "whole number of days"),
        ({"GITAUDIT_RETENTION_DAYS": "ninety"}, "whole number of days"),
        ({"GITAUDIT_RETENTION": "git.*"}, "PATTERN=DAYS"),
        ({"GITAUDIT_RETENTION": "git.*=soon"}, "'git.*': expected a whole number"),
        ({"GITAUDIT_CLEANUP_BATCH_SIZE": "0"}, "cleanup_batch_size must be positive"),
        ({"GITAUDIT_ARCHIVE": "maybe"}, "expected true/false"),
    ],
)
def test_bad_retention_settings_are_clear_errors(env: dict[str, str], message: str) -> None:
    from gitaudit import config

    with pytest.raises(ConfigError, match=message) as caught:
        config.load(env, [])
    assert "GITAUDIT_" in caught.value.hint


# --- the prefix rule -----------------------------------------------------------------------


def test_a_chain_loses_only_the_prefix_before_its_first_record_in_force(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    operations = ["git.push"] * 5 + ["conflict.detected"] + ["git.fetch"] * 4
    store.append([make_record(i, operation=op) for i, op in enumerate(operations)])
    patterns = (("git.*", 90), ("conflict.*", 365))

    report = expire(store, tmp_path / "archive", patterns=patterns, later=100 * DAY)

    (cut,) = [c for c in report.chains if c.chain_id == "test-chain"]
    assert (cut.first_seq, cut.upto_seq, cut.operations) == (1, 5, {"git.push": 5})
    # seq 7..10 (git.fetch, expired on their own) stay: the conflict at seq 6 is in force
    assert seqs(store_url)[:6] == [6, 7, 8, 9, 10, 11]
    assert archived_seqs(tmp_path / "archive") == [1, 2, 3, 4, 5]
    verified = store.verify()
    assert verified.ok, verified.first_problem
    assert verified.chains[0].first_seq == 6
    # the checkpoint left at the cut holds the hash the first retained record links to
    first_prev = scalar(store_url, select(events.c.prev_hash).where(events.c.seq == 6))
    mark = scalar(store_url, select(checkpoints.c.hash).where(checkpoints.c.seq == 5))
    assert first_prev == mark
    grants = scalar(store_url, select(func.count()).select_from(retention_grants))
    assert grants == 2  # batches of 3: up to seq 3, then up to seq 5
    assert [a.problem for a in store.verify_archive(tmp_path / "archive")] == [None]


def test_nothing_expires_without_a_policy(store: Store, tmp_path: Path) -> None:
    store.append(make_records(4))
    report = expire(store, tmp_path / "archive", later=10_000 * DAY)
    assert report.expired == 0
    assert Archive(tmp_path / "archive").manifests() == []


def test_zero_days_expires_everything_recorded_before_the_run(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    store.append(make_records(5))
    store.append(make_records(4, 5))

    report = expire(store, tmp_path / "archive", days=0)

    assert report.expired == 9
    assert sum(cut.deleted for cut in report.chains) == 9
    # only the run's own audit.retention records (written after it started) are left
    left = store.query(EventFilter())
    assert {event["operation"] for event in left} == {"audit.retention"}
    assert store.verify().ok, store.verify().first_problem
    # the chain goes on after its cut, linked to the checkpoint retention left
    store.append(make_records(2, 20))
    assert seqs(store_url)[-2:] == [12, 13]
    verified = store.verify()
    assert verified.ok, verified.first_problem
    assert [a.problem for a in store.verify_archive(tmp_path / "archive")] == [None]


def test_a_chain_expired_whole_goes_on_from_its_checkpoint(
    store_url: str, tmp_path: Path
) -> None:
    with Store.open(store_url, chain_id="host-a") as host:
        host.append(make_records(3))
    with Store.open(store_url, chain_id="retention") as runner:
        expire(runner, tmp_path / "archive", days=0)
        assert seqs(store_url, "host-a") == []
        verified = runner.verify()
        assert verified.ok, verified.first_problem
    with Store.open(store_url, chain_id="host-a") as host:
        host.append(make_records(2, 3))
        assert seqs(store_url, "host-a") == [4, 5]
        verified = host.verify()
        assert verified.ok, verified.first_problem


def test_dry_run_reports_the_same_counts_and_changes_nothing(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    store.append(make_records(7))
    before = store.count()

    dry = expire(store, tmp_path / "archive", days=30, later=40 * DAY, dry_run=True)

    assert store.count() == before + 1  # its audit.retention record, nothing deleted
    assert not (tmp_path / "archive").exists()
    assert scalar(store_url, select(func.count()).select_from(retention_grants)) == 0
    real = expire(store, tmp_path / "archive", days=30, later=40 * DAY)
    dry_counts = {c.chain_id: (c.count, c.operations) for c in dry.chains}
    # the real run also expires the dry run's own record
    assert real.chains[0].count == dry_counts["test-chain"][0] + 1
    assert dry_counts["test-chain"] == (7, dry.chains[0].operations)
    recorded = store.query(EventFilter(operations=("audit.retention",)))
    assert [r["details"]["phase"] for r in recorded] == ["started", "finished"]


def test_archive_off_deletes_without_archives(store: Store, tmp_path: Path) -> None:
    store.append(make_records(4))
    report = expire(store, None, days=0)
    assert report.expired == 4 and report.archive_dir is None
    verified = store.verify()
    assert verified.ok, verified.first_problem


def test_chain_directories_stay_inside_the_archive(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    for chain_id in ("..", ".", "../x", "a/b", "daemon@build-01.example.com"):
        assert archive.chain_dir(chain_id).parent == tmp_path
        assert archive.chain_dir(chain_id).name not in {".", ".."}
    assert archive.chain_dir("daemon@build-01").name == "daemon@build-01"


def test_two_runs_never_archive_at_once(store: Store, store_url: str, tmp_path: Path) -> None:
    store.append(make_records(4))
    killed = tmp_path / "archive" / "test-chain" / "segment.tmp-123.jsonl.gz"
    killed.parent.mkdir(parents=True)
    killed.write_bytes(b"half a segment of a run killed while writing it")
    with Archive(tmp_path / "archive").lock(), pytest.raises(ArchiveError, match="another"):
        expire(store, tmp_path / "archive", days=0)
    assert len(seqs(store_url)) == 4
    assert expire(store, tmp_path / "archive", days=0).expired == 4
    assert not killed.exists()


# --- verify: what accounts for a missing prefix ----------------------------------------------


def _forge(url: str, *statements: str) -> None:
    """Run statements as the database owner with the append-only triggers intact."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


GRANT = (
    "INSERT INTO retention_grants (chain_id, upto_seq, granted_at, reason) "
    "VALUES ('test-chain', {upto}, '2026-12-01 00:00:00', 'forged')"
)


def test_a_cut_made_through_a_forged_grant_is_missing(store: Store, store_url: str) -> None:
    store.append(make_records(8))
    _forge(
        store_url,
        GRANT.format(upto=999999999),
        "DELETE FROM events WHERE chain_id = 'test-chain' AND seq <= 5",
        "DELETE FROM checkpoints WHERE chain_id = 'test-chain' AND seq <= 5",
    )
    problem = store.verify().first_problem
    assert problem is not None
    assert (problem.kind, problem.chain_id, problem.seq) == ("missing", "test-chain", 1)
    assert "seq 1..5" in problem.message and "no retention grant ends at seq 5" in problem.message


def test_a_grant_at_the_cut_without_an_audit_retention_record_is_missing(
    store: Store, store_url: str
) -> None:
    store.append(make_records(5))
    store.append(make_records(3, 5))  # a checkpoint at seq 5 from this append's predecessor
    _forge(
        store_url,
        GRANT.format(upto=5),
        "DELETE FROM events WHERE chain_id = 'test-chain' AND seq <= 5",
    )
    problem = store.verify().first_problem
    assert problem is not None and problem.kind == "missing"
    assert "no audit.retention record" in problem.message


def test_a_tail_cut_through_a_forged_grant_is_reported(store: Store, store_url: str) -> None:
    for start in (0, 3, 6):
        store.append(make_records(3, start))  # checkpoints at seq 3, 6 and 9
    _forge(
        store_url,
        GRANT.format(upto=999999999),
        "DELETE FROM events WHERE chain_id = 'test-chain' AND seq > 6",
        "DELETE FROM checkpoints WHERE chain_id = 'test-chain' AND seq > 6",
    )
    problem = store.verify().first_problem
    assert problem is not None
    assert (problem.kind, problem.chain_id, problem.seq) == ("inserted", "test-chain", 999999999)


def test_a_forged_grant_alone_is_reported(store: Store, store_url: str) -> None:
    store.append(make_records(3))
    _forge(store_url, GRANT.format(upto=999999999))
    problem = store.verify().first_problem
    assert problem is not None
    assert (problem.kind, problem.seq) == ("inserted", 999999999)
    assert "no audit.retention record accounts for" in problem.message


def test_a_deletion_past_what_retention_recorded_is_missing(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    store.append([make_record(i, operation="git.push") for i in range(4)])
    store.append([make_record(i, operation="conflict.detected") for i in range(4, 8)])
    expire(store, tmp_path / "archive", patterns=(("git.*", 1),), later=2 * DAY)
    assert store.verify().ok
    _forge(
        store_url,
        GRANT.format(upto=6),
        "DELETE FROM events WHERE chain_id = 'test-chain' AND seq <= 6",
    )
    problem = store.verify().first_problem
    assert problem is not None and problem.kind == "missing"


# --- verify --jobs N on a store retention has cut -----------------------------------------------


def _in_parallel(store: Store, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """``(sequential, parallel)`` reports; the parallel one must really run in workers."""
    monkeypatch.setattr(verify_parallel, "MIN_RANGE_ROWS", 2)  # several ranges per chain
    ran: list[int] = []
    real = verify_parallel.verify_chains_parallel

    def spy(*args: Any, **kwargs: Any) -> Any:
        ran.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(verify_parallel, "verify_chains_parallel", spy)
    sequential, parallel = store.verify(), store.verify(jobs=2)
    assert ran == [1], "verify --jobs 2 fell back to one process"
    return sequential, parallel


def _verdicts(report: Any) -> list[tuple[Any, ...]]:
    return [
        (c.chain_id, c.records, c.first_seq, c.last_seq,
         None if c.problem is None else (c.problem.kind, c.problem.seq, c.problem.message))
        for c in report.chains
    ]  # fmt: skip


def test_jobs_verify_a_cut_store_in_parallel(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(store_url, chain_id="host-a") as host:
        host.append(make_records(3))  # expired whole: no records left, only its checkpoint
    with Store.open(store_url, chain_id="test-chain") as store:
        operations = ["git.push"] * 5 + ["conflict.detected"] + ["git.fetch"] * 6
        store.append([make_record(i, operation=op) for i, op in enumerate(operations)])
        expire(store, tmp_path / "archive", patterns=(("git.*", 90), ("conflict.*", 365)),
               later=100 * DAY)  # fmt: skip
        expire(store, tmp_path / "archive", patterns=(("*", 90), ("git.*", 90)),
               later=100 * DAY)  # fmt: skip
        assert seqs(store_url, "host-a") == [] and seqs(store_url)[0] > 1
        sequential, parallel = _in_parallel(store, monkeypatch)
    assert parallel.ok, parallel.first_problem
    assert _verdicts(parallel) == _verdicts(sequential)
    assert {c.chain_id: c.first_seq for c in parallel.chains}["test-chain"] == seqs(store_url)[0]


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        (  # the prefix cut through a grant no audit.retention record states
            (GRANT.format(upto=999999999),
             "DELETE FROM events WHERE chain_id = 'test-chain' AND seq <= 5",
             "DELETE FROM checkpoints WHERE chain_id = 'test-chain' AND seq <= 5"),
            ("missing", 1, "no retention grant ends at seq 5"),
        ),
        (  # a grant at the cut, but no record of the run
            (GRANT.format(upto=5),
             "DELETE FROM events WHERE chain_id = 'test-chain' AND seq <= 5"),
            ("missing", 1, "no audit.retention record"),
        ),
        (  # a forged grant alone
            (GRANT.format(upto=999999999),),
            ("inserted", 999999999, "no audit.retention record accounts for"),
        ),
    ],
)
def test_jobs_refuse_a_forged_grant_as_one_process_does(
    store: Store,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
    statements: tuple[str, ...],
    expected: tuple[str, int, str],
) -> None:
    store.append(make_records(5))
    store.append(make_records(5, 5))  # a checkpoint at seq 5
    _forge(store_url, *statements)
    sequential, parallel = _in_parallel(store, monkeypatch)
    assert _verdicts(parallel) == _verdicts(sequential)
    problem = parallel.first_problem
    assert problem is not None
    assert (problem.kind, problem.seq) == expected[:2] and expected[2] in problem.message


# --- verify --archive ----------------------------------------------------------------------


def test_verify_archive_names_a_changed_or_lost_segment(store: Store, tmp_path: Path) -> None:
    store.append(make_records(6))
    archive = tmp_path / "archive"
    expire(store, archive, days=0)
    (manifest,) = Archive(archive).manifests("test-chain")
    assert manifest["rows"] == 6 and manifest["first_seq"] == 1 and manifest["last_seq"] == 6
    segment = Path(manifest["_path"]).parent / manifest["file"]
    original = segment.read_bytes()

    lines = gzip.decompress(original).decode().splitlines()
    lines[2] = lines[2].replace("alice", "mallory").replace("bob", "mallory")
    segment.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    (report,) = [r for r in store.verify_archive(archive) if r.chain_id == "test-chain"]
    assert report.problem is not None and report.problem.kind == "modified"

    segment.unlink()
    (report,) = [r for r in store.verify_archive(archive) if r.chain_id == "test-chain"]
    assert report.problem is not None and report.problem.kind == "missing"
    assert "missing from the archive" in report.problem.message

    with pytest.raises(ArchiveError, match="no archive directory"):
        store.verify_archive(tmp_path / "nowhere")


# --- the command, and faults ------------------------------------------------------------------


def _env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    env = isolated_env(tmp_path, GITAUDIT_DATABASE_URL=url, GITAUDIT_CHAIN_ID="retention",
                       GITAUDIT_ARCHIVE_DIR=str(tmp_path / "archive"), **extra)  # fmt: skip
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def gitaudit(
    env: dict[str, str], *args: str, prefix: tuple[str, ...] = (), **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "gitaudit", *args],
        env=env, capture_output=True, text=True, timeout=120, **kwargs,
    )  # fmt: skip


def test_command_runs_and_prints_json(store: Store, store_url: str, tmp_path: Path) -> None:
    store.append(make_records(5))
    env = _env(tmp_path, store_url, GITAUDIT_RETENTION_DAYS="0")
    dry = gitaudit(env, "retention", "run", "--dry-run", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    summary = json.loads(dry.stdout)
    assert summary["dry_run"] is True and summary["expired"] == 5 and summary["deleted"] == 0
    done = gitaudit(env, "retention", "run")
    assert done.returncode == 0, done.stderr
    assert "test-chain: expired 5 record(s), seq 1..5" in done.stdout
    verified = gitaudit(env, "verify", "--archive", str(tmp_path / "archive"))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "archive test-chain: 1 segment(s), 5 record(s), seq 1..5: ok" in verified.stdout


def _unprivileged() -> tuple[str, ...]:
    """A prefix that makes root obey file permissions (no-op for other users)."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only directory cannot be enforced")
    return (setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--inh-caps=-all")


def _nothing_deleted(url: str, count: int) -> None:
    assert len(seqs(url)) == count
    assert scalar(url, select(func.count()).select_from(retention_grants)) == 0


def test_a_read_only_archive_directory_deletes_nothing(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    store.append(make_records(5))
    archive = tmp_path / "archive"
    archive.mkdir()
    archive.chmod(0o555)
    env = _env(tmp_path, store_url, GITAUDIT_RETENTION_DAYS="0")
    result = gitaudit(env, "retention", "run", prefix=_unprivileged())
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"cannot write the retention archive in {archive}" in result.stderr
    assert "nothing was deleted" in result.stderr
    assert "hint:" in result.stderr
    _nothing_deleted(store_url, 5)


def _fsize_limit(limit: int) -> Any:
    def limit_writes() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_writes


def test_a_full_archive_disk_deletes_nothing(store: Store, store_url: str, tmp_path: Path) -> None:
    # random, incompressible details: the segment outgrows the limit, SQLite's own files
    # (read, not written, before the archive is complete; -shm is 32 KiB) do not
    store.append([make_record(i, details={"blob": os.urandom(1500).hex()}) for i in range(60)])
    env = _env(tmp_path, store_url, GITAUDIT_RETENTION_DAYS="0")
    result = gitaudit(env, "retention", "run", preexec_fn=_fsize_limit(48 * 1024))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot write the retention archive" in result.stderr
    assert "File too large" in result.stderr or "No space" in result.stderr
    _nothing_deleted(store_url, 60)
    assert not list((tmp_path / "archive").rglob("*.jsonl.gz"))
    assert not list((tmp_path / "archive").rglob("*.tmp-*"))


def test_a_run_killed_between_batches_is_finished_by_the_next(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    store.append(make_records(40))
    env = _env(tmp_path, store_url, GITAUDIT_RETENTION_DAYS="0", GITAUDIT_CLEANUP_BATCH_SIZE="7")
    process = subprocess.Popen(
        [sys.executable, "-m", "gitaudit", "retention", "run"],
        env={**env, PAUSE_ENV: "600"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    line = process.stderr.readline()
    assert line.startswith("gitaudit: test: batch committed"), line + process.stderr.read()
    process.send_signal(signal.SIGKILL)
    process.wait()
    left = seqs(store_url)
    assert left[0] == 8  # one batch of 7 deleted
    # between the runs the store verifies: the started record accounts for the cut
    verified = gitaudit(env, "verify", "--no-ingest")
    assert verified.returncode == 0, verified.stdout + verified.stderr

    again = gitaudit(env, "retention", "run")
    assert again.returncode == 0, again.stderr
    assert seqs(store_url) == []
    assert archived_seqs(tmp_path / "archive") == list(range(1, 41))  # each once, none lost
    verified = gitaudit(env, "verify", "--archive", str(tmp_path / "archive"))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_only_granted_roles_may_call_the_expire_function(pg_fresh_url: str) -> None:
    import psycopg
    from sqlalchemy import make_url

    Store.open(pg_fresh_url, chain_id="test-chain").close()
    role = "gitaudit_test_someone"
    _forge(pg_fresh_url, f"DROP ROLE IF EXISTS {role}", f"CREATE ROLE {role} LOGIN")
    url = make_url(pg_fresh_url)
    conninfo = f"host={url.host} port={url.port} user={role} dbname={url.database}"
    try:
        with psycopg.connect(conninfo) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT gitaudit_expire('test-chain', 999999999, 'anyone')")
    finally:
        _forge(pg_fresh_url, f"DROP OWNED BY {role}", f"DROP ROLE {role}")
