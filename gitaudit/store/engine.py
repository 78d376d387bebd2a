"""Opening the store: engines, SQLite settings, migrations, error translation, the Store handle.

SQLite connections run in WAL mode (readers never block the writer) with
``synchronous=FULL``: in WAL mode NORMAL may lose the last commits on power
loss, and ingest deletes a spool segment as soon as its events are committed,
so a commit must be durable when it returns. It costs one fsync per append
batch. ``busy_timeout`` makes concurrent writers wait instead of failing,
``foreign_keys`` enforces that records belong to a registered chain, and the
driver's own transaction handling is replaced by explicit ``BEGIN`` /
``BEGIN IMMEDIATE`` (writers take the write lock before reading the chain head).

Every database error leaves this package as :class:`StoreError` (message and
hint, password hidden), raised from the original exception.

A reader (``gitaudit log``) imports only SQLAlchemy and the query layer: the chain
writer, verification, checkpoints and partitions are imported by the methods that use
them, and the schema check is one ``SELECT`` of the Alembic version table beside the
head revision read from the revision files (Alembic itself is imported only to migrate).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import URL, Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import (
    ArgumentError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from gitaudit.errors import ConfigError, GitauditError, StoreError
from gitaudit.store.reader import (
    EventFilter,
    chain_after,
    chain_heads,
    count_events,
    count_matching,
    iter_bodies,
    iter_events,
    query_events,
)
from gitaudit.store.search import is_syntax_error, syntax_error

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime, timedelta

    from gitaudit.config import Settings
    from gitaudit.quarantine import Quarantine
    from gitaudit.store.checkpoint_store import WrittenCheckpoint
    from gitaudit.store.checkpoint_verify import CheckpointReport, LoadedNote
    from gitaudit.store.checkpoints import SignerKey, VerifierKey
    from gitaudit.store.integrity import ArchiveReport, VerifyReport
    from gitaudit.store.partitions import Partition
    from gitaudit.store.rekey import ChainRekey, RekeyReport
    from gitaudit.store.retention import Recorder, RetentionOptions, RetentionReport
    from gitaudit.store.subjects import ForgetPreview
    from gitaudit.store.writer import AppendResult, ChainWriter

BUSY_TIMEOUT_MS: Final = 30_000
# SQLite planner statistics: re-ANALYZE on close after this many appended rows, sampling
# about this many rows per index (PRAGMA analysis_limit), so it takes milliseconds.
ANALYZE_AFTER: Final = 10_000
ANALYSIS_LIMIT: Final = 1000
PG_CONNECT_TIMEOUT_S: Final = 10
# Execution option read by the SQLite "begin" hook: "immediate" for writers.
BEGIN_OPTION: Final = "gitaudit_begin"
# pg_advisory_xact_lock key serializing concurrent migrations ("gitaudit" in ASCII).
MIGRATION_LOCK_KEY: Final = 0x67697461756469
APPEND_ONLY_MARK: Final = "append-only"
# Failures of the store itself, not of a record: an append failing with one of these is
# retried later as a whole; any other failure is narrowed down to the record that causes it.
ENVIRONMENT_ERRORS: Final = (
    GitauditError,
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    sqlite3.OperationalError,
    OSError,
    MemoryError,
)


def redacted(url: str | URL) -> str:
    """The URL as safe to show: password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return _masked_userinfo(str(url))


def _masked_userinfo(text: str) -> str:
    """``text`` with any password between ``://user:`` and ``@`` hidden (for URLs that
    SQLAlchemy cannot parse, whose own error message would repeat them in full)."""
    scheme, sep, rest = text.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not (sep and at):
        return text
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"


# --- error translation -------------------------------------------------------------------


def _sqlite_error(text_: str, where: str) -> StoreError | None:
    lowered = text_.lower()
    if "file is not a database" in lowered or "malformed" in lowered:
        return StoreError(
            f"{where} is not a usable SQLite database ({text_})",
            "the file is corrupt or not a gitaudit store: restore it from a backup, "
            "or point GITAUDIT_DATABASE_URL at another file",
        )
    if "unable to open database file" in lowered:
        return StoreError(
            f"cannot open SQLite store {where}",
            "check that its directory exists and is writable by this user",
        )
    if "readonly database" in lowered or "read-only" in lowered:
        return StoreError(
            f"SQLite store {where} is read-only for this user",
            "fix the permissions of the file and its directory (the -wal and -shm files too)",
        )
    if "database is locked" in lowered or "database is busy" in lowered:
        return StoreError(
            f"SQLite store {where} stayed locked for {BUSY_TIMEOUT_MS // 1000}s",
            "another process holds a long write transaction; retry, or find it with fuser",
        )
    return None


