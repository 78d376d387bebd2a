"""Settings: one table of keys, resolved once.

Every setting is declared once in :data:`FIELDS` (name, type, default, help).
Values come from, in increasing precedence: ``/etc/gitaudit/config.toml``,
``~/.config/gitaudit/config.toml``, ``$GITAUDIT_CONFIG``, then ``GITAUDIT_<NAME>``
environment variables.

This module is stdlib-only on purpose: the git wrapper loads settings on every
git command, and pydantic-settings costs ~100 ms to import (measured with
``python -X importtime``), more than the wrapper's whole budget.
"""

from __future__ import annotations

import os

from gitaudit import paths
from gitaudit.errors import ConfigError
from gitaudit.limits import SOCKET_MESSAGE_BYTES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from typing import Any

ENV_PREFIX = "GITAUDIT_"


def _bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true/false (1/0, yes/no, on/off)")


def _int(raw: object) -> int:
    if isinstance(raw, bool):
        raise TypeError("expected an integer")
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ValueError("expected an integer") from None


def _float(raw: object) -> float:
    if isinstance(raw, bool):
        raise TypeError("expected a number")
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise ValueError("expected a number") from None
    if value - value != 0:  # NaN or +-inf (x - x is NaN); math costs 0.4 ms to import here
        raise ValueError("expected a finite number")
    return value


def _str(raw: object) -> str:
    if not isinstance(raw, str):
        raise TypeError("expected a string")
    return raw


def _choice(*allowed: str) -> Callable[[object], str]:
    def parse(raw: object) -> str:
        value = _str(raw).strip().lower()
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return value

    return parse


def _path(raw: object) -> str:
    text = _str(raw).strip()
    if not text:
        raise ValueError("expected a path")
    return os.path.expanduser(text)


def _days(raw: object) -> int | None:
    """Days to keep records: a whole number >= 0, or ``forever`` (None: never expire)."""
    if isinstance(raw, str) and raw.strip().lower() in {"forever", "never"}:
        return None
    try:
        days = _int(raw)
    except (ValueError, TypeError):
        raise ValueError("expected a whole number of days (0 or more) or 'forever'") from None
    if days < 0:
        raise ValueError("expected a whole number of days (0 or more) or 'forever'")
    return days


def _policies(raw: object) -> tuple[tuple[str, int | None], ...]:
    """Per-operation retention: a TOML table ``{"git.*" = 90}`` or ``git.*=90,claude.*=365``."""
    if isinstance(raw, dict):
        items = list(raw.items())
    else:
        items = []
        for entry in _list(raw):
            pattern, sep, days = entry.partition("=")
            if not sep:
                raise ValueError(f"expected PATTERN=DAYS, got {entry!r}")
            items.append((pattern, days))
    policies = []
    for pattern, days in items:
        name = str(pattern).strip()
        if not name:
            raise ValueError("an operation pattern is empty")
        try:
            policies.append((name, _days(days)))
        except ValueError as exc:
            raise ValueError(f"{name!r}: {exc}") from None
    return tuple(policies)


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WORKING_HOURS_FORM = "DAYS HH:MM-HH:MM [ZONE], e.g. Mon-Fri 08:00-19:00 UTC"


def _clock(text: str) -> int:
    """``HH:MM`` (00:00 to 24:00) as minutes after midnight."""
    hours, sep, minutes = text.partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"{text!r} is not a time HH:MM")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > 24 * 60:
        raise ValueError(f"{text!r} is not a time between 00:00 and 24:00")
    return value


def _weekdays(text: str) -> tuple[int, ...]:
    """``Mon-Fri``, ``Mon,Wed,Fri``, ``Sat-Sun`` or ``Fri-Mon`` as weekday numbers (Monday 0)."""
    days: list[int] = []
    for part in text.split(","):
        first, sep, last = part.strip().lower().partition("-")
        if first not in _DAYS or (sep and last not in _DAYS):
            raise ValueError(f"{part.strip()!r} is not a day or day range like Mon-Fri")
        start = _DAYS.index(first)
        stop = _DAYS.index(last) if sep else start
        days += [(start + step) % 7 for step in range((stop - start) % 7 + 1)]
    return tuple(sorted(set(days)))


