"""Store passwords: a 0600 file, libpq's PGPASSFILE and services; never a command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import make_url

from gitaudit import config
from gitaudit.errors import ConfigError, StoreError
from gitaudit.store import Store, migrate
from tests.pg import PASSWORD_GROUP, PgServer
from tests.store.helpers import REPO_ROOT, make_records

PASSWORD = "s3cret-Pw_for-tests"


@pytest.fixture
def password_user(pg_server: PgServer, pg_fresh_url: str) -> tuple[str, str]:
    """(URL without password, user name) of a user that must log in with PASSWORD."""
    migrate(pg_fresh_url)
    user = pg_server.login_user(PASSWORD_GROUP, options=f"PASSWORD '{PASSWORD}' SUPERUSER")
    url = make_url(pg_fresh_url).set(username=user).render_as_string(hide_password=False)
    return url, user


def _settings(**values: str) -> config.Settings:
    return config.load(environ={f"GITAUDIT_{k.upper()}": v for k, v in values.items()}, files=[])


def _write(path: Path, content: str, mode: int) -> Path:
    path.write_text(content)
    path.chmod(mode)
    return path


def test_a_password_file_logs_in(password_user: tuple[str, str], tmp_path: Path) -> None:
    url, _ = password_user
    with pytest.raises(StoreError, match="refused the login"):
        Store.from_settings(_settings(database_url=url)).close()
    secret = _write(tmp_path / "pw", PASSWORD + "\n", 0o600)
    settings = _settings(database_url=url, database_password_file=str(secret))
    with Store.from_settings(settings) as store:
        store.append(make_records(2))
        assert store.count() == 2
        assert PASSWORD not in store.url


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_password_file_others_can_read_is_refused(
    password_user: tuple[str, str], tmp_path: Path, mode: int
) -> None:
    url, _ = password_user
    secret = _write(tmp_path / "pw", PASSWORD, mode)
    settings = _settings(database_url=url, database_password_file=str(secret))
    with pytest.raises(ConfigError, match="readable by its group or others") as caught:
        Store.from_settings(settings)
    assert f"chmod 600 {secret}" in caught.value.hint
    assert PASSWORD not in caught.value.message


def test_a_url_with_a_password_and_a_file_is_ambiguous(tmp_path: Path) -> None:
    secret = _write(tmp_path / "pw", PASSWORD, 0o600)
    settings = _settings(
        database_url="postgresql+psycopg://u:other@127.0.0.1:1/db",
        database_password_file=str(secret),
    )
    with pytest.raises(ConfigError, match="carries a password"):
        Store.from_settings(settings)


def test_pgpassfile_and_a_libpq_service(
    password_user: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, user = password_user
    parsed = make_url(url)
    passfile = _write(
        tmp_path / "pgpass", f"{parsed.host}:{parsed.port}:{parsed.database}:{user}:{PASSWORD}\n",
        0o600,
    )  # fmt: skip
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    with Store.from_settings(_settings(database_url=url)) as store:
        store.append(make_records(1))
    services = tmp_path / "pg_service.conf"
    services.write_text(
        f"[gitaudit]\nhost={parsed.host}\nport={parsed.port}\n"
        f"dbname={parsed.database}\nuser={user}\n"
    )
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    service_url = "postgresql+psycopg:///?service=gitaudit"
    with Store.from_settings(_settings(database_url=service_url)) as store:
        store.append(make_records(1, start=1))
        assert store.count() == 2


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitaudit", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_password_on_the_command_line_is_warned_about_once(
    password_user: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = password_user
    with_password = make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITAUDIT_", "PG"))}
    env.update(GITAUDIT_CONFIG=str(tmp_path / "none.toml"), PYTHONPATH=str(REPO_ROOT))
    warned = _cli("db", "status", "--database-url", with_password, env=env)
    assert warned.returncode == 0, warned.stderr
    assert warned.stderr.count("warning: --database-url carries a password") == 1
    assert "GITAUDIT_DATABASE_PASSWORD_FILE" in warned.stderr
    assert PASSWORD not in warned.stdout + warned.stderr
    quiet = _cli("db", "status", env={**env, "GITAUDIT_DATABASE_URL": with_password})
    assert quiet.returncode == 0, quiet.stderr
    assert "warning" not in quiet.stderr
