"""The price table: packaged, versioned, tiered, replaceable; never a guess."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitaudit.claude.prices import DEFAULT_TABLE, Usage, load_table
from gitaudit.errors import ConfigError


def test_packaged_table_is_versioned_and_prices_current_models() -> None:
    table = load_table()
    assert table.version.startswith("anthropic-")
    for model, (rate_in, rate_out) in {
        "claude-opus-4-5-20251101": (5.0, 25.0),
        "claude-opus-4-20250514": (15.0, 75.0),
        "claude-opus-5-5": (4.0, 20.0),
        "claude-sonnet-4-5-20250929": (3.0, 15.0),
        "claude-sonnet-5": (2.0, 10.0),
        "claude-haiku-4-5": (1.0, 5.0),
        "claude-3-5-haiku-20241022": (0.8, 4.0),
        "claude-3-haiku-20240307": (0.25, 1.25),
        "claude-fable-5-2": (8.0, 40.0),
        "claude-fable-5-20260115": (10.0, 50.0),
        "claude-sonnet-5-20260630": (2.0, 10.0),
        "claude-sonnet-5-5": (2.0, 10.0),
    }.items():
        entry = table.find(model)
        assert entry is not None, model
        assert (entry.rates.input, entry.rates.output) == (rate_in, rate_out), model


def test_cache_writes_reads_and_long_context_tier() -> None:
    table = load_table()
    short = Usage(input_tokens=1000, output_tokens=1000, cache_write_5m_tokens=1000,
                  cache_write_1h_tokens=1000, cache_read_tokens=1000)  # fmt: skip
    cost = table.cost("claude-sonnet-4-5", short)
    assert cost.source == "estimate"
    assert cost.usd == pytest.approx((3 + 15 + 3.75 + 6 + 0.3) * 1000 / 1e6)
    long = Usage(input_tokens=150_000, output_tokens=1000, cache_read_tokens=60_000)
    assert table.cost("claude-sonnet-4-5", long).usd == pytest.approx(
        (150_000 * 6 + 1000 * 22.5 + 60_000 * 0.6) / 1e6
    )


def test_unknown_model_and_missing_usage_are_never_guessed() -> None:
    table = load_table()
    unknown = table.cost("gpt-imaginary", Usage(input_tokens=10))
    assert (unknown.usd, unknown.source) == (None, "unknown_model")
    assert table.cost("claude-sonnet-4-5", None).source == "no_usage"


def test_a_file_replaces_the_table(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        'version = "ours-1"\n[[model]]\npatterns = ["claude-*"]\ninput = 1\noutput = 2\n'
        "cache_write_5m = 0\ncache_write_1h = 0\ncache_read = 0\n"
    )
    table = load_table(str(path))
    cost = table.cost("claude-anything", Usage(input_tokens=1_000_000, output_tokens=1_000_000))
    assert (cost.usd, cost.table) == (3.0, "ours-1")


def test_a_bad_file_says_what_to_fix(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('version = "x"\n[[model]]\npatterns = ["a"]\ninput = -1\n')
    with pytest.raises(ConfigError, match="input must be a number"):
        load_table(str(path))


def test_the_table_ships_in_the_package() -> None:
    assert Path(DEFAULT_TABLE).is_file()


def test_public_surface_of_gitaudit_claude() -> None:
    import gitaudit.claude

    assert sorted(gitaudit.claude.__all__) == ["AsyncAuditedAnthropic", "AuditedAnthropic", "flush"]