def _postgres_error(text_: str, where: str) -> StoreError | None:
    lowered = text_.lower()
    refused = ("password authentication failed", "no pg_hba.conf entry", "no password supplied")
    if any(mark in lowered for mark in refused):
        return StoreError(
            f"PostgreSQL at {where} refused the login ({text_})",
            "check the user in GITAUDIT_DATABASE_URL, its password (in the file named by "
            "GITAUDIT_DATABASE_PASSWORD_FILE, in PGPASSFILE or a libpq service) and the "
            "server's pg_hba.conf",
        )
    if "database" in lowered and "does not exist" in lowered:
        return StoreError(
            f"the PostgreSQL database of {where} does not exist",
            "create it (createdb) or fix the database name in GITAUDIT_DATABASE_URL",
        )
    connect_marks = (
        "connection refused",
        "could not connect",
        "connection failed",
        "timeout expired",
    )
    if any(mark in lowered for mark in connect_marks):
        return StoreError(
            f"cannot connect to PostgreSQL at {where}",
            "check that the server is running and reachable, and the host/port in "
            "GITAUDIT_DATABASE_URL",
        )
    return None


def store_error(exc: BaseException, action: str, url: str) -> StoreError:
    """An operator-facing StoreError for a database failure while doing ``action``."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = detail[0] if detail else type(exc).__name__
    where = redacted(url)
    if APPEND_ONLY_MARK in first:
        return StoreError(
            f"{action} refused: the audit store is append-only ({first})",
            "records are never changed or deleted; retention is the one sanctioned deleter",
        )
    specific = _sqlite_error(first, where) if url.startswith("sqlite") else _postgres_error(
        first, where
    )
    return specific or StoreError(
        f"{action} failed on {where}: {first}",
        "if gitaudit was upgraded, run `gitaudit db upgrade`; otherwise report this error",
    )


@contextlib.contextmanager
def translate_errors(action: str, url: str) -> Iterator[None]:
    """Turn SQLAlchemy / driver / OS errors raised inside into :class:`StoreError`."""
    try:
        yield
    except GitauditError:
        raise
    except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
        raise store_error(exc, action, url) from exc


# --- engines -----------------------------------------------------------------------------


def _set_wal(cursor: sqlite3.Cursor) -> None:
    """Switch to WAL, retrying while another process holds the lock during its own switch."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.fetchall()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        else:
            return


