"""The systemd units in systemd/: `systemd-analyze verify` accepts them, and they say what
README's "Installing on a build host" promises (user, hardening, sockets and their modes,
listen queues, watchdog, timer)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

from gitaudit import config, paths

ROOT = Path(__file__).resolve().parent.parent
UNITS_DIR = ROOT / "systemd"
UNITS = (
    "gitaudit.service",
    "gitaudit.socket",
    "gitaudit-retention.service",
    "gitaudit-retention.timer",
)
SHIPPED_BINARY = "/usr/bin/gitaudit"
INSTALL_HINT = (
    "systemd-analyze is missing: install the 'systemd' package "
    "(Debian/Ubuntu: apt-get update && apt-get install -y --no-install-recommends systemd)"
)

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Sections -> key -> every value given (later lines of a key add to it)."""
    unit: Unit = defaultdict(lambda: defaultdict(list))
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        unit[section][key.strip()].append(value.strip())
    return unit


def load(name: str) -> Unit:
    return parse_unit((UNITS_DIR / name).read_text(encoding="utf-8"))


def one(unit: Unit, section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, (section, key, values)
    return values[0]


def venv_gitaudit() -> str:
    candidate = Path(sys.executable).parent / "gitaudit"
    found = str(candidate) if candidate.exists() else shutil.which("gitaudit")
    assert found, "the gitaudit console script is not installed (pip install -e .)"
    return found


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail(INSTALL_HINT)
    return found


def copy_for_verify(target: Path, extra: dict[str, str] | None = None) -> list[Path]:
    """The units with ExecStart pointing at this environment's gitaudit (verify checks
    that the binary exists; the shipped units name /usr/bin/gitaudit)."""
    copies = []
    for name in UNITS:
        text = (UNITS_DIR / name).read_text(encoding="utf-8")
        text = text.replace(SHIPPED_BINARY, venv_gitaudit()) + (extra or {}).get(name, "")
        copy = target / name
        copy.write_text(text, encoding="utf-8")
        copies.append(copy)
    return copies


def verify(units: list[Path]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "notice", "SYSTEMD_PAGER": "cat"}
    return subprocess.run(
        [systemd_analyze(), "verify", "--man=no", *map(str, units)],
        capture_output=True,
        text=True,
        env=env,
        cwd=units[0].parent,
    )


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    result = verify(copy_for_verify(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
    assert result.stderr.strip() == ""


def test_verify_would_catch_a_mistake(tmp_path: Path) -> None:
    """The test above is not vacuous: a misspelt directive is reported."""
    broken = {"gitaudit.service": "\n[Service]\nProtectSytem=strict\n"}
    result = verify(copy_for_verify(tmp_path, broken))
    assert "ProtectSytem" in result.stdout + result.stderr


def test_shipped_units_differ_from_the_verified_copies_only_in_the_binary(
    tmp_path: Path,
) -> None:
    for shipped, copy in zip(UNITS, copy_for_verify(tmp_path), strict=True):
        original = (UNITS_DIR / shipped).read_text(encoding="utf-8").splitlines()
        verified = copy.read_text(encoding="utf-8").splitlines()
        changed = [(a, b) for a, b in zip(original, verified, strict=True) if a != b]
        for before, after in changed:
            assert before.startswith("ExecStart=" + SHIPPED_BINARY + " ")
            assert after == before.replace(SHIPPED_BINARY, venv_gitaudit())


def test_service_is_a_hardened_notify_daemon() -> None:
    unit = load("gitaudit.service")
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "ExecStart": "/usr/bin/gitaudit daemon",
        "User": "gitaudit",
        "Group": "gitaudit",
        "Restart": "on-failure",
        "WatchdogSec": "30",
        "TimeoutAbortSec": "10s",
        "RuntimeDirectory": "gitaudit",
        "RuntimeDirectoryPreserve": "yes",
        "StateDirectory": "gitaudit",
        "ProtectSystem": "strict",
        "ProtectHome": "read-only",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
        "CapabilityBoundingSet": "",
        "ProtectProc": "invisible",
        "ProcSubset": "pid",
        "PrivateMounts": "yes",
        "RemoveIPC": "yes",
    }
    for key, value in expected.items():
        assert one(unit, "Service", key) == value, key
    assert one(unit, "Service", "ReadWritePaths").split() == [
        "/var/lib/gitaudit",
        "/var/spool/gitaudit",
    ]
    assert "gitaudit.socket" in one(unit, "Unit", "Requires")
    assert "DynamicUser" not in unit["Service"]


def test_the_units_point_at_documentation_that_exists() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in UNITS:
        text = (UNITS_DIR / name).read_text(encoding="utf-8")
        for mention in re.findall(r"[\w./-]+\.md", text):
            assert (ROOT / mention).exists(), f"{name} points at {mention}, which does not exist"
        for section in re.findall(r'README\.md, "([^"]+)"', text):
            assert f"### {section}" in readme, f"{name} points at README section {section!r}"


def test_service_environment_names_real_settings() -> None:
    unit = load("gitaudit.service")
    env = dict(item.split("=", 1) for item in unit["Service"]["Environment"])
    assert env["GITAUDIT_SPOOL_DIR"] == "/var/spool/gitaudit"
    assert env["GITAUDIT_RUNTIME_DIR"] == "/run/gitaudit"
    known = {field.env for field in config.FIELDS}
    for name in env:
        assert not name.startswith("GITAUDIT_") or name in known, name


def test_socket_lets_anyone_write_and_nobody_subscribe() -> None:
    unit = load("gitaudit.socket")
    listen = unit["Socket"]["ListenStream"]
    assert listen == [
        f"/run/gitaudit/{paths.EVENTS_SOCKET}",
        f"/run/gitaudit/{paths.TRACE2_SOCKET}",
    ]
    assert one(unit, "Socket", "SocketMode") == "0666"
    # the kernel caps listen() at net.core.somaxconn: INT_MAX asks for exactly that bound
    assert one(unit, "Socket", "Backlog") == str(2**31 - 1)
    assert one(unit, "Socket", "Service") == "gitaudit.service"
    assert not any(paths.SUBSCRIBE_SOCKET in value for value in listen)
    # one FileDescriptorName would name both sockets alike; the daemon keys them by path
    assert "FileDescriptorName" not in unit["Socket"]


def test_retention_runs_daily_as_a_oneshot() -> None:
    service = load("gitaudit-retention.service")
    assert one(service, "Service", "Type") == "oneshot"
    assert one(service, "Service", "ExecStart") == "/usr/bin/gitaudit retention run"
    assert one(service, "Service", "User") == "gitaudit"
    timer = load("gitaudit-retention.timer")
    assert one(timer, "Timer", "OnCalendar") == "daily"
    assert one(timer, "Timer", "Persistent") == "true"
    assert one(timer, "Timer", "RandomizedDelaySec")
    assert one(timer, "Install", "WantedBy") == "timers.target"


MDWE_WORKLOAD = textwrap.dedent(
    """
    import ctypes, mmap, sys, tempfile, os
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_MDWE) failed: errno {ctypes.get_errno()}")
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        sys.exit("a writable+executable mapping was allowed: MDWE is not in force")
    except OSError:
        pass
    import asyncio, httpx, pygit2, psycopg, structlog, prometheus_client, watchfiles
    import gitaudit.daemon.server, gitaudit.daemon.sinks, gitaudit.daemon.subscribers
    from gitaudit.store import Store
    from tests.store.helpers import make_record
    work = tempfile.mkdtemp()
    with Store.open(f"sqlite:///{work}/audit.db", chain_id="mdwe") as store:
        store.append([make_record(1)])
        assert store.count() == 1
    pygit2.init_repository(os.path.join(work, "repo"))
    async def post():
        transport = httpx.MockTransport(lambda request: httpx.Response(201))
        async with httpx.AsyncClient(transport=transport) as client:
            return (await client.post("http://sink.test/", json=[1])).status_code
    assert asyncio.run(post()) == 201
    print("ok")
    """
)


def test_python_and_the_daemon_dependencies_work_under_memory_deny_write_execute() -> None:
    """MemoryDenyWriteExecute=yes refuses W+X memory; the kernel's PR_SET_MDWE does the
    same, so the daemon's imports and a store write run under it here."""
    result = subprocess.run(
        [sys.executable, "-c", MDWE_WORKLOAD], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# What ProtectProc=invisible and ProcSubset=pid make of /proc (systemd.exec(5)): the proc
# options hidepid=invisible,subset=pid, in a mount namespace of the service's own.
RESTRICTED_PROC = (
    "mount -t proc -o hidepid=invisible,subset=pid proc /proc && "
    'exec setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"'
)
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def python_for_nobody(pythonpath: str) -> str | None:
    """An interpreter of this Python version that ``nobody`` may run and that imports the
    daemon (a virtualenv under /root links to an interpreter nobody cannot reach)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, shutil.which(version), f"/usr/bin/{version}"):
        if not candidate:
            continue
        probe = subprocess.run(
            [*AS_NOBODY, "env", f"PYTHONPATH={pythonpath}", candidate, "-c",
             "import subprocess, sys, gitaudit.daemon.server;"
             "subprocess.run([sys.executable, '-c', ''], check=True)"],
            capture_output=True, check=False, cwd="/",
        )
        if probe.returncode == 0:
            return candidate
    return None


def test_the_daemon_works_under_protect_proc_invisible_and_proc_subset_pid() -> None:
    """The daemon, not root, sees only its own processes and no /proc/sys: peers are
    identified by SO_PEERCRED alone, so root's events and git's trace2 are still recorded
    as root's, and metrics and the store work."""
    if os.geteuid() != 0:
        pytest.skip("mounting a restricted /proc in a mount namespace needs root")
    import sysconfig

    from tests.daemon.daemon_harness import DaemonRun, make_event, wait_for

    pythonpath = f"{ROOT}:{sysconfig.get_paths()['purelib']}"
    python = python_for_nobody(pythonpath)
    if python is None:
        pytest.skip(f"no Python {sys.version_info[:2]} here that the user nobody may run")
    run = DaemonRun(env={"PYTHONPATH": pythonpath})
    spool = run.root / "client-spool"
    spool.mkdir()
    run.write_config(watch_spool_dirs=[str(spool)])
    try:
        subprocess.run(["chown", "-R", "nobody:nogroup", str(run.root)], check=True)
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", RESTRICTED_PROC,
                "sh", python, *run.command()[1:]]
        run.start(argv=argv)
        assert run.send([make_event()])[0]["status"] == "accepted"
        repo = run.root / "repo"
        env = {"PATH": os.environ["PATH"], "HOME": str(run.root), "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_CONFIG_GLOBAL": os.devnull,
               "GIT_TRACE2_EVENT": f"af_unix:stream:{run.runtime / 'trace2.sock'}"}
        subprocess.run(["git", "init", "-q", str(repo)], env=env, check=True)
        stored = wait_for(
            lambda: [e for e in run.stored() if e["source"] == "trace2"] and run.stored(),
            "the socket event and git's trace2 event in the store",
        )
        assert {event["actor"]["uid"] for event in stored} == {0}
        assert all(event["actor"]["verified"] for event in stored)
        assert run.metrics()["gitaudit_store_up"] == 1.0
        assert '"backlog": null' in run.log()  # /proc/sys is hidden: logged as unknown
        assert '"part_failed"' not in run.log()
        assert run.stop() == 0
        assert '"event": "stopped"' in run.log()
    finally:
        run.cleanup()
