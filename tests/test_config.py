"""Settings: precedence, parsing, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gitaudit import config
from gitaudit.errors import ConfigError


def test_defaults_without_files_or_environment() -> None:
    settings = config.load(environ={}, files=[])
    assert settings.enabled is True
    assert settings.database_url is None
    assert "password" in settings.sensitive_fields
    assert settings.effective_chain_id.startswith("embedded@")


LOAD_WITHOUT_SANITIZER = """
import sys
from gitaudit import config
settings = config.load(environ={}, files=[])
loaded = "gitaudit.sanitize" in sys.modules
fields = settings.sensitive_fields  # the default, computed on this first read
from gitaudit.sanitize import DEFAULT_SENSITIVE_FIELDS
print(loaded, fields == DEFAULT_SENSITIVE_FIELDS, settings.sensitive_fields is fields)
"""


def test_loading_settings_does_not_import_the_sanitizer() -> None:
    # the git wrapper loads settings before git runs and the sanitizer while git runs
    result = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_SANITIZER], capture_output=True,
                            text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    assert result.stdout.split() == ["False", "True", "True"]
    assert config.Settings({"sensitive_fields": ("x",)}).sensitive_fields == ("x",)
    assert "password" in config.Settings().as_dict()["sensitive_fields"]


def test_environment_overrides_files_and_later_files_override_earlier(tmp_path: Path) -> None:
    system = tmp_path / "system.toml"
    system.write_text('error_max_chars = 10\nchain_id = "sys"\n')
    user = tmp_path / "user.toml"
    user.write_text('[gitaudit]\nchain_id = "user"\nsensitive_fields = ["a", "b"]\n')
    settings = config.load(
        environ={"GITAUDIT_ERROR_MAX_CHARS": "99"}, files=[system, user, tmp_path / "missing.toml"]
    )
    assert settings.error_max_chars == 99
    assert settings.chain_id == "user"
    assert settings.sensitive_fields == ("a", "b")


@pytest.mark.parametrize(
    ("variable", "value", "needle"),
    [
        ("GITAUDIT_ENABLED", "maybe", "expected true/false"),
        ("GITAUDIT_ERROR_MAX_CHARS", "lots", "error_max_chars"),
        ("GITAUDIT_ERROR_MAX_CHARS", "-5", "must be positive"),
        ("GITAUDIT_HASH_USER_IDS", "true", "user_id_key_file"),
    ],
)
def test_invalid_environment_values_name_key_and_fix(
    variable: str, value: str, needle: str
) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(environ={variable: value}, files=[])
    assert needle in str(info.value)


def test_broken_and_unknown_file_keys_are_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("enabled = [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        config.load(environ={}, files=[broken])
    typo = tmp_path / "typo.toml"
    typo.write_text("enabeld = true\n")
    with pytest.raises(ConfigError, match="unknown key 'enabeld'"):
        config.load(environ={}, files=[typo])


def test_empty_environment_value_means_unset() -> None:
    assert config.load(environ={"GITAUDIT_ENABLED": ""}, files=[]).enabled is True


def test_every_field_has_help_and_env_name() -> None:
    for field in config.FIELDS:
        assert field.help and field.env == "GITAUDIT_" + field.name.upper()


@pytest.mark.parametrize(
    ("value", "said"),
    [("x", "expected a number"), ("nan", "expected a finite number"), ("inf", "finite")],
)
def test_a_bad_number_is_named_without_python_text(value: str, said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(environ={"GITAUDIT_SAMPLE_RATE": value}, files=[])
    assert said in str(caught.value)
    assert "could not convert" not in str(caught.value)
    assert "fix or unset GITAUDIT_SAMPLE_RATE" in str(caught.value)
    assert "key in environment" not in str(caught.value)


def test_a_bad_value_in_a_file_names_the_key_and_the_file(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text('sample_rate = "lots"\n')
    with pytest.raises(ConfigError) as caught:
        config.load(environ={}, files=[file])
    assert f"fix or remove the 'sample_rate' key in {file}" in str(caught.value)
