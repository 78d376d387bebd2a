"""Renderers: JSON (the to_json form, events streamed), Markdown, and one self-contained
HTML file that escapes what events carry and shows in a real browser (headless Chromium)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gitaudit.report import usage
from gitaudit.report.model import (
    Chart,
    EventStream,
    Finding,
    Findings,
    KeyValues,
    Report,
    Section,
    Table,
    to_json,
)
from gitaudit.report.options import ReportOptions
from gitaudit.report.render_html import write_html
from gitaudit.report.render_json import write_json
from gitaudit.report.render_md import write_md
from gitaudit.store import EventFilter, Store
from tests.report.events import event, known_events
from tests.report.png import pixel_colours

EVIL = "<script>alert('x')</script>"
IDS = ("0190a1b2-0000-7000-8000-000000000001", "0190a1b2-0000-7000-8000-000000000002")


def _hand_made(stream: EventStream | None = None) -> Report:
    blocks: tuple[Any, ...] = (
        KeyValues((("events", 1234), ("branch", f"main{EVIL}"), ("cost", 0.125))),
        Table(("repo", "events"), ((f"a|b {EVIL}", 3), (None, 0.5)), note="top 1 of 2"),
        Chart("line", "Per day", ("2026-11-01", "2026-11-02"), (("git.push", (1.0, 4.0)),)),
        Findings((Finding("Force-push to main", "high", f"by mallory on {EVIL}", IDS, 7),)),
        Findings((), empty="No force-push."),
    )
    sections = [Section("Evidence", blocks, intro="What was found.")]
    if stream is not None:
        sections.append(Section("Events", (stream,)))
    return Report("soc2", "SOC 2 evidence", "2026-11-04T00:00:00Z",
                  ("2026-11-01T00:00:00Z", None), {"repo": EVIL}, tuple(sections), 1234,
                  ("A note.",))  # fmt: skip


def _usage(store: Store) -> Report:
    records = known_events()
    records += [
        event("git.push", timedelta(hours=30), user=EVIL, repo=EVIL, branch=EVIL),
        event("claude.request", timedelta(hours=50), source="claude",
              details={"model": EVIL, "input_tokens": 1}),
    ]  # fmt: skip
    store.append(records)
    with store.reading() as conn:
        return usage.build(conn, EventFilter(), ReportOptions(), lambda done: None)


def _html(report: Report) -> str:
    out = io.StringIO()
    write_html(report, out)
    return out.getvalue()


# --- JSON ----------------------------------------------------------------------------------


def test_json_is_the_to_json_form(store: Store) -> None:
    report = _usage(store)
    out = io.StringIO()
    write_json(report, out)
    assert json.loads(out.getvalue()) == json.loads(json.dumps(to_json(report)))


def test_json_streams_an_event_stream_written_as_it_is_read() -> None:
    out = io.StringIO()
    written_before: list[bool] = []

    def events() -> Iterator[dict[str, Any]]:
        for index in range(3):
            written_before.append(f'"n": {index - 1}' in out.getvalue())
            yield {"id": IDS[index % 2], "n": index, "repo": EVIL}

    write_json(_hand_made(EventStream(events)), out)
    assert written_before == [False, True, True]  # event n-1 was out before n was read
    document = json.loads(out.getvalue())
    block = document["sections"][1]["blocks"][0]
    assert block == {"type": "events", "events": [
        {"id": IDS[0], "n": 0, "repo": EVIL}, {"id": IDS[1], "n": 1, "repo": EVIL},
        {"id": IDS[0], "n": 2, "repo": EVIL}]}  # fmt: skip
    assert document["events_read"] == 1234 and document["filters"] == {"repo": EVIL}


# --- Markdown ------------------------------------------------------------------------------


def test_markdown_tables_charts_and_findings() -> None:
    out = io.StringIO()
    write_md(_hand_made(EventStream(lambda: iter([{"id": IDS[0]}]))), out)
    text = out.getvalue()
    assert text.startswith("# SOC 2 evidence\n")
    assert "- period: 2026-11-01T00:00:00Z to now" in text
    assert "| events | 1234 |" in text and "| cost | 0.125 |" in text
    # a | from an event cannot split the cell, and no markup survives
    assert "| a\\|b &lt;script&gt;alert('x')&lt;/script&gt; | 3 |" in text
    assert "| - | 0.5 |" in text and "_top 1 of 2_" in text
    assert "**Per day**" in text and "| 2026-11-02 | 4 |" in text
    assert f"`{IDS[0]}`, `{IDS[1]}` and 5 more" in text and "`gitaudit trace ID`" in text
    assert "No force-push." in text and "> A note." in text
    assert f'```json\n{{"id": "{IDS[0]}"}}\n```' in text
    assert "<script" not in text


def test_markdown_of_the_usage_report(store: Store) -> None:
    out = io.StringIO()
    write_md(_usage(store), out)
    text = out.getvalue()
    assert "## Top actors" in text and "| dave | 9 | 0 | 36 |" in text
    assert "| git.push | 11 | 2 | 18.2 | 50 | 95 |" in text
    assert "&lt;script&gt;" in text and "<script" not in text


# --- HTML ----------------------------------------------------------------------------------


def _external_references(html: str) -> list[str]:
    """Every http(s) URL, src/href target or CSS url()/@import that is not the SVG
    namespace or a link inside the page."""
    found = [url for url in re.findall(r"https?://[^\s\"'<>)]+", html)
             if url != "http://www.w3.org/2000/svg"]  # fmt: skip
    found += [ref for ref in re.findall(r"(?:src|href)\s*=\s*[\"']?([^\"'\s>]+)", html)
              if not ref.startswith("#")]  # fmt: skip
    found += re.findall(r"url\(|@import", html)
    return found


def test_html_is_self_contained_and_escapes_what_events_carry(store: Store) -> None:
    html = _html(_usage(store))
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html.lower()
    assert _external_references(html) == []
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html  # the repo and the actor
    assert html.count("<svg") == 6  # every chart inline
    assert "@media print" in html and "break-inside: avoid" in html
    # the model name reached the chart's legend escaped too
    figure = html[html.index("Claude requests per day"):]
    figure = figure[: figure.index("</figure>")]
    assert '</span>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</li>' in figure


def test_html_findings_name_their_events_and_streams_events() -> None:
    html = _html(_hand_made(EventStream(lambda: iter([{"id": IDS[0], "repo": EVIL}]))))
    assert "<script" not in html.lower()
    assert f"<code>{IDS[0]}</code>" in html and f"<code>{IDS[1]}</code>" in html
    assert "7 event(s), the first 2" in html and "<code>gitaudit trace ID</code>" in html
    assert "No force-push." in html and "A note." in html
    assert "&#34;repo&#34;: &#34;&lt;script&gt;" in html  # the streamed event, escaped
    assert _external_references(html) == []


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: ./scripts/test installs it when run as root "
                    "(apt-get install chromium); the HTML report test needs it")  # fmt: skip
    return found


def test_the_html_report_renders_in_chromium(sqlite_url: str, tmp_path: Path) -> None:
    with Store.open(sqlite_url, chain_id="test-chain") as store:
        html = _html(_usage(store))
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    shot = tmp_path / "report.png"
    # a short directory of its own: Chromium's singleton socket path must fit in 108 bytes
    profile = tempfile.mkdtemp(prefix="gitaudit-chromium-", dir="/tmp")
    try:
        result = subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--force-device-scale-factor=0.5",
             f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "TMPDIR": profile},
        )  # fmt: skip
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    width, height, colours = pixel_colours(shot.read_bytes())
    assert (width, height) == (600, 1000)
    pixels = width * height
    white = colours[b"\xff\xff\xff"]
    assert 1 - white / pixels > 0.03, "the page is (almost) blank"
    assert len(colours) > 50, "only a few colours: no text or chart was drawn"
    coloured = sum(n for rgb, n in colours.items() if rgb[2] - rgb[0] > 60 or rgb[0] - rgb[2] > 60)
    assert coloured > 1000, "no chart colours on the page"