def parse_working_hours(raw: object) -> tuple[tuple[int, ...], int, int, str]:
    """``DAYS HH:MM-HH:MM [ZONE]`` as (weekdays with Monday 0, start and end minutes after
    midnight, zone name; default UTC). The zone name is checked by whoever resolves it
    (:mod:`gitaudit.report.options`): zoneinfo costs milliseconds to import here."""
    parts = _str(raw).split()
    if len(parts) not in (2, 3):
        raise ValueError(f"expected {WORKING_HOURS_FORM}")
    first, sep, last = parts[1].partition("-")
    if not sep:
        raise ValueError(f"{parts[1]!r} is not a time range HH:MM-HH:MM")
    start, end = _clock(first), _clock(last)
    if end <= start:
        raise ValueError(f"the end {last} is not after the start {first} (one day at most)")
    return _weekdays(parts[0]), start, end, parts[2] if len(parts) == 3 else "UTC"


def _working_hours(raw: object) -> str:
    """The setting as written (checked by :func:`parse_working_hours`)."""
    parse_working_hours(raw)
    return " ".join(_str(raw).split())


def _list(raw: object) -> tuple[str, ...]:
    items = [str(item) for item in raw] if isinstance(raw, list | tuple) else _str(raw).split(",")
    return tuple(item.strip() for item in items if item.strip())


class _Deferred:
    """A default computed when first used, so that what it needs is imported only then."""

    __slots__ = ("compute",)

    def __init__(self, compute: Callable[[], Any]) -> None:
        self.compute = compute


def _sanitizer_fields() -> tuple[str, ...]:
    """The sanitizer's own list. Deferred: the git wrapper loads settings before git runs
    and needs the sanitizer (~0.4 ms to import) only while git runs and after."""
    from gitaudit.sanitize import DEFAULT_SENSITIVE_FIELDS

    return DEFAULT_SENSITIVE_FIELDS


class Field:
    """One setting: its name, parser, default and the help text README repeats."""

    __slots__ = ("_default", "help", "name", "parse")

    def __init__(self, name: str, parse: Callable[[object], Any], default: Any, help: str) -> None:
        self.name = name
        self.parse = parse
        self._default = default
        self.help = help

    @property
    def default(self) -> Any:
        """The default value (a deferred one is computed now)."""
        default = self._default
        return default.compute() if isinstance(default, _Deferred) else default

    @property
    def deferred(self) -> bool:
        """True if the default is computed on first use (see :class:`_DeferredDefault`)."""
        return isinstance(self._default, _Deferred)

    @property
    def env(self) -> str:
        """The environment variable that overrides this setting."""
        return ENV_PREFIX + self.name.upper()


