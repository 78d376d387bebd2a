"""`gitaudit tail [-f]`: recent events, then new ones from the daemon's feed or the store."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from gitaudit.cli.common import OutputFormat
from gitaudit.cli.log import event_filter
from gitaudit.cli.output import CSV_COLUMNS, TABLE_COLUMNS
from gitaudit.cli.tail import LINE_WIDTHS, Printer, StoreCursor, format_line, subscription_filter
from gitaudit.config import Settings
from gitaudit.daemon.metrics import Metrics
from gitaudit.daemon.subscribers import Hub, SubscriptionFilter
from gitaudit.store import EventFilter, Store
from gitaudit.transport import spool
from tests.cli.helpers import isolated_env
from tests.store.helpers import make_record

# --- pure parts ------------------------------------------------------------------------------


def test_format_line_pads_truncates_and_right_aligns_ms() -> None:
    cells = ("2026-11-01 12:00:00", "git.push", "success", "high", "a" * 40, "app", "main", "17")
    line = format_line((*cells, "+refs/heads/main"))
    assert line.startswith("2026-11-01 12:00:00  git.push ")
    assert ("a" * 15 + "…") in line and "a" * 17 not in line
    assert line.endswith("    17  +refs/heads/main")
    header = format_line(TABLE_COLUMNS)
    assert header.split() == [
        "time",
        "(UTC)",
        "operation",
        "outcome",
        "sev",
        "actor",
        "repo",
        "branch",
        "ms",
        "summary",
    ]
    assert len(LINE_WIDTHS) == len(TABLE_COLUMNS) - 1


def _printer(fmt: OutputFormat, follow: bool = True) -> tuple[Printer, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Printer(fmt, follow=follow, out=out, err=err), out, err


def test_follow_table_prints_a_header_once_then_one_line_per_event() -> None:
    printer, out, _ = _printer(OutputFormat.table)
    printer.emit([make_record(0)])
    printer.emit([])
    printer.emit([make_record(1), make_record(2)])
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("time (UTC)")
    assert not any(char in out.getvalue() for char in "│┃━")  # no table borders


def test_follow_json_means_json_lines() -> None:
    for fmt in (OutputFormat.json, OutputFormat.jsonl):
        printer, out, _ = _printer(fmt)
        records = [make_record(0), make_record(1)]
        printer.emit(records[:1])
        printer.emit(records[1:])
        assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == [
            record["id"] for record in records
        ]


def test_follow_csv_writes_the_header_once() -> None:
    printer, out, _ = _printer(OutputFormat.csv)
    printer.emit([make_record(0)])
    printer.emit([make_record(1)])
    lines = out.getvalue().splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert len(lines) == 3


def test_without_follow_the_log_formats_are_used() -> None:
    printer, out, _ = _printer(OutputFormat.json, follow=False)
    printer.emit([make_record(0)])
    assert len(json.loads(out.getvalue())) == 1


def test_drop_notice_goes_to_stderr() -> None:
    printer, out, err = _printer(OutputFormat.jsonl)
    printer.dropped(12)
    assert out.getvalue() == ""
    assert "12 event(s) dropped" in err.getvalue()


def test_subscription_filter_carries_logs_filters() -> None:
    flt = event_filter(op=["git.*"], actor="al*", repo="app", outcome="failure", since="2h")
    assert subscription_filter(flt) == SubscriptionFilter(
        operations=("git.*",), actor="al*", repo="app", outcome="failure"
    )


# --- the store cursor (both engines) ---------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = (
        f"sqlite:///{tmp_path / 'audit.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_fresh_url")
    )
    with Store.open(url, chain_id="chain-a") as opened:
        yield opened


def test_cursor_returns_each_new_event_once_across_chains(store: Store, tmp_path: Path) -> None:
    store.append([make_record(n) for n in range(3)])
    cursor = StoreCursor(store.heads(), set())
    assert store.heads() == {"chain-a": 3}
    assert cursor.advance(store, EventFilter()) == []
    store.append([make_record(3)])
    with Store.open(_url(store), chain_id="chain-b") as other:
        other.append([make_record(4)])
    got = cursor.advance(store, EventFilter())
    assert sorted((event["chain_id"], event["seq"]) for event in got) == [
        ("chain-a", 4),
        ("chain-b", 1),
    ]
    assert cursor.advance(store, EventFilter()) == []


def _url(store: Store) -> str:
    return store._url


def test_cursor_applies_the_filter_and_skips_what_was_already_shown(store: Store) -> None:
    first = [make_record(n) for n in range(2)]
    store.append(first)
    shown = {first[-1]["id"]}
    cursor = StoreCursor({"chain-a": 1}, shown)  # heads read before record 2 was shown
    store.append([make_record(5, operation="git.fetch"), make_record(6, operation="git.push")])
    got = cursor.advance(store, EventFilter(operations=("git.push",), limit=20))
    assert [event["operation"] for event in got] == ["git.push"]
    assert cursor.heads == {"chain-a": 4}


# --- end to end ------------------------------------------------------------------------------


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return isolated_env(tmp_path, PYTHONUNBUFFERED="1", **extra)


def _spool(env: dict[str, str], records: list[dict[str, Any]]) -> None:
    spool.append(Path(env["XDG_STATE_HOME"]) / "gitaudit" / "spool", records, 1 << 20)


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitaudit", "tail", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    guard = threading.Timer(120, proc.kill)  # a hung test fails instead of blocking the suite
    guard.daemon = True
    guard.start()
    return proc


def _read_ids(stream: IO[str], count: int) -> list[str]:
    return [json.loads(stream.readline())["id"] for _ in range(count)]


def _interrupt(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def test_tail_shows_the_last_n_events(tmp_path: Path) -> None:
    env = _env(tmp_path)
    records = [make_record(n) for n in range(30)]
    _spool(env, records)
    result = subprocess.run(
        [sys.executable, "-m", "gitaudit", "tail", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert [event["id"] for event in json.loads(result.stdout)] == [r["id"] for r in records[-20:]]


def test_tail_rejects_bad_filters_like_log(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gitaudit", "tail", "--outcome", "maybe"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "--outcome" in result.stderr


def test_follow_without_daemon_polls_the_store_and_ingests_the_spool(tmp_path: Path) -> None:
    env = _env(tmp_path)
    old = [make_record(n) for n in range(3)]
    _spool(env, old)
    proc = _start(
        env, "-f", "--limit", "2", "--format", "json", "--op", "git.push", "--op", "git.fetch"
    )
    assert proc.stdout is not None
    # make_record cycles push, fetch, commit, ...: of the three, the push and the fetch show
    assert _read_ids(proc.stdout, 2) == [old[0]["id"], old[1]["id"]]
    new = [make_record(n) for n in range(5, 11)]  # spooled after tail started: followed
    _spool(env, new)
    wanted = [r["id"] for r in new if r["operation"] in {"git.push", "git.fetch"}]
    assert _read_ids(proc.stdout, len(wanted)) == wanted
    code, err = _interrupt(proc)
    assert code == 0, err
    assert "Traceback" not in err


def _serve_hub(
    path: str, queue_size: int
) -> tuple[Hub, asyncio.AbstractEventLoop, threading.Thread]:
    """A hub on a real subscribe.sock, run by an event loop in a thread (as in the daemon)."""
    hub = Hub(Settings({"subscriber_queue_size": queue_size}), Metrics())
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def main() -> None:
        server = await asyncio.start_unix_server(hub.serve, path=path)
        os.chmod(path, 0o660)
        ready.set()
        async with server:
            await server.serve_forever()

    thread = threading.Thread(target=lambda: _run_quietly(loop, main()), daemon=True)
    thread.start()
    ready.wait(30)
    return hub, loop, thread


def _run_quietly(loop: asyncio.AbstractEventLoop, coro: Any) -> None:
    task = loop.create_task(coro)
    with contextlib.suppress(asyncio.CancelledError):
        loop.run_until_complete(task)


def _on_loop(loop: asyncio.AbstractEventLoop, func: Any, *args: Any) -> Any:
    """Run ``func(*args)`` on the hub's loop and return its result."""
    done = threading.Event()
    box: list[Any] = []

    def call() -> None:
        box.append(func(*args))
        done.set()

    loop.call_soon_threadsafe(call)
    done.wait(30)
    return box[0]


