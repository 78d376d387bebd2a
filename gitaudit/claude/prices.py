"""The price table: what a Claude call cost, estimated from its token counts.

The table is a versioned TOML file shipped in the package (``prices.toml``,
its ``version`` and source in its header); ``GITAUDIT_PRICE_TABLE=FILE``
replaces it with a file of the same format. Every ``claude.request`` event
says which table priced it (``details.price_table``) and how
(``details.cost_source``): ``estimate`` (list prices times the usage the API
reported), ``unknown_model`` (no pattern matches: ``cost_usd`` is null, never
a guess) or ``no_usage`` (the call failed before the API reported usage).

Rates are per million tokens: input, output, cache write (5-minute and 1-hour
TTL) and cache read. A model may have tiers (long-context rates): a request
whose prompt (input + cache writes + cache reads) is above a tier's
``above_prompt_tokens`` pays that tier's rates on every token. Stdlib only
(``tomllib``, ``fnmatch``); the table is read once per process and path.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from gitaudit.errors import ConfigError

DEFAULT_TABLE: Final = os.path.join(os.path.dirname(__file__), "prices.toml")
RATE_KEYS: Final = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
_PER: Final = 1_000_000.0


@dataclass(frozen=True)
class Rates:
    """USD per million tokens of each kind."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float


@dataclass(frozen=True)
class ModelPrice:
    """One entry of the table: the model ids it covers, its rates and its tiers."""

    name: str
    patterns: tuple[str, ...]
    rates: Rates
    tiers: tuple[tuple[int, Rates], ...]  # (above_prompt_tokens, rates), highest first

    def rates_for(self, prompt_tokens: int) -> Rates:
        """The rates that apply to a request with ``prompt_tokens`` of prompt."""
        for threshold, rates in self.tiers:
            if prompt_tokens > threshold:
                return rates
        return self.rates


@dataclass(frozen=True)
class Usage:
    """Token counts of one call, as the API reported them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """Every token of the prompt: uncached input, cache writes and cache reads."""
        return (
            self.input_tokens
            + self.cache_write_5m_tokens
            + self.cache_write_1h_tokens
            + self.cache_read_tokens
        )


@dataclass(frozen=True)
class Cost:
    """An estimate: ``usd`` is None unless ``source`` is ``estimate``."""

    usd: float | None
    source: str
    table: str


class PriceTable:
    """A loaded table; :meth:`cost` prices one call."""

    def __init__(self, version: str, models: tuple[ModelPrice, ...]) -> None:
        self.version = version
        self.models = models

    def find(self, model: str | None) -> ModelPrice | None:
        """The first entry with a pattern matching ``model`` (case-sensitive), or None."""
        if not model:
            return None
        for entry in self.models:
            if any(fnmatch.fnmatchcase(model, pattern) for pattern in entry.patterns):
                return entry
        return None

    def cost(self, model: str | None, usage: Usage | None) -> Cost:
        """What a call to ``model`` with ``usage`` cost (list prices; never a guess)."""
        if usage is None:
            return Cost(None, "no_usage", self.version)
        entry = self.find(model)
        if entry is None:
            return Cost(None, "unknown_model", self.version)
        rates = entry.rates_for(usage.prompt_tokens)
        usd = (
            usage.input_tokens * rates.input
            + usage.output_tokens * rates.output
            + usage.cache_write_5m_tokens * rates.cache_write_5m
            + usage.cache_write_1h_tokens * rates.cache_write_1h
            + usage.cache_read_tokens * rates.cache_read
        ) / _PER
        return Cost(round(usd, 10), "estimate", self.version)


def _rates(raw: dict[str, Any], where: str) -> Rates:
    values = []
    for key in RATE_KEYS:
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{where}: {key} must be a number >= 0 (USD per million tokens)")
        values.append(float(value))
    return Rates(*values)


def _model(raw: Any, index: int) -> ModelPrice:
    where = f"model #{index + 1}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a table")  # noqa: TRY004 - reported as ConfigError
    patterns = raw.get("patterns")
    if (
        not isinstance(patterns, list)
        or not patterns
        or not all(isinstance(item, str) and item for item in patterns)
    ):
        raise ValueError(f"{where}: patterns must be a non-empty list of model id globs")
    tiers = []
    for tier in raw.get("tier", []):
        threshold = tier.get("above_prompt_tokens") if isinstance(tier, dict) else None
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise ValueError(f"{where}: every tier needs above_prompt_tokens (an integer >= 0)")
        tiers.append((threshold, _rates(tier, f"{where} tier")))
    tiers.sort(reverse=True)
    return ModelPrice(
        name=str(raw.get("name", patterns[0])),
        patterns=tuple(patterns),
        rates=_rates(raw, where),
        tiers=tuple(tiers),
    )


def parse_table(data: dict[str, Any]) -> PriceTable:
    """A table from decoded TOML; raises ValueError naming the bad entry."""
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise ValueError("the table needs a version string")
    models = data.get("model")
    if not isinstance(models, list):
        raise ValueError("the table needs [[model]] entries")  # noqa: TRY004 - a ConfigError
    return PriceTable(version, tuple(_model(raw, index) for index, raw in enumerate(models)))


@lru_cache(maxsize=8)
def load_table(path: str | None = None) -> PriceTable:
    """The table at ``path`` (the packaged one when None); raises ConfigError."""
    path = path or DEFAULT_TABLE
    try:
        with open(path, "rb") as handle:
            return parse_table(tomllib.load(handle))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(
            f"cannot read price table {path}: {exc}",
            "fix the file (see gitaudit/claude/prices.toml for the format) "
            "or unset GITAUDIT_PRICE_TABLE",
        ) from exc