FIELDS: tuple[Field, ...] = (
    Field(
        "enabled", _bool, True, "Record events at all. false turns gitaudit into a pass-through."
    ),
    Field(
        "database_url",
        _str,
        None,
        "SQLAlchemy URL of the store. Unset: SQLite at $XDG_DATA_HOME/gitaudit/audit.db. "
        "PostgreSQL: postgresql+psycopg://user@host/db.",
    ),
    Field(
        "database_password_file",
        _path,
        None,
        "File holding the store's password (PostgreSQL), mode 0600 or stricter: used when "
        "database_url carries none. Or use libpq's PGPASSFILE or a service (?service=NAME).",
    ),
    Field(
        "spool_dir",
        _path,
        None,
        "Directory of spooled event segments. Unset: $XDG_STATE_HOME/gitaudit/spool.",
    ),
    Field(
        "chain_key_file",
        _path,
        None,
        "File holding the HMAC key of the hash chain. Unset: plain SHA-256 (detects accidents, "
        "not a forger with write access).",
    ),
    Field(
        "checkpoint_dir",
        _path,
        None,
        "Directory that receives a copy of every signed checkpoint (one fsynced .note file "
        "each). Unset: checkpoints go to the store and the sinks only.",
    ),
    Field(
        "checkpoint_interval",
        _float,
        3600.0,
        "Seconds between the daemon's checkpoints of every chain head; 0 turns them off.",
    ),
    Field(
        "checkpoint_key",
        _path,
        None,
        "Private key file (`gitaudit keys generate`) that signs checkpoints. Unset: "
        "checkpoints are unsigned (they pin heads outside the store, but anyone can forge one).",
    ),
    Field(
        "chain_id",
        _str,
        None,
        "Name of this writer's hash chain. Unset: embedded@<hostname>.",
    ),
    Field(
        "sensitive_fields",
        _list,
        _Deferred(_sanitizer_fields),
        "Comma list of dict key names whose values are always redacted (matched "
        "case-insensitively, also as suffixes such as github_token).",
    ),
    Field(
        "hash_user_ids", _bool, False, "Replace user names and emails by HMAC pseudonyms (GDPR)."
    ),
    Field(
        "user_id_key_file",
        _path,
        None,
        "Key file for hash_user_ids. Required when hash_user_ids is true.",
    ),
    Field("git", _path, None, "Path of the real git executable. Unset: searched on PATH."),
    Field(
        "error_max_chars",
        _int,
        4000,
        "Longest error text kept in result.error (after redaction).",
    ),
    Field(
        "capture_messages",
        _bool,
        False,
        "Keep commit, tag, merge, stash and notes messages (redacted) in details.argv. "
        "false: each message is replaced by its length and SHA-256.",
    ),
    Field(
        "spool_segment_bytes",
        _int,
        8 * 1024 * 1024,
        "Size at which the active spool segment is sealed and a new one started.",
    ),
    # --- Claude (gitaudit/claude/) --------------------------------------------------------
    Field(
        "capture_prompts",
        _bool,
        False,
        "Keep the prompt and response text of claude.request events, and the prompt and "
        "answer text and edited file contents of Claude Code sessions (after the sanitizer). "
        "false: only their SHA-256, sizes and token counts.",
    ),
    Field(
        "prompt_dir",
        _path,
        None,
        "With capture_prompts: also write each call's redacted, untruncated prompt and "
        "response to a file in this directory (mode 0700), named in the event with its "
        "SHA-256; never stored in the audit store.",
    ),
    Field(
        "price_table",
        _path,
        None,
        "TOML price table that replaces the packaged one (gitaudit/claude/prices.toml) "
        "for cost_usd estimates.",
    ),
    # --- policy (gitaudit/policy.py) ---------------------------------------------------
    Field(
        "level",
        _choice("all", "writes_only", "mutations_only", "deletes_only", "failures_only"),
        "writes_only",
        "Which events are kept: all; writes_only (create/update/delete); mutations_only "
        "(update); deletes_only; failures_only. always_audit events are kept at every level.",
    ),
    Field(
        "exclude_actions",
        _list,
        (),
        "Comma list of operation globs never recorded (git.other commands also match as "
        "git.<subcommand>, e.g. git.status).",
    ),
    Field(
        "exclude_resources",
        _list,
        (),
        "Comma list of globs on repository path, name or remote never recorded.",
    ),
    Field("sample_rate", _float, 1.0, "Fraction (0 to 1) of sampled events that are kept."),
    Field(
        "sample_reads",
        _bool,
        True,
        "Sample only read events (writes are always kept in full).",
    ),
    Field(
        "always_audit",
        _list,
        (
            "data-egress",
            "push-failure",
            "force-push",
            "ref-delete",
            "conflict.*",
            "claude.request",
            "validation.failed",
            "audit.*",
        ),
        "Events kept whatever level, exclusions and sampling say: operation globs and the "
        "classes data-egress (clone, fetch, pull, ls-remote, archive, bundle), push-failure, "
        "force-push, ref-delete (any ref deleted: branch, tag, push --delete, update-ref -d).",
    ),
    # --- daemon (gitaudit/daemon/) ---------------------------------------------------------
    Field(
        "runtime_dir",
        _path,
        None,
        "Directory of the daemon's sockets. Unset: /run/gitaudit as root, else "
        "$XDG_RUNTIME_DIR/gitaudit; clients try /run/gitaudit then $XDG_RUNTIME_DIR/gitaudit.",
    ),
    Field(
        "journal_dir",
        _path,
        None,
        "Daemon journal (spool-format segments). Unset: $XDG_STATE_HOME/gitaudit/journal.",
    ),
    Field(
        "buffer_flush_interval",
        _float,
        1.0,
        "Seconds between batch writes of journaled events to the store.",
    ),
    Field(
        "buffer_max_size",
        _int,
        1000,
        "Events that trigger a batch write before the interval is up.",
    ),
    Field(
        "on_store_failure",
        _choice("journal", "block", "reject"),
        "journal",
        "When the store is down: journal (keep accepting into the journal, catch up later), "
        "block (stop acknowledging until the store is back), reject (answer clients with an "
        "error so they spool themselves).",
    ),
    Field(
        "socket_timeout",
        _float,
        0.25,
        "Seconds a client (wrapper, hooks) waits for the daemon before it spools instead.",
    ),
    Field(
        "hook_detach",
        _choice("auto", "always", "never"),
        "auto",
        "When a git hook (or the Claude Code hook) hands the sanitizing and delivery of its "
        "event to a detached background process so git (or Claude Code) goes on at once: auto "
        "(not in CI jobs, not for a git hook under an AI agent, and only when the daemon "
        "socket or a writable spool directory is there), always, never.",
    ),
    Field(
        "max_message_bytes",
        _int,
        SOCKET_MESSAGE_BYTES,
        "Longest NDJSON line the event socket accepts.",
    ),
    Field(
        "metrics_address",
        _str,
        "127.0.0.1:9464",
        "host:port of the Prometheus metrics endpoint; empty disables it.",
    ),
    Field(
        "watch_spool_dirs",
        _list,
        (),
        "Comma list of client spool directories the daemon watches and ingests.",
    ),
    Field(
        "watch_repos",
        _list,
        (),
        "Comma list of repositories (worktree or bare paths) whose refs the daemon watches; "
        "ref changes no git command accounts for become ref.update events (source watcher).",
    ),
    Field(
        "watch_window",
        _float,
        1.0,
        "Seconds the repo watcher waits for a git event explaining a ref change before it "
        "records the change itself.",
    ),
    Field(
        "shutdown_timeout",
        _float,
        10.0,
        "Seconds the daemon spends flushing on SIGTERM before leaving the rest in its journal.",
    ),
    Field(
        "subscriber_queue_size",
        _int,
        1000,
        "Events buffered per live subscriber (tail -f, sinks) before drops are counted.",
    ),
    Field(
        "trace2_max_bytes",
        _int,
        4 * 1024 * 1024,
        "Bytes of trace2 detail buffered per git process; past it detail is dropped, never git.",
    ),
    # --- Claude Code telemetry (gitaudit/daemon/otlp_receiver.py) -----------------------------
    Field(
        "otlp_address",
        _str,
        None,
        "host:port where the daemon receives Claude Code's OTLP/HTTP logs (POST /v1/logs); "
        "unset: no receiver. Loopback only unless otlp_allow_remote is on.",
    ),
    Field(
        "otlp_allow_remote",
        _bool,
        False,
        "Let otlp_address be a non-loopback address (senders are then unauthenticated "
        "network peers: their records stay unverified claims).",
    ),
    Field(
        "otlp_max_bytes",
        _int,
        4 * 1024 * 1024,
        "Largest OTLP request body, after gzip decompression too; larger ones get 413.",
    ),
    # --- forwarding (gitaudit/daemon/sinks.py) ------------------------------------------------
    Field(
        "http_sink_url",
        _str,
        None,
        "POST batches of JSON events to this URL (Fluent Bit, webhooks).",
    ),
    Field(
        "http_sink_token_file",
        _path,
        None,
        "File holding a token sent as the http_sink_token_header of every POST.",
    ),
    Field(
        "http_sink_token_header",
        _str,
        "Authorization",
        "Header carrying the token (value 'Bearer <token>' for Authorization, raw otherwise).",
    ),
    Field(
        "syslog_address",
        _str,
        None,
        "RFC 5424 syslog target: udp://host:port, tcp://host:port or unix:///dev/log.",
    ),
    Field("sink_backlog", _int, 10000, "Events a sink may hold while its target is down."),
    # --- retention (gitaudit/store/retention.py) ----------------------------------------------
    Field(
        "retention_days",
        _days,
        None,
        "Days a record is kept (counted from when the store recorded it) unless a [retention] "
        "pattern says otherwise. Unset or 'forever': kept forever. 0: everything recorded "
        "before a run expires (decommissioning).",
    ),
    Field(
        "retention",
        _policies,
        (),
        "Per-operation retention in days: a [retention] table in the config file "
        '(\"git.*\" = 90, \"audit.*\" = 1095, a number or \"forever\"), or '
        "git.*=90,claude.*=365 in the variable; the longest matching pattern wins.",
    ),
    Field(
        "archive",
        _bool,
        True,
        "Archive expired records before retention deletes them; off deletes without archives.",
    ),
    Field(
        "archive_dir",
        _path,
        None,
        "Directory of retention archives (gzip JSON-lines segments and manifests). Unset: "
        "$XDG_DATA_HOME/gitaudit/archive.",
    ),
    Field(
        "cleanup_batch_size",
        _int,
        5000,
        "Records retention deletes per transaction (short transactions keep writers going).",
    ),
    Field(
        "retention_interval",
        _float,
        0.0,
        "Seconds between retention runs inside the daemon; 0 (default): off, the "
        "gitaudit-retention.timer runs it daily.",
    ),
    # --- reports (gitaudit/report/) -----------------------------------------------------------
    Field(
        "report_protected_branches",
        _list,
        ("main", "master", "release/*", "refs/tags/*"),
        "Comma list of globs naming the protected refs reports look at (soc2, security): a "
        "pattern matches the full ref (refs/heads/main, refs/tags/v1) or the branch name.",
    ),
    Field(
        "report_working_hours",
        _working_hours,
        "Mon-Fri 08:00-19:00 UTC",
        "Working hours reports compare activity against: DAYS HH:MM-HH:MM [ZONE] with days "
        "Mon..Sun as ranges or a comma list and an IANA zone (default UTC), "
        "e.g. Mon-Fri 08:00-19:00 Europe/Paris.",
    ),
    # --- gitaudit resolve (gitaudit/claude/resolve.py) -------------------------------------
    Field(
        "claude_model",
        _str,
        "claude-sonnet-5-5",
        "Claude model gitaudit resolve asks (overridden by --model).",
    ),
    Field(
        "resolve_max_bytes",
        _int,
        65536,
        "Largest conflicted file (any index stage, bytes) gitaudit resolve sends; larger files "
        "are skipped, as the answer must hold the whole file.",
    ),
)

