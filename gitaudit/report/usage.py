"""The usage report: what was done, by whom, where, how fast, how it failed, and with Claude.

Sections: an overview (events, failures, actors, repositories, hosts); operations over
time by type (per hour for periods under 2 days, per day up to 120 days, else per
month; UTC); the top actors and repositories (top N and one "others" row); failure
rate and duration p50/p95 per operation (:func:`gitaudit.store.stats.group_stats`);
conflicts per repository and how their files were resolved (ours, theirs, manual,
claude: ``conflict.resolved`` ``details.files[].resolution``); Claude requests, tokens
and cost per model and over time (``claude.request`` details, summed as ``gitaudit
claude usage`` sums them: :class:`gitaudit.claude.usage.UsageRow`).

Memory stays bounded whatever the number of events: the counts, groups and
percentiles are aggregated by the database through the query layer
(:func:`~gitaudit.store.reader.matching`, ``group_stats``), and the two passes that
need an event's details (conflict resolutions, Claude usage) stream only those
operations (:func:`~gitaudit.store.reader.iter_events`) into running totals per
repository, model and time bucket. ``progress`` is told after each pass how many of
the matching events are accounted for (the share of passes done).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, case, distinct, func

from gitaudit.claude.usage import GROUPS as CLAUDE_GROUPS
from gitaudit.claude.usage import TOKEN_FIELDS, UsageRow
from gitaudit.report.common import NONE, narrowed, new_report, top_table
from gitaudit.report.model import Cell, Chart, KeyValues, Report, Section, Table
from gitaudit.report.options import ReportOptions
from gitaudit.store.reader import EventFilter, iter_events, matching
from gitaudit.store.stats import GROUPS, group_stats
from gitaudit.store.tables import events

KIND: Final = "usage"
TITLE: Final = "Usage report"
SERIES: Final = 8  # operations drawn apart in the activity chart; the rest are "other"
MAX_BUCKETS: Final = 400
CONFLICTS: Final = ("conflict.detected", "conflict.resolved", "conflict.aborted")
RESOLUTIONS: Final = ("ours", "theirs", "manual", "claude")
PASSES: Final = 7


def build(
    conn: Connection, flt: EventFilter, options: ReportOptions, progress: Callable[[int], None]
) -> Report:
    """The usage report of the events matching ``flt`` (see the module docstring)."""
    flt = replace(flt, limit=None)
    total, failures, first, last = _totals(conn, flt)
    if total == 0:
        progress(0)
        return new_report(KIND, TITLE, flt, options, (), events_read=0)
    done = iter(range(2, PASSES + 1))

    def step() -> None:
        progress(total * next(done, PASSES) // PASSES)

    progress(total // PASSES)
    start = options.since or flt.since or first
    end = options.until or flt.until or last
    buckets = Buckets.between(start, end, first, last)
    sections = [_overview(conn, flt, total, failures, first, last)]
    sections.append(_activity(conn, flt, buckets))
    step()
    sections.append(_top(conn, flt, "actor", "Top actors", options.top, total))
    step()
    sections.append(_top(conn, flt, "repo", "Top repositories", options.top, total))
    step()
    sections.append(_operations(conn, flt))
    step()
    sections.append(_conflicts(conn, flt, options.top))
    step()
    sections.append(_claude(conn, flt, buckets))
    step()
    return new_report(KIND, TITLE, flt, options, tuple(sections), events_read=total)


def _failures() -> Any:
    return func.sum(case((events.c.outcome == "failure", 1), else_=0))


def _totals(conn: Connection, flt: EventFilter) -> tuple[int, int, datetime, datetime]:
    query = matching(conn, flt, func.count(), _failures(), func.min(events.c.occurred_at),
                     func.max(events.c.occurred_at))  # fmt: skip
    count, failures, first, last = conn.execute(query).one()
    return int(count), int(failures or 0), _aware(first), _aware(last)


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _rate(failures: int, count: int) -> float:
    """Failures per 100 events, to 0.1."""
    return round(100 * failures / count, 1) if count else 0.0


def _overview(
    conn: Connection, flt: EventFilter, total: int, failures: int, first: datetime, last: datetime
) -> Section:
    dialect = conn.dialect.name
    counts = [func.count(distinct(GROUPS[by](dialect))) for by in ("actor", "repo", "host")]
    actors, repos, hosts = conn.execute(matching(conn, flt, *counts)).one()
    items: tuple[tuple[str, Cell], ...] = (
        ("events", total),
        ("failures", failures),
        ("failure %", _rate(failures, total)),
        ("actors", int(actors)),
        ("repositories", int(repos)),
        ("hosts", int(hosts)),
        ("first event", first.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("last event", last.strftime("%Y-%m-%dT%H:%M:%SZ")),
    )
    return Section("Overview", (KeyValues(items),))


@dataclass(frozen=True)
class Buckets:
    """Time buckets of a chart: ``unit`` hour, day or month (UTC), and every label in order.

    Labels are prefixes of RFC 3339 times (``2026-11-01T12``, ``2026-11-01``,
    ``2026-11``), so a bucket is found from the stored time key or an event's
    ``occurred_at`` by cutting it (:meth:`label`).
    """

    unit: str
    labels: tuple[str, ...]

    @classmethod
    def between(cls, start: datetime, end: datetime, first: datetime, last: datetime
                ) -> Buckets:  # fmt: skip
        """Buckets from ``start`` to ``end`` (the period; the events' ``first``..``last``
        instead when the period would need more than :data:`MAX_BUCKETS`)."""
        start, end = _aware(start), _aware(end)
        span = end - start
        unit = "hour" if span < timedelta(days=2) else "day" if span <= timedelta(days=120) else (
            "month")  # fmt: skip
        labels = _labels(unit, start, end)
        if len(labels) > MAX_BUCKETS:
            return cls.between(first, last, first, last)
        return cls(unit, labels)

    @property
    def by(self) -> str:
        """The ``gitaudit stats`` grouping the database buckets by (months from days)."""
        return "hour" if self.unit == "hour" else "day"

    def label(self, key: str) -> str:
        """The bucket of a time key or RFC 3339 time."""
        return key[: {"hour": 13, "day": 10, "month": 7}[self.unit]]


def _labels(unit: str, start: datetime, end: datetime) -> tuple[str, ...]:
    """Every label from ``start``'s bucket to ``end``'s (at most MAX_BUCKETS + 1)."""
    if end > start:
        end -= timedelta(microseconds=1)  # the period's end is exclusive
    labels: list[str] = []
    if unit == "month":
        year, month = start.year, start.month
        while (year, month) <= (end.year, end.month) and len(labels) <= MAX_BUCKETS:
            labels.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return tuple(labels)
    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)
    moment = start.replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        moment = moment.replace(hour=0)
    while moment <= end and len(labels) <= MAX_BUCKETS:
        labels.append(moment.strftime("%Y-%m-%dT%H" if unit == "hour" else "%Y-%m-%d"))
        moment += step
    return tuple(labels)


def _series(
    buckets: Buckets, cells: dict[tuple[str, str], float], names: list[str]
) -> tuple[tuple[str, tuple[float, ...]], ...]:
    return tuple(
        (name, tuple(cells.get((label, name), 0) for label in buckets.labels)) for name in names
    )


def _activity(conn: Connection, flt: EventFilter, buckets: Buckets) -> Section:
    key = GROUPS[buckets.by](conn.dialect.name).label("bucket")
    count = func.count()
    query = matching(conn, flt, key, events.c.operation, count).group_by(key, events.c.operation)
    per_operation: Counter[str] = Counter()
    cells: Counter[tuple[str, str]] = Counter()
    for bucket, operation, number in conn.execute(query):
        per_operation[operation] += int(number)
        cells[buckets.label(str(bucket)), operation] += int(number)
    ranked = [operation for operation, _ in per_operation.most_common()]
    drawn, rest = ranked[:SERIES], set(ranked[SERIES:])
    if rest:
        for (label, operation), number in list(cells.items()):
            if operation in rest:
                cells[label, "other"] += number
        drawn.append("other")
    chart = Chart(
        kind="stacked_bar",
        title=f"Operations per {buckets.unit} (UTC) by type",
        x=buckets.labels,
        series=_series(buckets, dict(cells), drawn),
        y_label="events",
    )
    return Section("Activity over time", (chart,))


def _top(
    conn: Connection, flt: EventFilter, by: str, title: str, top: int, total: int
) -> Section:
    """The ``top`` groups of ``by`` by events (the rest summed as one row), streamed in rank
    order from the database: one row per group, never held."""
    key = GROUPS[by](conn.dialect.name).label("key")
    count = func.count().label("n")
    query = matching(conn, flt, key, count, _failures()).group_by(key).order_by(
        count.desc(), key)  # fmt: skip
    shown: list[tuple[Cell, ...]] = []
    groups = failures_total = 0
    for name, number, failures in conn.execute(query):
        groups += 1
        failures_total += int(failures or 0)
        if len(shown) < top:
            shown.append((NONE if name is None else str(name), int(number), int(failures or 0)))
    noun = "actor" if by == "actor" else "repository"
    table = top_table((noun, "events", "failures"), shown, top,
                      total_row=("", total, failures_total), groups=groups, share_of=1)  # fmt: skip
    intro = ("Actor: the OS user, else the git email." if by == "actor"
             else "Repository: its name (the remote's or the directory's).")  # fmt: skip
    return Section(title, (table,), intro=intro)


def _operations(conn: Connection, flt: EventFilter) -> Section:
    rows = group_stats(conn, flt, "operation")
    table = Table(
        ("operation", "events", "failures", "failure %", "p50 ms", "p95 ms"),
        tuple(
            (row.key, row.count, row.failures, _rate(row.failures, row.count),
             None if row.p50_ms is None else round(row.p50_ms, 1),
             None if row.p95_ms is None else round(row.p95_ms, 1))
            for row in sorted(rows, key=lambda row: (-row.count, row.key or ""))
        ),
        note="durations: wall time of the operation, interpolated percentiles",
    )  # fmt: skip
    chart = Chart(
        kind="bar",
        title="Failure % per operation",
        x=tuple(str(row[0]) for row in table.rows),
        series=(("failure %", tuple(float(row[3] or 0) for row in table.rows)),),
        y_label="% of events",
    )
    return Section("Operations: failures and durations", (table, chart))


def _conflicts(conn: Connection, flt: EventFilter, top: int) -> Section:
    conflicts = narrowed(flt, CONFLICTS)
    per_repo: dict[str, Counter[str]] = defaultdict(Counter)
    if conflicts is not None:
        repo = GROUPS["repo"](conn.dialect.name).label("repo")
        query = matching(conn, conflicts, repo, events.c.operation, func.count()).group_by(
            repo, events.c.operation)  # fmt: skip
        for name, operation, number in conn.execute(query):
            per_repo[NONE if name is None else str(name)][operation] += int(number)
    resolved = narrowed(flt, ("conflict.resolved",))
    methods: Counter[str] = Counter()
    for event in iter_events(conn, resolved) if resolved is not None else ():
        name = (event.get("repo") or {}).get("name")
        counts = per_repo[NONE if name is None else str(name)]
        for method in _resolutions(event):
            counts[f"files {method}"] += 1
            methods[method] += 1
    if not per_repo:
        return Section("Conflicts", (), intro="No conflict in this period.")
    kinds = [*RESOLUTIONS, *sorted(set(methods) - set(RESOLUTIONS))]
    columns = ("repository", "detected", "resolved", "aborted", *(f"files {m}" for m in kinds))
    names = ("conflict.detected", "conflict.resolved", "conflict.aborted",
             *(f"files {m}" for m in kinds))  # fmt: skip
    ranked = sorted(per_repo.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    rows: list[tuple[Cell, ...]] = [
        (repo_name, *(counts[name] for name in names)) for repo_name, counts in ranked
    ]
    chart = Chart(
        kind="bar",
        title="Conflicted files by resolution",
        x=tuple(kinds),
        series=(("files", tuple(float(methods[m]) for m in kinds)),),
        y_label="files",
    )
    intro = ("Conflict events per repository, and how each file of a resolved conflict was "
             "resolved: ours, theirs, manual (edited by hand) or claude (gitaudit resolve).")
    return Section("Conflicts", (top_table(columns, rows, top), chart), intro=intro)


def _resolutions(event: dict[str, Any]) -> Iterator[str]:
    details = event.get("details")
    files = details.get("files") if isinstance(details, dict) else None
    for entry in files if isinstance(files, list) else ():
        method = entry.get("resolution") if isinstance(entry, dict) else None
        yield method if isinstance(method, str) and method else "unknown"


def _claude(conn: Connection, flt: EventFilter, buckets: Buckets) -> Section:
    requests = narrowed(flt, ("claude.request",))
    model_of = CLAUDE_GROUPS["model"]
    per_model: dict[str, UsageRow] = {}
    total = UsageRow("total")
    calls: Counter[tuple[str, str]] = Counter()
    tokens: Counter[tuple[str, str]] = Counter()
    cost: defaultdict[tuple[str, str], float] = defaultdict(float)
    for event in iter_events(conn, requests) if requests is not None else ():
        model = model_of(event)
        per_model.setdefault(model, UsageRow(model)).add(event)
        total.add(event)
        cell = (buckets.label(str(event.get("occurred_at", ""))), model)
        calls[cell] += 1
        spent, usd = _spent(event)
        tokens[cell] += spent
        cost[cell] += usd
    if not per_model:
        return Section("Claude", (), intro="No Claude request in this period.")
    models = sorted(per_model)
    columns = ("model", "requests", "failures", "input tokens", "output tokens",
               "cache write tokens", "cache read tokens", "cost USD", "unpriced")  # fmt: skip
    rows = (*(_usage_row(per_model[m]) for m in models), _usage_row(total))
    table = Table(columns, rows, note="cost: recorded estimates; unpriced requests carry none")
    unit = f"per {buckets.unit} (UTC) by model"
    charts = (
        Chart("stacked_bar", f"Claude requests {unit}", buckets.labels,
              _series(buckets, dict(calls), models), "requests"),
        Chart("stacked_bar", f"Claude tokens {unit}", buckets.labels,
              _series(buckets, dict(tokens), models), "tokens (input, output, cache)"),
        Chart("stacked_bar", f"Claude cost {unit}", buckets.labels,
              _series(buckets, {k: round(v, 6) for k, v in cost.items()}, models), "USD"),
    )  # fmt: skip
    return Section("Claude", (table, *charts),
                   intro="Requests to Claude (SDK and Claude Code), tokens and estimated cost.")


def _spent(event: dict[str, Any]) -> tuple[int, float]:
    """Tokens (input, output, cache) and cost of a ``claude.request``, as UsageRow adds them."""
    row = UsageRow("")
    row.add(event)
    return sum(getattr(row, name) for name in TOKEN_FIELDS), row.cost_usd


def _usage_row(row: UsageRow) -> tuple[Cell, ...]:
    return (row.key, row.requests, row.failures, row.input_tokens, row.output_tokens,
            row.cache_creation_input_tokens, row.cache_read_input_tokens,
            round(row.cost_usd, 6), row.unpriced)  # fmt: skip
