"""The spool: durable appends, sealing, torn lines, permissions, fallback."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gitaudit.config import Settings
from gitaudit.errors import SpoolError
from gitaudit.transport import deliver, fallback_spool_dir, spool, spool_dirs


def _events(n: int, tag: str = "e") -> list[dict[str, object]]:
    return [{"id": f"{tag}-{i}", "n": i} for i in range(n)]


def _all_lines(folder: Path) -> list[dict[str, object]]:
    lines = []
    for segment in spool.sealed_segments(folder):
        lines += [line.event for line in spool.read_segment(segment) if line.event is not None]
    return lines  # type: ignore[return-value]


def test_append_then_seal_roundtrip(tmp_path: Path) -> None:
    spool.append(tmp_path, _events(3), segment_bytes=1 << 20)
    active = tmp_path / spool.ACTIVE_NAME
    assert stat.S_IMODE(active.stat().st_mode) == 0o600
    sealed = spool.seal_active(tmp_path)
    assert sealed is not None and not active.exists()
    assert [event["id"] for event in _all_lines(tmp_path)] == ["e-0", "e-1", "e-2"]


def test_seal_of_empty_or_missing_active_is_a_no_op(tmp_path: Path) -> None:
    assert spool.seal_active(tmp_path) is None
    (tmp_path / spool.ACTIVE_NAME).touch()
    assert spool.seal_active(tmp_path) is None


def test_segment_rotates_at_size(tmp_path: Path) -> None:
    for i in range(10):
        spool.append(tmp_path, _events(5, tag=f"b{i}"), segment_bytes=200)
    assert len(spool.sealed_segments(tmp_path)) >= 5
    spool.seal_active(tmp_path)
    assert len(_all_lines(tmp_path)) == 50


def test_writer_closes_a_torn_line_left_by_a_crashed_writer(tmp_path: Path) -> None:
    (tmp_path / spool.ACTIVE_NAME).write_bytes(b'{"id":"torn","n"')
    spool.append(tmp_path, _events(1), segment_bytes=1 << 20)
    segment = spool.seal_active(tmp_path)
    assert segment is not None
    lines = list(spool.read_segment(segment))
    assert lines[0].event is None and "not JSON" in (lines[0].error or "")
    assert lines[1].event == {"id": "e-0", "n": 0}


def test_truncated_last_line_is_reported_not_parsed(tmp_path: Path) -> None:
    segment = tmp_path / "seg-00000000000000000001-1.jsonl"
    segment.write_bytes(b'{"id":"ok"}\n[1,2]\n\xff\xfe\n{"id":"cut"')
    lines = list(spool.read_segment(segment))
    assert [line.event for line in lines] == [{"id": "ok"}, None, None, None]
    assert "not a JSON object" in (lines[1].error or "")
    assert "truncated" in (lines[3].error or "")
    target = spool.quarantine(tmp_path, [line for line in lines if line.event is None])
    assert target is not None
    assert target.read_bytes().count(b"\n") == 3
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


_WRITER = """
import sys
from pathlib import Path
from gitaudit.transport import spool
folder, tag = Path(sys.argv[1]), sys.argv[2]
for i in range(200):
    spool.append(folder, [{"id": f"{tag}-{i}", "pad": "x" * 50}], segment_bytes=4096)
"""


def test_concurrent_writers_and_sealing_lose_nothing(tmp_path: Path) -> None:
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), f"w{n}"]) for n in range(4)
    ]
    seals = 0
    while any(proc.poll() is None for proc in writers):
        seals += spool.seal_active(tmp_path) is not None
    assert all(proc.wait() == 0 for proc in writers)
    spool.seal_active(tmp_path)
    ids = [event["id"] for event in _all_lines(tmp_path)]
    assert len(ids) == 800 and len(set(ids)) == 800


def test_unicode_and_surrogates_survive_as_ascii_json(tmp_path: Path) -> None:
    spool.append(tmp_path, [{"id": "u", "text": "grüß \udcff"}], segment_bytes=1 << 20)
    raw = (tmp_path / spool.ACTIVE_NAME).read_bytes()
    assert raw.isascii()
    assert json.loads(raw)["text"] == "grüß \udcff"


_APPEND_ONE = """
import sys
from pathlib import Path
from gitaudit.errors import SpoolError
from gitaudit.transport import spool
try:
    spool.append(Path(sys.argv[1]), [{"id": "x"}], segment_bytes=1 << 20)
except SpoolError as exc:
    print(exc.message)
    sys.exit(3)
"""


def test_read_only_directory_raises_spool_error(tmp_path: Path) -> None:
    """Run as an unprivileged user when we are root: root ignores directory modes."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    tmp_path.chmod(0o755)
    command = [sys.executable, "-c", _APPEND_ONE, str(folder)]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
    result = subprocess.run(command, capture_output=True, text=True, cwd="/")
    assert result.returncode == 3, result.stderr
    assert "Permission denied" in result.stdout
    assert not (folder / spool.ACTIVE_NAME).exists()


def test_deliver_falls_back_to_emergency_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the spool directory should be")
    settings = Settings({"spool_dir": str(blocker / "spool")})
    delivery = deliver(_events(1), settings)
    assert delivery.path == fallback_spool_dir()
    assert delivery.warning is not None and "emergency spool" in delivery.warning
    assert Path(fallback_spool_dir()) in spool_dirs(settings)
    assert (Path(fallback_spool_dir()) / spool.ACTIVE_NAME).exists()


def test_deliver_reports_when_nothing_can_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("TMPDIR", str(blocker))
    with pytest.raises(SpoolError, match="emergency spool failed too"):
        deliver(_events(1), Settings({"spool_dir": str(blocker / "spool")}))


@pytest.mark.parametrize(
    "event",
    [
        {"id": "x", "n": 1, "f": 1.5, "t": True, "none": None, "list": [1, "a", {"b": []}]},
        {"text": "grüß \udcff \u2028 \"quoted\" \\ \n\t", "big": 10**30, "neg": -0.0},
        {},
    ],
)
def test_spool_lines_are_what_json_dumps_writes(event: dict[str, object]) -> None:
    expected = json.dumps(event, separators=(",", ":"), allow_nan=False).encode() + b"\n"
    assert spool.encode_line(event) == expected


@pytest.mark.parametrize("bad", [{"x": float("nan")}, {"x": object()}, {"x": {1j: 1}}])
def test_spool_lines_refuse_what_json_refuses(bad: dict[str, object]) -> None:
    with pytest.raises((TypeError, ValueError)):
        json.dumps(bad, allow_nan=False)
    with pytest.raises((TypeError, ValueError)):
        spool.encode_line(bad)


def test_clean_text_keeps_valid_events_and_repairs_surrogates() -> None:
    from gitaudit.pipeline import clean_text

    valid = {"a": ["ü", {"b": 1.5}], "c": None}
    assert clean_text(valid) is valid
    repaired = clean_text({"argv": ["git", "log", "caf\udce9"], "n": 1})
    assert repaired == {"argv": ["git", "log", "caf\ufffd"], "n": 1}
    repaired["argv"][2].encode("utf-8")