def _on_sqlite_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _on_sqlite_begin)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _set_wal(cursor)
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _on_readonly_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    """A read-only connection: no journal mode switch, no write, not even by mistake."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA query_only = ON")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(BEGIN_OPTION) == "immediate"
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _normalized_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise StoreError(
            f"invalid database URL {redacted(url)!r}: not of the form dialect+driver://...",
            "use sqlite:////absolute/path/audit.db or postgresql+psycopg://user@host/db",
        ) from exc
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and (parsed.database or "").startswith("~"):
        parsed = parsed.set(database=str(Path(str(parsed.database)).expanduser()))
    return parsed


def read_password_file(path: str) -> str:
    """The password in ``path`` (surrounding whitespace dropped); ConfigError when the file is
    readable by its group or others, unreadable, or empty."""
    try:
        mode = os.stat(path).st_mode
        if mode & 0o077:
            raise ConfigError(
                f"database password file {path} is readable by its group or others "
                f"(mode {mode & 0o777:04o}); gitaudit refuses to use it",
                f"run `chmod 600 {path}` (owned by the user gitaudit runs as)",
            )
        with open(path, encoding="utf-8") as handle:
            password = handle.read().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read database password file {path}: {exc.strerror or exc}",
            "make it readable by this user or unset GITAUDIT_DATABASE_PASSWORD_FILE",
        ) from exc
    if not password:
        raise ConfigError(
            f"database password file {path} is empty",
            "write the PostgreSQL password into it, or unset GITAUDIT_DATABASE_PASSWORD_FILE",
        )
    return password


def database_url(settings: Settings) -> str:
    """The configured store URL, with the password of ``database_password_file`` put in.

    The result holds the password: show it only through :func:`redacted`. A URL that
    already carries a password and a password file is a ConfigError (which one?).
    """
    url = settings.effective_database_url
    if settings.database_password_file is None:
        return url
    parsed = _normalized_url(url)
    if parsed.password is not None:
        raise ConfigError(
            "the database URL carries a password and database_password_file is set too",
            "remove the password from GITAUDIT_DATABASE_URL (keep it in the file only)",
        )
    password = read_password_file(settings.database_password_file)
    return parsed.set(password=password).render_as_string(hide_password=False)


def _sqlite_engine(parsed: URL) -> Engine:
    engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _readonly_sqlite_engine(parsed: URL, path: Path) -> Engine:
    """An engine that only reads the SQLite file ``path`` (``mode=ro``).

    No ``-shm`` file means no process has the database open in WAL mode: with no
    commits waiting in a ``-wal`` either, it is opened ``immutable=1`` and SQLite
    reads the main file alone, creating nothing beside it (a WAL database could
    not be opened otherwise in a read-only directory). A non-empty ``-wal``
    without a ``-shm`` needs one created to be read: where the directory is
    read-only that is impossible, and the store is refused rather than shown
    without those commits.
    """
    where = redacted(parsed)
    wal = Path(f"{path}-wal")
    wal_pending = wal.exists() and wal.stat().st_size > 0
    no_shm = not Path(f"{path}-shm").exists()
    immutable = no_shm and not wal_pending
    if no_shm and wal_pending and not os.access(path.parent, os.W_OK):
        raise StoreError(
            f"SQLite store {where} is read-only and its write-ahead log {wal} holds commits "
            "that cannot be read without a -shm file",
            "copy the store, its -wal and -shm files to a writable directory, or make a "
            f"consistent copy where it is written with `sqlite3 {path} '.backup copy.db'`",
        )
    uri = f"{path.absolute().as_uri()}?mode=ro{'&immutable=1' if immutable else ''}"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
        )

    engine = create_engine(parsed, creator=connect)
    event.listen(engine, "connect", _on_readonly_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _postgresql_engine(parsed: URL) -> Engine:
    args = {} if "connect_timeout" in parsed.query else {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    return create_engine(parsed, pool_pre_ping=True, connect_args=args)


_ENGINES: Final[dict[str, Callable[[URL], Engine]]] = {
    "sqlite": _sqlite_engine,
    "postgresql": _postgresql_engine,
}


def create_store_engine(url: str, *, read_only: bool = False) -> Engine:
    """An Engine for ``url`` (SQLite or PostgreSQL) with gitaudit's connection settings.

    ``postgresql://`` means psycopg 3; a SQLite path starting with ``~`` is expanded.
    ``read_only`` opens a SQLite file with ``mode=ro`` (see :func:`_readonly_sqlite_engine`).
    """
    parsed = _normalized_url(url)
    path = sqlite_file(url) if read_only else None
    if path is not None:
        return _readonly_sqlite_engine(parsed, path)
    backend = parsed.get_backend_name()
    factory = _ENGINES.get(backend)
    if factory is None:
        raise StoreError(
            f"unsupported database {backend!r} in {redacted(url)}",
            "gitaudit stores events in SQLite (sqlite:///...) or PostgreSQL "
            "(postgresql+psycopg://...)",
        )
    try:
        return factory(parsed)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise StoreError(
            f"cannot use database URL {redacted(url)}: {exc}",
            "use sqlite:///... or postgresql+psycopg://... (psycopg 3)",
        ) from exc


@contextlib.contextmanager
def owner_needed(hint: str) -> Iterator[None]:
    """A StoreError saying the login lacks a right (not the owner, permission denied) is
    raised again with ``hint``: what to run as whom."""
    try:
        yield
    except StoreError as exc:
        if "permission denied" not in exc.message and "must be owner" not in exc.message:
            raise
        raise StoreError(exc.message, hint) from exc


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction (SQLite: BEGIN IMMEDIATE), committed on exit."""
    with engine.connect() as conn:
        conn.execution_options(**{BEGIN_OPTION: "immediate"})
        with conn.begin():
            yield conn


