"""A real PostgreSQL server for the tests (pytest fixtures, imported by tests/conftest.py).

``pg_url`` (session) starts a throw-away PostgreSQL cluster with ``initdb`` and
``pg_ctl`` from PATH: trust authentication, listening on 127.0.0.1 only, on a
free port, no Unix socket. initdb refuses to run as root, so under root (CI
containers) the cluster runs as ``nobody`` with a data directory owned by it.
``pg_fresh_url`` (function) gives each test an empty database of its own.

Without ``initdb`` the fixtures fail with a message saying what to install:
PostgreSQL is part of the test matrix, never silently skipped.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "PASSWORD_GROUP",
    "PgServer",
    "pg_fresh_url",
    "pg_server",
    "pg_url",
    "throwaway_cluster",
]

_UNPRIVILEGED_USER = "nobody"
_SUPERUSER = "postgres"
_TEST_DATABASE = "gitaudit_test"
PASSWORD_GROUP = "password_login"


@dataclass(frozen=True)
class PgServer:
    """A running test cluster: where it listens and how to reach it as superuser."""

    host: str
    port: int
    data_dir: Path

    def url(
        self, database: str, driver: str = "postgresql+psycopg", user: str = _SUPERUSER
    ) -> str:
        """SQLAlchemy URL of ``database`` on this server, as ``user`` (the superuser)."""
        return f"{driver}://{user}@{self.host}:{self.port}/{database}"

    def login_user(self, *member_of: str, options: str = "") -> str:
        """Create a new login user (a member of the roles ``member_of``); its name."""
        name = f"u_{uuid.uuid4().hex[:12]}"
        groups = f" IN ROLE {', '.join(member_of)}" if member_of else ""
        self.admin(f"CREATE ROLE {name} LOGIN {options}{groups}")
        return name

    def admin(self, sql: str, database: str = "postgres") -> None:
        """Run one statement as superuser in autocommit mode (CREATE DATABASE, ...)."""
        import psycopg

        conninfo = f"host={self.host} port={self.port} user={_SUPERUSER} dbname={database}"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.encode())


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"PostgreSQL's {name} is not on PATH: the store tests need a PostgreSQL 15 server "
            "binary (Debian/Ubuntu: apt-get install postgresql, then add "
            "/usr/lib/postgresql/15/bin to PATH)",
            pytrace=False,
        )
    return path


def _run_as() -> dict[str, Any]:
    """subprocess keyword arguments dropping root privileges (initdb/postgres refuse root)."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(_UNPRIVILEGED_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], cwd: Path, what: str) -> None:
    result = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, check=False, **_run_as()
    )
    if result.returncode != 0:
        pytest.fail(
            f"{what} failed ({result.returncode}): {' '.join(args)}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}",
            pytrace=False,
        )


def _init_cluster(base: Path) -> tuple[Path, int]:
    data = base / "data"
    _run(
        [_tool("initdb"), "-D", str(data), "-U", _SUPERUSER, "-A", "trust", "-E", "UTF8",
         "--no-locale", "--no-sync"],
        base,
        "initdb",
    )
    port = _free_port()
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(port),
        "unix_socket_directories": "''",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "100",
    }
    with (data / "postgresql.conf").open("a") as conf:
        conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
    # Members of PASSWORD_GROUP must log in with a password (tests of the password file,
    # PGPASSFILE and services); everyone else is trusted.
    hba = data / "pg_hba.conf"
    hba.write_text(
        f"host all +{PASSWORD_GROUP} 127.0.0.1/32 scram-sha-256\n" + hba.read_text()
    )
    return data, port


def _start(base: Path, data: Path) -> None:
    _run(
        [_tool("pg_ctl"), "start", "-D", str(data), "-l", str(base / "server.log"), "-w",
         "-t", "60"],
        base,
        "pg_ctl start (see server.log in the data directory's parent)",
    )


def _stop(base: Path, data: Path) -> None:
    subprocess.run(
        [_tool("pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w", "-t", "60"],
        cwd=base,
        capture_output=True,
        check=False,
        **_run_as(),
    )


def _wait_ready(server: PgServer, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            server.admin("SELECT 1")
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        else:
            return


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[PgServer]:
    """Run a new PostgreSQL cluster until the block ends (tests, and benchmarks too)."""
    _tool("initdb")
    run_as = _run_as()
    # Under root the cluster runs as nobody, who must reach the data directory:
    # /tmp is world-traversable, a TMPDIR under /root is not.
    base = Path(tempfile.mkdtemp(prefix="gitaudit-pg-", dir="/tmp" if run_as else None))
    if run_as:
        os.chown(base, run_as["user"], run_as["group"])
    try:
        data, port = _init_cluster(base)
        _start(base, data)
        try:
            server = PgServer("127.0.0.1", port, data)
            _wait_ready(server)
            yield server
        finally:
            _stop(base, data)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL cluster for this test session (one per xdist worker)."""
    with throwaway_cluster() as server:
        server.admin(f"CREATE DATABASE {_TEST_DATABASE}")
        server.admin(f"CREATE ROLE {PASSWORD_GROUP} NOLOGIN")
        yield server


@pytest.fixture(scope="session")
def pg_url(pg_server: PgServer) -> str:
    """``postgresql+psycopg://`` URL of a database on the session's test server."""
    return pg_server.url(_TEST_DATABASE)


@pytest.fixture
def pg_fresh_url(pg_server: PgServer) -> Iterator[str]:
    """URL of a new, empty database for one test (dropped afterwards)."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    pg_server.admin(f"CREATE DATABASE {name}")
    yield pg_server.url(name)
    pg_server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