FIELDS_BY_NAME: dict[str, Field] = {field.name: field for field in FIELDS}

_POSITIVE = (
    "error_max_chars", "spool_segment_bytes", "buffer_flush_interval", "buffer_max_size",
    "socket_timeout", "max_message_bytes", "shutdown_timeout", "subscriber_queue_size",
    "trace2_max_bytes", "sink_backlog", "watch_window", "resolve_max_bytes", "otlp_max_bytes",
    "cleanup_batch_size",
)  # fmt: skip


class Settings:
    """Resolved settings. Attribute names are the field names of :data:`FIELDS`."""

    enabled: bool
    database_url: str | None
    database_password_file: str | None
    spool_dir: str | None
    chain_key_file: str | None
    chain_id: str | None
    checkpoint_dir: str | None
    checkpoint_interval: float
    checkpoint_key: str | None
    sensitive_fields: tuple[str, ...]
    hash_user_ids: bool
    user_id_key_file: str | None
    git: str | None
    error_max_chars: int
    capture_messages: bool
    spool_segment_bytes: int
    capture_prompts: bool
    prompt_dir: str | None
    price_table: str | None
    level: str
    exclude_actions: tuple[str, ...]
    exclude_resources: tuple[str, ...]
    sample_rate: float
    sample_reads: bool
    always_audit: tuple[str, ...]
    runtime_dir: str | None
    journal_dir: str | None
    buffer_flush_interval: float
    buffer_max_size: int
    on_store_failure: str
    socket_timeout: float
    hook_detach: str
    max_message_bytes: int
    metrics_address: str
    watch_spool_dirs: tuple[str, ...]
    watch_repos: tuple[str, ...]
    watch_window: float
    shutdown_timeout: float
    subscriber_queue_size: int
    trace2_max_bytes: int
    otlp_address: str | None
    otlp_allow_remote: bool
    otlp_max_bytes: int
    http_sink_url: str | None
    http_sink_token_file: str | None
    http_sink_token_header: str
    syslog_address: str | None
    sink_backlog: int
    claude_model: str
    resolve_max_bytes: int
    retention_days: int | None
    retention: tuple[tuple[str, int | None], ...]
    archive: bool
    archive_dir: str | None
    cleanup_batch_size: int
    retention_interval: float
    report_protected_branches: tuple[str, ...]
    report_working_hours: str

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        values = values or {}
        unknown = set(values) - set(FIELDS_BY_NAME)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        for field in FIELDS:
            if field.name in values:
                setattr(self, field.name, values[field.name])
            elif not field.deferred:  # a deferred default is read from the class, when needed
                setattr(self, field.name, field.default)
        if self.hash_user_ids and self.user_id_key_file is None:
            raise ConfigError(
                "hash_user_ids is on but no user_id_key_file is set",
                "set GITAUDIT_USER_ID_KEY_FILE to a file holding a secret key",
            )
        for name in _POSITIVE:
            if getattr(self, name) <= 0:
                raise ConfigError(
                    f"{name} must be positive, got {getattr(self, name)}",
                    f"set {FIELDS_BY_NAME[name].env} to a number above 0",
                )
        if self.checkpoint_interval < 0:
            raise ConfigError(
                f"checkpoint_interval must be 0 (off) or positive, got {self.checkpoint_interval}",
                "set GITAUDIT_CHECKPOINT_INTERVAL to seconds between checkpoints, e.g. 3600",
            )
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ConfigError(
                f"sample_rate must be between 0 and 1, got {self.sample_rate}",
                "set GITAUDIT_SAMPLE_RATE to e.g. 0.1 to keep one sampled event in ten",
            )
        if self.retention_interval < 0:
            raise ConfigError(
                f"retention_interval must be 0 (off) or positive, got {self.retention_interval}",
                "set GITAUDIT_RETENTION_INTERVAL to e.g. 86400 for a daily run, or 0",
            )

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for `gitaudit config show` and the config-change record."""
        return {field.name: getattr(self, field.name) for field in FIELDS}

    @property
    def effective_spool_dir(self) -> str:
        """The spool directory, defaults applied."""
        return self.spool_dir or paths.default_spool_dir()

    @property
    def effective_database_url(self) -> str:
        """The store URL, defaults applied."""
        return self.database_url or paths.default_database_url()

    @property
    def effective_archive_dir(self) -> str:
        """The retention archive directory, defaults applied."""
        return self.archive_dir or os.path.join(paths.data_home(), "gitaudit", "archive")

    @property
    def effective_chain_id(self) -> str:
        """This writer's chain id, defaults applied."""
        if self.chain_id:
            return self.chain_id
        return f"embedded@{os.uname().nodename}"


