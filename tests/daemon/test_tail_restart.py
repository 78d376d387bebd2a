"""`gitaudit tail -f` against a REAL daemon that is stopped and started again.

While the daemon is away, tail follows the store from where the live feed left
off (an event another writer stores meanwhile is shown); once the daemon is
back it subscribes again. Every event is shown once, in order.
"""

from __future__ import annotations

from gitaudit.events import validate_event
from gitaudit.store import Store
from tests.cli.test_tail import _interrupt, _read_ids, _start
from tests.daemon.daemon_harness import Daemons, make_event


def test_tail_follows_across_a_daemon_restart(daemons: Daemons) -> None:
    run = daemons().start()
    env = {**run.env, "PYTHONUNBUFFERED": "1", "GITAUDIT_RUNTIME_DIR": str(run.runtime),
           "GITAUDIT_DATABASE_URL": run.database_url,
           "GITAUDIT_SPOOL_DIR": str(run.root / "client-spool")}
    first = make_event(1)
    run.send([first])
    run.wait_stored([first["id"]])
    proc = _start(env, "-f", "--format", "jsonl", "--limit", "5")
    assert proc.stdout is not None and proc.stderr is not None
    assert _read_ids(proc.stdout, 1) == [first["id"]]
    second = make_event(2)
    assert run.send([second])[0]["status"] == "accepted"
    assert _read_ids(proc.stdout, 1) == [second["id"]]  # through the live feed

    assert run.stop() == 0
    assert "closed the live feed" in proc.stderr.readline()
    offline = validate_event(make_event(3)).to_record()
    with Store.open(run.database_url, chain_id="another-writer") as store:
        store.append([offline])  # e.g. `gitaudit ingest` on this store while the daemon is down
    assert _read_ids(proc.stdout, 1) == [offline["id"]]  # from the store

    run.start()
    assert "daemon is back" in proc.stderr.readline()
    fourth = make_event(4)
    assert run.send([fourth])[0]["status"] == "accepted"
    assert _read_ids(proc.stdout, 1) == [fourth["id"]]
    code, err = _interrupt(proc)
    assert code == 0, err
    assert "Traceback" not in err