@contextlib.contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction whose queries all see the same state."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


# --- migrations --------------------------------------------------------------------------


def migrations_dir() -> Path:
    """The Alembic environment: bundled in the wheel, or ``migrations/`` of a checkout."""
    package = Path(__file__).resolve().parent.parent
    bundled = package / "_migrations"
    return bundled if bundled.is_dir() else package.parent / "migrations"


def _alembic_config(conn: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("path_separator", "os")
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


_REVISION_LINE: Final = re.compile(
    r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:\"([^\"]*)\"|'([^']*)'|None)", re.MULTILINE
)


def head_revision() -> str | None:
    """The newest revision this version of gitaudit ships.

    Read from the revision files' ``revision`` / ``down_revision`` lines without
    importing Alembic (~60 ms): every reader checks the schema on start. Anything
    unusual there (several heads, a tuple of down revisions) asks Alembic.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (migrations_dir() / "versions").glob("*.py"):
        found = {m.group(1): m.group(2) or m.group(3) for m in _REVISION_LINE.finditer(
            path.read_text(encoding="utf-8"))}
        if "revision" not in found or not found["revision"]:
            return _alembic_head()
        revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else _alembic_head()


def _alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    head: str | None = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at (None: never migrated), read with one SELECT.

    Every reader asks on start, so the common case is that one statement; only when it
    fails is the catalog asked whether the version table is missing (never migrated:
    None) or the failure is real (a locked or broken store: raised).
    """
    try:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except (OperationalError, ProgrammingError):
        conn.rollback()  # PostgreSQL: the failed statement aborted the transaction
        if inspect(conn).has_table("alembic_version"):
            raise
        return None
    return str(versions[0]) if len(versions) == 1 else None


def _upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.util import CommandError

    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        try:
            command.upgrade(_alembic_config(conn), "head")
        except CommandError as exc:
            raise StoreError(
                f"cannot migrate the store schema: {exc}",
                "the database was migrated by a newer gitaudit; upgrade gitaudit",
            ) from exc


def ensure_schema(engine: Engine, url: str, *, upgrade: bool) -> None:
    """Bring the schema to head (``upgrade``) or check it is there; StoreError otherwise."""
    with translate_errors("opening the store", url):
        with engine.connect() as conn:
            current = current_revision(conn)
        head = head_revision()
        if current == head:
            return
        if not upgrade:
            raise StoreError(
                f"the store at {redacted(url)} is at schema revision {current}, not {head}",
                "run `gitaudit db upgrade`",
            )
        _upgrade(engine)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite store; None for PostgreSQL, ``:memory:`` or a SQLite URI filename."""
    parsed = _normalized_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if str(parsed.database).startswith("file:"):
        return None  # a SQLite URI filename: left as given
    return Path(str(parsed.database))


def missing_store_error(path: Path, url: str) -> StoreError:
    """Why a reader found no SQLite store at ``path``, and what to do."""
    folder = path.parent
    if not folder.exists():
        why = f"its directory {folder} does not exist"
    elif not folder.is_dir():
        why = f"{folder} is not a directory"
    else:
        why = "the file does not exist"
    return StoreError(
        f"no audit store at {redacted(url)}: {why}",
        "check GITAUDIT_DATABASE_URL (unset: $XDG_DATA_HOME/gitaudit/audit.db); nothing was "
        "recorded there yet, or create an empty store with `gitaudit db upgrade`",
    )


def ensure_sqlite_directory(url: str) -> None:
    """Create the directory of a SQLite store file (mode 0700) if it is missing."""
    path = sqlite_file(url)
    if path is None:
        return
    folder = path.parent
    with translate_errors(f"creating the store directory {folder}", url):
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise StoreError(
                f"cannot create the store directory {folder}: {exc.filename} is not a directory",
                "point GITAUDIT_DATABASE_URL at a file in a directory, "
                "e.g. sqlite:////var/lib/gitaudit/audit.db",
            ) from exc


@dataclass(frozen=True)
class Upgrade:
    """What ``gitaudit db upgrade`` did: the revisions before and after, partitions made."""

    before: str | None  # None: a new store
    after: str | None
    partitions: list[str]


def upgrade_store(url: str) -> Upgrade:
    """Apply every pending Alembic revision to the store at ``url`` (``gitaudit db upgrade``),
    then create the PostgreSQL partitions ahead.

    A missing directory of a SQLite store is created (mode 0700).
    """
    ensure_sqlite_directory(url)
    engine = create_store_engine(url)
    try:
        with translate_errors("opening the store", url), engine.connect() as conn:
            before = current_revision(conn)
        ensure_schema(engine, url, upgrade=True)
        return Upgrade(before, head_revision(), _ensure_partitions(engine, url))
    finally:
        engine.dispose()


def migrate(url: str) -> list[str]:
    """:func:`upgrade_store`; the names of the partitions it created."""
    return upgrade_store(url).partitions


def _ensure_partitions(engine: Engine, url: str) -> list[str]:
    if engine.dialect.name != "postgresql":
        return []
    from gitaudit.store.partitions import ensure_partitions

    with translate_errors("creating partitions", url), engine.begin() as conn:
        return ensure_partitions(conn)


# --- the Store handle --------------------------------------------------------------------


class Store:
    """The audit store: append to this writer's chain, query, verify.

    Open it with :meth:`open` or :meth:`from_settings`; close it with
    :meth:`close` or use it as a context manager.

    ``quarantine`` builds the ``audit.rejected`` record stored in place of a
    record the store cannot take (made on first need; by default with the
    default sanitizer and source ``cli``).
    """

    def __init__(
        self,
        engine: Engine,
        url: str,
        chain_id: str,
        chain_key: bytes | None,
        quarantine: Callable[[], Quarantine] | None = None,
    ) -> None:
        self._engine = engine
        self._url = url
        self._chain_key = chain_key
        self._quarantine_factory = quarantine
        self._quarantine: Quarantine | None = None
        if not chain_id:  # checked here too: the writer is made on the first append
            raise ConfigError("chain_id must not be empty", "set GITAUDIT_CHAIN_ID or unset it")
        self._chain_id = chain_id
        self._chain_writer: ChainWriter | None = None
        self._appended = 0
        self.read_only = False

    @classmethod
    def open(
        cls,
        url: str,
        *,
        chain_id: str,
        chain_key: bytes | None = None,
        migrate: bool = True,
        read_only: bool = False,
    ) -> Store:
        """Connect to ``url``; migrate the schema to head first unless ``migrate`` is False.

        ``read_only``: a SQLite file is opened ``mode=ro`` and never migrated (its schema
        is only checked); :meth:`append` then fails.
        """
        engine = create_store_engine(url, read_only=read_only)
        try:
            ensure_schema(engine, url, upgrade=migrate and not read_only)
        except BaseException:
            engine.dispose()
            raise
        store = cls(engine, url, chain_id, chain_key)
        store.read_only = read_only
        return store

    @classmethod
    def from_settings(
        cls, settings: Settings, source: str = "cli", *, reader: bool = False, create: bool = True
    ) -> Store:
        """Open the configured store; a missing SQLite file is created (and its directory,
        mode 0700) unless ``create`` is False, then it is a StoreError and nothing is made.

        ``reader``: a SQLite file this user cannot write (or whose directory it cannot
        write: an archived copy) is opened read-only, its schema checked, not migrated.

        ``source`` is the source of the ``audit.rejected`` records it stores in place of
        records it cannot take (``daemon`` in the daemon's writer).
        """
        url = database_url(settings)
        path = sqlite_file(url)
        read_only = False
        if path is not None and path.is_file():
            writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
            read_only = reader and not writable
        elif path is not None and not create:
            raise missing_store_error(path, url)
        else:
            ensure_sqlite_directory(url)
        from gitaudit.store.keys import load_chain_key

        key = load_chain_key(settings.chain_key_file)
        store = cls.open(
            url, chain_id=settings.effective_chain_id, chain_key=key, read_only=read_only
        )

        def quarantine() -> Quarantine:
            from gitaudit.quarantine import Quarantine

            return Quarantine.from_settings(settings, source)

        store._quarantine_factory = quarantine
        return store

    @property
    def url(self) -> str:
        """The store's URL, password hidden."""
        return redacted(self._url)

    @property
    def chain_id(self) -> str:
        """The chain :meth:`append` extends."""
        return self._chain_id

    @property
    def _writer(self) -> ChainWriter:
        if self._chain_writer is None:
            from gitaudit.store.integrity import ChainHasher
            from gitaudit.store.writer import ChainWriter

            hasher = ChainHasher(self._chain_key)
            self._chain_writer = ChainWriter(self._chain_id, hasher, self._stand_in)
        return self._chain_writer

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    def append(self, events: Sequence[dict[str, Any]]) -> AppendResult:
        """Append validated records to this writer's chain in one transaction.

        Assigns ``chain_id``, ``seq``, ``prev_hash`` and ``hash``; records whose
        id is already stored are skipped and counted as duplicates. No record
        stops the others: one the store cannot take is replaced by an
        ``audit.rejected`` record (``AppendResult.replaced``); when the database
        refuses a batch for a reason other than the store's own state
        (:data:`ENVIRONMENT_ERRORS`), the batch is split in halves, each in its
        own transaction, down to the record that fails alone. If the stand-in
        fails too, the store is at fault and the error is raised.
        """
        with translate_errors("appending events", self._url):
            return self._append_isolating(list(events))

    def _append_once(self, records: Sequence[dict[str, Any]]) -> AppendResult:
        with write_transaction(self._engine) as conn:
            result = self._writer.append(conn, records)
        self._writer.committed()
        self._appended += result.inserted
        return result

    def _append_isolating(self, records: list[dict[str, Any]]) -> AppendResult:
        try:
            return self._append_once(records)
        except ENVIRONMENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - narrowed to one record, then replaced
            if len(records) > 1:
                middle = len(records) // 2
                first = self._append_isolating(records[:middle])
                return first.then(self._append_isolating(records[middle:]), middle)
            stand_in = self._stand_in(records[0], exc)
            result = self._append_once([stand_in])
            from gitaudit.store.writer import AppendResult

            return AppendResult(
                result.inserted, result.duplicates, result.chain_id, result.positions,
                {0: stand_in},
            )  # fmt: skip

    def _stand_in(self, record: dict[str, Any], exc: BaseException) -> dict[str, Any]:
        """The ``audit.rejected`` record stored in place of ``record``."""
        if self._quarantine is None:
            from gitaudit.quarantine import Quarantine

            factory = self._quarantine_factory
            self._quarantine = factory() if factory is not None else Quarantine("cli")
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        reason = f"the store cannot take it: {type(exc).__name__}: {detail[0] if detail else ''}"
        return self._quarantine.event(record, stage="writer", reason=reason)

    def query(self, flt: EventFilter) -> list[dict[str, Any]]:
        """Events matching ``flt`` as full dicts, ordered by occurred_at, chain_id, seq."""
        with self.reading(flt) as conn:
            return query_events(conn, flt)

    def iter_query(self, flt: EventFilter) -> Iterator[dict[str, Any]]:
        """:meth:`query` as a stream (one snapshot throughout, constant memory)."""
        with self.reading(flt) as conn:
            yield from iter_events(conn, flt)

    def iter_bodies(self, flt: EventFilter) -> Iterator[str]:
        """:meth:`iter_query` as the stored canonical JSON text (``log --format jsonl``
        writes it through without parsing and re-encoding each event), identities revealed."""
        with self.reading(flt) as conn:
            yield from iter_bodies(conn, flt, reveal=True)

    def count_matching(self, flt: EventFilter) -> int:
        """How many events match ``flt`` (its limit ignored)."""
        with self.reading(flt) as conn:
            return count_matching(conn, flt)

    @contextlib.contextmanager
    def reading(self, flt: EventFilter | None = None) -> Iterator[Connection]:
        """A snapshot connection for the query layer (stats, trace, reports); database errors
        become StoreError, and ``--grep-syntax`` text the engine rejects a UsageError."""
        with translate_errors("querying events", self._url):
            try:
                with snapshot(self._engine) as conn:
                    yield conn
            except (SQLAlchemyError, sqlite3.Error) as exc:
                if flt is not None and flt.grep_raw and flt.grep and is_syntax_error(exc):
                    raise syntax_error(flt.grep, exc, self.dialect) from exc
                raise

    def forget(
        self,
        identity: str,
        *,
        follow_links: bool,
        confirm: Callable[[ForgetPreview], bool],
        record: Callable[[ForgetPreview], dict[str, Any]],
    ) -> tuple[ForgetPreview, bool] | None:
        """Forget the subject ``identity`` (see :mod:`gitaudit.store.subjects`): plan in a
        snapshot, ask ``confirm`` (no lock held meanwhile), then in one write transaction
        delete its keys and append ``record(preview)`` (the ``audit.subject_forgotten``
        event); then scrub the files. None when not confirmed; else the preview and
        whether the scrub completed."""
        from gitaudit.store import subjects

        with (
            owner_needed("run `gitaudit forget` as the owner of the store's tables (set "
                         "GITAUDIT_DATABASE_URL to that login): gitaudit_writer may create "
                         "subjects, not delete their keys"),
            translate_errors("forgetting a subject", self._url),
        ):  # fmt: skip
            with snapshot(self._engine) as conn:
                shown = subjects.preview(conn, identity, follow_links=follow_links)
            if not confirm(shown):
                return None
            with write_transaction(self._engine) as conn:
                subjects.forget(conn, shown, identity, follow_links)
                self._writer.append(conn, [record(shown)])
            self._writer.committed()
            self._appended += 1
            with self._engine.connect() as conn:
                scrubbed = subjects.scrub(conn.execution_options(isolation_level="AUTOCOMMIT"))
            return shown, scrubbed

    def rekey(
        self,
        record: Callable[[ChainRekey, str], dict[str, Any]],
        *,
        dry_run: bool = False,
        confirm: Callable[[RekeyReport], bool] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RekeyReport | None:
        """Rewrite the events stored before revision 0007 with subject tokens (see
        :mod:`gitaudit.store.rekey`); ``record(chain, rekey_id)`` builds each rewritten
        chain's ``audit.store_rekeyed`` record; ``confirm`` is asked after planning
        (None when it said no)."""
        from gitaudit.store.rekey import rekey

        with (
            owner_needed("run `gitaudit db rekey` as the owner of the store's tables "
                         "(--database-url or GITAUDIT_DATABASE_URL naming that login): it "
                         "rewrites records, which gitaudit_writer may not; nothing was changed "
                         "in the chain it stopped at"),
            translate_errors("re-keying the store", self._url),
        ):  # fmt: skip
            return rekey(self._engine, self._chain_key, record, dry_run=dry_run,
                         confirm=confirm, progress=progress)  # fmt: skip

    def verify(
        self, progress: Callable[[int, int], None] | None = None, jobs: int = 1
    ) -> VerifyReport:
        """Recompute every hash chain; ``progress(done, total)`` is called along the way.

        ``jobs`` > 1 checks chains (long ones in seq ranges) in that many processes, a store
        that retention has cut too (each chain from its accounted cut).
        """
        with translate_errors("verifying the store", self._url), snapshot(self._engine) as conn:
            if jobs > 1:
                from gitaudit.store.verify_parallel import verify_chains_parallel

                report = verify_chains_parallel(conn, self._url, self._chain_key, jobs, progress)
            else:
                from gitaudit.store.integrity import verify_chains

                report = verify_chains(conn, self._chain_key, progress)
            return report

    def checkpoint(self, key: SignerKey | None, now: datetime | None = None) -> WrittenCheckpoint:
        """State every chain's head now (signed with ``key`` unless None) and store it."""
        from gitaudit.store.checkpoint_store import store_identity, write_checkpoint

        with (
            translate_errors("writing a checkpoint", self._url),
            write_transaction(self._engine) as conn,
        ):
            return write_checkpoint(conn, store_identity(self._url), key, now)

    def verify_checkpoints(
        self,
        notes: Iterable[LoadedNote],
        key: VerifierKey | None,
        now: datetime,
        skew: timedelta,
    ) -> CheckpointReport:
        """Hold the store against checkpoints kept outside it (see checkpoint_verify)."""
        from gitaudit.store.checkpoint_verify import verify_checkpoints

        with translate_errors("verifying checkpoints", self._url), snapshot(self._engine) as conn:
            return verify_checkpoints(conn, notes, key, now, skew)

    def verify_archive(self, directory: str | Path) -> list[ArchiveReport]:
        """Verify retention's archived segments in ``directory`` against this store."""
        from gitaudit.store.integrity import verify_archive

        with translate_errors("verifying the archive", self._url), snapshot(self._engine) as conn:
            return verify_archive(conn, directory, self._chain_key)

    def expire(
        self,
        options: RetentionOptions,
        record: Recorder,
        progress: Callable[[int, int], None] | None = None,
    ) -> RetentionReport:
        """Run retention (see :mod:`gitaudit.store.retention`); ``record(phase, details)``
        stores each ``audit.retention`` record (through :meth:`append`)."""
        from gitaudit.store.retention import run_retention

        with translate_errors("running retention", self._url):
            return run_retention(self._engine, options, record, progress)

    def chain_after(self, chain_id: str, seq: int, limit: int) -> list[dict[str, Any]]:
        """The next ``limit`` events of chain ``chain_id`` after ``seq``, oldest first."""
        with translate_errors("reading a chain", self._url), snapshot(self._engine) as conn:
            return chain_after(conn, chain_id, seq, limit)

    def heads(self) -> dict[str, int]:
        """The highest ``seq`` of every chain, for ``EventFilter(after=...)``."""
        with translate_errors("reading chain heads", self._url), snapshot(self._engine) as conn:
            return chain_heads(conn)

    def ensure_partitions(self) -> list[str]:
        """Create the PostgreSQL partitions of this month and the next ones that are missing
        (the daemon: at start and daily); the names created. Nothing on SQLite."""
        return _ensure_partitions(self._engine, self._url)

    def partitions(self) -> list[Partition]:
        """The partitions of ``events`` (PostgreSQL), in range order; [] on SQLite."""
        from gitaudit.store.partitions import list_partitions

        with translate_errors("listing partitions", self._url), snapshot(self._engine) as conn:
            return list_partitions(conn)

    def init_roles(self) -> None:
        """Create the least-privilege roles (PostgreSQL; see :mod:`gitaudit.store.roles`)."""
        from gitaudit.store.roles import init_roles

        if self.dialect != "postgresql":
            raise StoreError(
                f"roles are a PostgreSQL feature; {self.url} is {self.dialect}",
                "point GITAUDIT_DATABASE_URL (or --database-url) at the PostgreSQL store",
            )
        with (
            owner_needed("run it as the owner of the store's tables, with CREATEROLE "
                         "(--database-url postgresql+psycopg://OWNER@HOST/DB), or have a DBA "
                         "apply `gitaudit db init-roles --print-sql`"),
            translate_errors("creating the roles", self._url),
            self._engine.begin() as conn,
        ):  # fmt: skip
            init_roles(conn)

    def count(self) -> int:
        """Number of stored events (all chains)."""
        with translate_errors("counting events", self._url), snapshot(self._engine) as conn:
            return count_events(conn)

    def close(self) -> None:
        """Release every connection; a SQLite store written through gets its planner
        statistics refreshed first (``PRAGMA optimize``, and a quick sampled ``ANALYZE``
        after :data:`ANALYZE_AFTER` appended rows or when it has none yet)."""
        try:
            if self._appended and self.dialect == "sqlite" and not self.read_only:
                self._optimize()
        finally:
            self._engine.dispose()

    def _optimize(self) -> None:
        with contextlib.suppress(SQLAlchemyError, sqlite3.Error), self._engine.connect() as conn:
            stale = self._appended >= ANALYZE_AFTER or conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first() is None or (
                conn.exec_driver_sql("SELECT 1 FROM sqlite_stat1 WHERE tbl = 'events'").first()
                is None)
            if stale:
                conn.exec_driver_sql(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
                conn.exec_driver_sql("ANALYZE")
            conn.exec_driver_sql("PRAGMA optimize")

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