def test_follow_with_daemon_streams_its_feed_and_reports_drops(tmp_path: Path) -> None:
    env = _env(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    hub, loop, _ = _serve_hub(str(run / "subscribe.sock"), queue_size=3)
    old = [make_record(0)]
    _spool(env, old)
    proc = _start(env, "-f", "--format", "jsonl", "--op", "git.push")
    assert proc.stdout is not None
    assert _read_ids(proc.stdout, 1) == [old[0]["id"]]
    while not _on_loop(loop, lambda: len(hub.subscriptions)):
        pass  # tail subscribes before it reads the store, so it is subscribed by now
    live = [make_record(n) for n in range(5, 10)]  # push, fetch, commit, rebase, conflict
    burst = [make_record(n * 5, operation="git.push") for n in range(1, 101)]
    # one publish call on the loop: the queue (3) takes old[0], live[0] and burst[0] (the
    # filter passes pushes only), the other 99 pushes are dropped
    _on_loop(loop, hub.publish, [*old, *live, *burst])
    got = _read_ids(proc.stdout, 2)
    assert got == [live[0]["id"], burst[0]["id"]]  # old[0] was shown already
    assert proc.stderr is not None
    assert "99 event(s) dropped" in proc.stderr.readline()
    code, err = _interrupt(proc)
    loop.call_soon_threadsafe(hub.close)
    assert code == 0, err
    assert "Traceback" not in err