class _DeferredDefault:
    """Class attribute of :class:`Settings` for a setting with a deferred default.

    Read on an instance that was given no value, it computes the default then
    and keeps it in the instance (which shadows this descriptor from then on).
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = FIELDS_BY_NAME[self.name].default
        instance.__dict__[self.name] = value
        return value


for _field in FIELDS:
    if _field.deferred:
        setattr(Settings, _field.name, _DeferredDefault(_field.name))


def _parse(field: Field, raw: object, source: str) -> Any:
    try:
        return field.parse(raw)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"invalid value {raw!r} for {field.name} (from {source}): {exc}",
            f"fix or unset {field.env}"
            if source.startswith("environment")
            else f"fix or remove the '{field.name}' key in {source} (or set {field.env})",
        ) from exc


def _read_file(path: str) -> dict[str, object]:
    import tomllib

    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc}",
            "fix the TOML syntax or remove the file",
        ) from exc
    section = data.get("gitaudit", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [gitaudit] must be a table")
    if section is not data and "retention" in data:  # [retention] beside [gitaudit]
        section = {**section, "retention": data["retention"]}
    return section


def load(
    environ: Mapping[str, str] | None = None, files: list[str] | list[Path] | None = None
) -> Settings:
    """Resolve settings from config files and the environment.

    Raises :class:`ConfigError` naming the key, the source and the fix.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for entry in paths.config_files() if files is None else files:
        path = os.fspath(entry)
        if not os.path.exists(path):
            continue
        for key, raw in _read_file(path).items():
            field = FIELDS_BY_NAME.get(key)
            if field is None:
                raise ConfigError(
                    f"unknown key {key!r} in config file {path}",
                    f"known keys: {', '.join(FIELDS_BY_NAME)}",
                )
            values[key] = _parse(field, raw, path)
    for field in FIELDS:
        raw_env = environ.get(field.env)
        if raw_env is not None and raw_env != "":
            values[field.name] = _parse(field, raw_env, f"environment variable {field.env}")
    return Settings(values)
