"""The host daemon: config, then :class:`Server`, then state (``startup → serve → shutdown``).

One asyncio core. :meth:`Server.startup` opens the journal (replaying what a
previous run left), the store, the optional parts (trace2 receiver, subscriber
hub, sinks: imported lazily, tolerated when absent), the client spool watcher,
the sockets (bound here or passed by systemd) and the metrics endpoint, then
tells systemd ``READY=1``. :meth:`Server.serve` waits for signals: their
handlers only set flags. SIGHUP reloads the settings (policy, sanitizer,
flush and failure settings) and records an ``audit.config_changed`` event.
SIGTERM/SIGINT start :meth:`Server.shutdown`: listeners close first, then
connections drain, then everything journaled is flushed to the store, all
within ``shutdown_timeout``; what is left stays in the journal for the next
start. Socket files this process created are removed in ``finally``.

Extension points for the other parts: :attr:`Server.intake` (an
:class:`gitaudit.daemon.api.Intake`), :attr:`Server.metrics`,
:attr:`Server.settings` and :attr:`Server.publisher`.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from gitaudit import paths
from gitaudit.capture import watcher
from gitaudit.catalog import audit_record
from gitaudit.config import Settings, load
from gitaudit.daemon import protocol, systemd
from gitaudit.daemon.agents import AgentTracker
from gitaudit.daemon.api import Peer
from gitaudit.daemon.checkpointer import Checkpointer, check_checkpoint_key
from gitaudit.daemon.intake import EventIntake
from gitaudit.daemon.journal import GroupCommitter, Journal, Worker
from gitaudit.daemon.logging import configure, get_logger
from gitaudit.daemon.metrics import Metrics
from gitaudit.daemon.otlp_receiver import ConnectionState, OtlpReceiver, listen_address
from gitaudit.daemon.retention import retention_loop
from gitaudit.daemon.runtime import LISTEN_BACKLOG, somaxconn, tune_gc
from gitaudit.daemon.sinks import StoreChainReader, build_sinks, check_sink_settings
from gitaudit.daemon.spools import SpoolWatcher
from gitaudit.daemon.subscribers import Hub
from gitaudit.daemon.trace2_receiver import Deduper, Trace2Receiver
from gitaudit.daemon.writer import BatchWriter
from gitaudit.errors import ConfigError, GitauditError
from gitaudit.quarantine import Quarantine

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

EVENTS_MODE: Final = 0o666  # any local user may submit events (never read them)
TRACE2_MODE: Final = 0o666  # git processes of every user write trace2 here
SUBSCRIBE_MODE: Final = 0o660  # live events are for the daemon's user and group only
RUNTIME_DIR_MODE: Final = 0o755
SINK_CURSORS: Final = "sinks"  # under the journal directory: each sink's position
PIPELINE_DEPTH: Final = 8  # reads of one event connection being answered at once
# Settings that only take effect on restart (they shape sockets, files and the store).
RESTART_KEYS: Final = frozenset({
    "runtime_dir", "journal_dir", "database_url", "chain_id", "chain_key_file",
    "metrics_address", "watch_spool_dirs", "subscriber_queue_size", "otlp_address",
    "otlp_allow_remote", "retention_interval",
})  # fmt: skip
# Settings whose change rebuilds the sinks on SIGHUP (a reload also re-reads the token file).
SINK_KEYS: Final = frozenset({
    "http_sink_url", "http_sink_token_file", "http_sink_token_header", "syslog_address",
    "sink_backlog",
})  # fmt: skip


@dataclass
class DaemonConfig:
    """How settings are resolved; :meth:`load` runs at start and on every SIGHUP."""

    config_file: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def files(self) -> list[str]:
        """Config files in increasing precedence (``--config FILE`` last)."""
        files = paths.config_files()
        return [*files, self.config_file] if self.config_file else files

    def load(self) -> Settings:
        """Resolve the settings (raises ConfigError); the daemon's chain is ``daemon@<host>``."""
        settings = load(self.environ, self.files())
        if settings.chain_id:
            return settings
        return Settings({**settings.as_dict(), "chain_id": f"daemon@{os.uname().nodename}"})


def _redact_value(key: str, value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if key == "database_url" and isinstance(value, str):
        from gitaudit.store.engine import redacted

        return redacted(value)
    return value


def settings_diff(before: Settings, after: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The changed keys only: (old values, new values), URLs with passwords hidden."""
    old, new = before.as_dict(), after.as_dict()
    changed = sorted(key for key in new if old.get(key) != new[key])
    return (
        {key: _redact_value(key, old.get(key)) for key in changed},
        {key: _redact_value(key, new[key]) for key in changed},
    )


def config_changed_event(
    before: dict[str, Any], after: dict[str, Any], files: list[str]
) -> dict[str, Any]:
    """The ``audit.config_changed`` record of a reload (actor stamped by the intake)."""
    return audit_record("audit.config_changed",
                        {"before": before, "after": after, "config_files": files},
                        source="daemon", actor={"host": os.uname().nodename})  # fmt: skip


class AlreadyRunningError(GitauditError):
    """Another daemon answers on our socket."""


def bind_unix(path: str, mode: int) -> socket.socket:
    """A listening Unix stream socket at ``path`` (a stale file there is replaced)."""
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # nobody listens: a crashed daemon's leftover
        else:
            raise AlreadyRunningError(
                f"another gitaudit daemon is listening on {path}",
                "stop it first, or give this one its own GITAUDIT_RUNTIME_DIR",
            )
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, mode)
        sock.listen(LISTEN_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


Answers = asyncio.Queue[tuple[asyncio.Task[bytes], float] | None]


async def _enqueue(
    answers: Answers, item: tuple[asyncio.Task[bytes], float] | None, sender: asyncio.Task[None]
) -> bool:
    """Queue ``item`` for ``sender`` (waiting while the queue is full); False if it is gone."""
    if not answers.full():
        answers.put_nowait(item)
        return True
    put = asyncio.ensure_future(answers.put(item))
    await asyncio.wait({put, sender}, return_when=asyncio.FIRST_COMPLETED)
    if put.done():
        return True
    put.cancel()
    return False


class EventConnection:
    """One client of the event socket: frames lines, answers each one, in order.

    Pipelined: while the events of one read wait for the journal's fsync, the
    next read is already being prepared (at most ``PIPELINE_DEPTH`` reads in
    flight; past that the connection stops reading and the client blocks).
    Answers are written in the order their lines arrived.
    """

    def __init__(
        self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.framer = protocol.Framer(server.settings.max_message_bytes)
        # with its ancestry read once, when an AI agent is bound (gitaudit.daemon.agents)
        self.peer = server.agents.with_lineage(Peer.of(writer.get_extra_info("socket")))
        self.lines = 0
        self._reading = True
        self._in_flight = 0

    @property
    def idle(self) -> bool:
        """Waiting for the client with nothing left to answer (shutdown may cancel it)."""
        return self._reading and self._in_flight == 0

    async def run(self) -> None:
        """Serve until the client closes (or the daemon shuts down)."""
        answers: Answers = asyncio.Queue(PIPELINE_DEPTH)
        sender = asyncio.create_task(self._send(answers))
        try:
            while not self.server.closing and not sender.done():
                self._reading = True
                data = await self.reader.read(protocol.READ_CHUNK)
                self._reading = False
                if not data:
                    if self.framer.pending:
                        self.server.metrics.rejected.labels("socket", "truncated").inc()
                    break
                started = time.perf_counter()
                self._in_flight += 1
                task = asyncio.create_task(self.answer(self.framer.feed(data)))
                if not await _enqueue(answers, (task, started), sender):
                    break
        except BaseException:
            sender.cancel()  # cancelled (shutdown) or failed: what was journaled stays journaled
            raise
        if not sender.done():
            await _enqueue(answers, None, sender)  # answer what was read, then stop
        await sender

    async def _send(self, answers: Answers) -> None:
        """Write each read's answer once it is ready, in order."""
        while (item := await answers.get()) is not None:
            task, started = item
            try:
                answer = await task
                if answer:
                    self.writer.write(answer)
                    await self.writer.drain()
                    self.server.metrics.ack_latency.observe(time.perf_counter() - started)
            except BaseException:
                self.writer.close()  # the reader sees the end too: the connection is over
                raise
            finally:
                self._in_flight -= 1

    async def answer(self, frames: list[protocol.Frame]) -> bytes:
        """The answer lines to ``frames``: errors for bad ones, acks for the rest."""
        answers: list[bytes | None] = []
        batches: list[tuple[int, int]] = []  # (answer slot, events in that line)
        events: list[dict[str, Any]] = []
        valid_text = True
        for frame in frames:
            self.lines += 1
            try:
                carried = self._events_of(frame)
            except protocol.ProtocolError as exc:
                self.server.metrics.rejected.labels("socket", exc.reason).inc()
                answers.append(protocol.encode_error(str(exc), self.lines))
                continue
            valid_text = valid_text and isinstance(frame, bytes) and protocol.surrogate_free(frame)
            batches.append((len(answers), len(carried)))
            answers.append(None)
            events.extend(carried)
        if batches:
            intake = self.server.active_intake()
            acks = await intake.accept(
                events, peer=self.peer, source="socket", valid_text=valid_text
            )
            start = 0
            for slot, count in batches:
                answers[slot] = protocol.encode_acks(acks[start : start + count])
                start += count
        return b"".join(answer for answer in answers if answer is not None)

    @staticmethod
    def _events_of(frame: protocol.Frame) -> list[dict[str, Any]]:
        if isinstance(frame, protocol.Overlong):
            raise protocol.ProtocolError(
                f"line longer than max_message_bytes ({frame.size_limit}); discarded", "size"
            )
        return protocol.parse_request(frame)


class Server:
    """The daemon's state and lifecycle."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.settings = config.load()
        self.metrics = Metrics()
        self.publisher = Hub(self.settings, self.metrics)
        self.intake: EventIntake | None = None
        self.closing = False
        self.should_exit = False
        self.reload_requested = False
        self.log = get_logger(component="server")
        self._wakeup = asyncio.Event()
        self._stop_watching = asyncio.Event()
        self._servers: list[asyncio.base_events.Server] = []
        self._socket_files: list[str] = []
        self._connections: dict[asyncio.Task[Any], EventConnection | ConnectionState | None] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._sinks: list[Any] = []
        self._sink_reader: StoreChainReader | None = None
        self._receiver: Trace2Receiver | None = None
        self._otlp: OtlpReceiver | None = None
        self._journal_worker: Worker | None = None
        self._journal: Journal | None = None
        self._committer: GroupCommitter | None = None
        self._writer: BatchWriter | None = None
        self._spools: SpoolWatcher | None = None
        self.activity = watcher.ActivityLog()  # git's own activity, for the repo watcher
        self.agents = AgentTracker(self.metrics.agent_join)  # which git an AI agent ran
        self._watcher: tuple[watcher.Watcher, asyncio.Event, asyncio.Task[Any]] | None = None

    # -- lifecycle --------------------------------------------------------------------

    async def main(self) -> None:
        """``startup()``, ``serve()``, ``shutdown()`` (always, even after a failed startup)."""
        try:
            await self.startup()
            await self.serve()
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        """Open journal and store, start the parts, bind the sockets, tell systemd READY."""
        self._install_signals()
        check_checkpoint_key(self.settings)
        await self._start_core()
        self._start_sinks()
        checkpointer = Checkpointer(lambda: self.settings, self.active_intake, self.log)
        self._spawn(checkpointer.run(), "checkpoints")
        self._spools = SpoolWatcher(
            self.settings.watch_spool_dirs, self.active_intake(), self.metrics,
            self.active_journal().quarantine,
        )  # fmt: skip
        self._spawn(self._spools.run(self._stop_watching), "spools")
        self._start_watcher()
        self._serve_metrics()  # before the sockets: a client that got in finds metrics up too
        await self._open_sockets()
        interval = systemd.watchdog_interval()
        if interval is not None:
            self._spawn(self._watchdog(interval), "watchdog")
        if self.settings.retention_interval > 0:
            self._spawn(retention_loop(lambda: self.settings, self.log), "retention")
        tune_gc()
        systemd.notify("READY=1\nSTATUS=accepting events")
        self.log.info("ready", pid=os.getpid(), journal=str(self._journal_dir()))

    async def serve(self) -> None:
        """Wait for signals: reload on SIGHUP, return on SIGTERM/SIGINT."""
        while not self.should_exit:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self.reload_requested and not self.should_exit:
                self.reload_requested = False
                await self.reload()

    async def shutdown(self) -> None:
        """Close listeners, drain connections, flush the journal to the store, clean up."""
        systemd.notify("STOPPING=1")
        self.log.info("stopping")
        deadline = time.monotonic() + self.settings.shutdown_timeout
        try:
            self.closing = True
            await self._close_listeners()
            await self._drain_connections(deadline)
            await self._stop_parts(deadline)
            await self._final_flush(deadline)
        finally:
            self._remove_socket_files()
            await self._close_core()
            self.log.info("stopped")

    # -- startup pieces ---------------------------------------------------------------

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_exit)
        loop.add_signal_handler(signal.SIGINT, self.request_exit)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)

    def request_exit(self) -> None:
        """Signal handler: only sets the flag."""
        self.should_exit = True
        self._wakeup.set()

    def request_reload(self) -> None:
        """Signal handler: only sets the flag."""
        self.reload_requested = True
        self._wakeup.set()

    def _journal_dir(self) -> Path:
        return Path(self.settings.journal_dir or paths.default_journal_dir())

    async def _start_core(self) -> None:
        self._journal = Journal(
            self._journal_dir(), Quarantine.from_settings(self.settings, "daemon")
        )
        replay = self._journal.open()
        self._journal_worker = Worker("gitaudit-journal")
        self._writer = BatchWriter(
            self._journal, self._journal_worker, lambda: self.settings, self.metrics,
            self.publisher,
        )  # fmt: skip
        self._committer = GroupCommitter(
            self._journal, self._journal_worker, self._writer.journaled
        )
        await self._writer.open_store()
        self.intake = EventIntake(
            self.settings, self._committer, self._writer, self.metrics, Deduper(),
            activity=self.activity, agents=self.agents,
        )
        self._spawn(self._committer.run(), "journal")
        self._writer.replay(replay)
        self._spawn(self._writer.run(), "writer")
        if replay:
            self.log.info("replaying_journal", segments=len(replay))
            self._writer.journaled(0)

    def _start_sinks(self) -> None:
        self._sink_reader = StoreChainReader(self.settings)
        self._sinks = list(build_sinks(
            self.settings, self.publisher, self.metrics,
            reader=self._sink_reader, cursor_dir=str(self._journal_dir() / SINK_CURSORS),
        ))  # fmt: skip
        for sink in self._sinks:
            self._spawn(sink.run(), f"sink-{type(sink).__name__}")

    async def _reload_sinks(self) -> None:
        """Replace the sinks with ones built from the reloaded settings (token re-read).

        The old ones stop first and save their positions; the new ones resume
        from there, reading from the store what went by meanwhile. Settings that
        cannot work are refused before anything stops.
        """
        try:
            check_sink_settings(self.settings)
        except ConfigError as exc:
            self.log.error(  # noqa: TRY400 - an operator error: message and hint suffice
                "sinks_reload_failed", error=exc.message, hint=exc.hint
            )
            return
        await self._close_sinks(time.monotonic() + self.settings.shutdown_timeout)
        self._start_sinks()

    async def _close_sinks(self, deadline: float) -> None:
        for sink in self._sinks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sink.close(), max(0.1, deadline - time.monotonic()))
        self._sinks = []
        if self._sink_reader is not None:
            await asyncio.to_thread(self._sink_reader.close)
            self._sink_reader = None

    def active_journal(self) -> Journal:
        """The journal (set once startup opened it)."""
        assert self._journal is not None  # noqa: S101 - set by _start_core
        return self._journal

    def active_intake(self) -> EventIntake:
        """The intake (set once startup opened the journal)."""
        assert self.intake is not None  # noqa: S101 - set by _start_core
        return self.intake

    async def _open_sockets(self) -> None:
        passed = systemd.listen_fds()
        runtime = paths.daemon_runtime_dir(self.settings.runtime_dir)
        os.makedirs(runtime, mode=RUNTIME_DIR_MODE, exist_ok=True)
        await self._start_otlp()  # before the event socket: a client that got in finds it up
        await self._listen(passed, runtime, "events", paths.EVENTS_SOCKET, EVENTS_MODE,
                           self._handle_events)  # fmt: skip
        self._receiver = Trace2Receiver(self.active_intake(), self.settings, self.metrics,
                                        activity=self.activity, agents=self.agents)
        await self._listen(passed, runtime, "trace2", paths.TRACE2_SOCKET, TRACE2_MODE,
                           self._tracked(self._receiver.handle))  # fmt: skip
        await self._listen(passed, runtime, "subscribe", paths.SUBSCRIBE_SOCKET,
                           SUBSCRIBE_MODE, self._tracked(self.publisher.serve))  # fmt: skip

    async def _start_otlp(self) -> None:
        """Listen for Claude Code's OTLP/HTTP logs when ``otlp_address`` is set."""
        address = self.settings.otlp_address or ""
        try:
            where = listen_address(self.settings)
            if where is None:
                return
            receiver = OtlpReceiver(self.active_intake(), self.settings, self.metrics)
            server = await asyncio.start_server(
                self._otlp_handler(receiver), where[0], where[1], backlog=LISTEN_BACKLOG,
                reuse_address=True,
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot receive OTLP logs on {address}: {exc}",
                "set GITAUDIT_OTLP_ADDRESS to a free loopback host:port (127.0.0.1:4318), "
                "set GITAUDIT_OTLP_ALLOW_REMOTE=true for another address, or unset it",
            ) from exc
        self._otlp = receiver
        self._servers.append(server)
        bound = [sock.getsockname()[:2] for sock in server.sockets]
        self.log.info("listening", otlp=address, bound=bound)

    def _otlp_handler(self, receiver: OtlpReceiver) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None  # noqa: S101 - always inside a task
            state = ConnectionState()
            self._connections[task] = state
            try:
                await receiver.handle(reader, writer, state)
            finally:
                self._connections.pop(task, None)

        return handle

    async def _listen(
        self,
        passed: dict[str, socket.socket],
        runtime: str,
        name: str,
        filename: str,
        mode: int,
        handler: Handler,
    ) -> None:
        sock = passed.get(name) or passed.get(filename)
        if sock is None:
            path = os.path.join(runtime, filename)
            sock = bind_unix(path, mode)
            self._socket_files.append(path)
            self.log.info("listening", socket=path, backlog=somaxconn())
        else:
            self.log.info("listening", socket=filename, activated=True, backlog=somaxconn())
        # asyncio listens again, by default with a backlog of 100: past it, git blocks
        server = await asyncio.start_unix_server(handler, sock=sock, backlog=LISTEN_BACKLOG)
        self._servers.append(server)

    def _start_watcher(self) -> None:
        """Watch ``watch_repos`` (a path that is not a repository is logged and skipped)."""
        repos: dict[str, watcher.WatchedRepo] = {}
        for path in self.settings.watch_repos:
            try:
                found = watcher.locate(path)
            except watcher.WatchError as exc:
                self.log.error(  # noqa: TRY400 - an operator error: message and hint suffice
                    "watch_repo_invalid", path=path, error=exc.message, hint=exc.hint
                )
                continue
            repos.setdefault(found.common_dir, found)
        if not repos:
            return
        intake = self.active_intake()

        async def deliver(events: list[dict[str, Any]]) -> None:
            try:
                await intake.accept(events, peer=None, source=watcher.SOURCE)
            except Exception:  # logged; the watcher goes on with later changes
                self.log.exception("watcher_delivery_failed", events=len(events))

        watch = watcher.Watcher(
            list(repos.values()), deliver, activity=self.activity,
            window=self.settings.watch_window, git=self.settings.git,
            log=get_logger(component="watcher").info,
        )  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.ensure_future(watch.run(stop))
        task.set_name("watcher")
        task.add_done_callback(self._part_ended)
        self._watcher = (watch, stop, task)

    async def _stop_watcher(self, timeout: float) -> None:
        """Stop the repo watcher; the changes it holds are decided and delivered first."""
        if self._watcher is None:
            return
        _, stop, task = self._watcher
        self._watcher = None
        stop.set()
        try:
            await asyncio.wait_for(task, max(0.1, timeout))
        except TimeoutError:
            self.log.warning("watcher_stop_timeout")
        except Exception:  # noqa: BLE001 - already logged by _part_ended
            self.log.debug("watcher_ended_with_error")

    def _serve_metrics(self) -> None:
        address = self.settings.metrics_address.strip()
        if not address:
            return
        try:
            host, port = self.metrics.serve(address)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot serve metrics on {address}: {exc}",
                "set GITAUDIT_METRICS_ADDRESS to a free host:port ([::1]:9464 for IPv6), "
                "or to an empty value",
            ) from exc
        self.log.info("metrics", address=address, host=host, port=port, backlog=somaxconn())

    async def _watchdog(self, interval: float) -> None:
        """Ping systemd while healthy: the loop turns (this task runs) and no journal write
        has been stuck for a whole watchdog timeout (``2 * interval``)."""
        worker = self._journal_worker
        checks = [] if worker is None else [lambda: worker.stalled(2 * interval)]
        dog = systemd.Watchdog(checks)
        withheld = False
        while True:
            problems = dog.beat()
            if problems and not withheld:
                self.log.error("watchdog_withheld", problems=problems)
            elif withheld and not problems:
                self.log.info("watchdog_resumed")
            withheld = bool(problems)
            await asyncio.sleep(interval)

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        task.add_done_callback(self._part_ended)
        self._tasks.append(task)

    def _part_ended(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        self.log.error("part_failed", part=task.get_name(), error=repr(task.exception()))

    # -- connections --------------------------------------------------------------------

    async def _handle_events(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - always inside a task
        try:
            connection = EventConnection(self, reader, writer)
            self._connections[task] = connection
            await connection.run()
        except (ConnectionError, OSError) as exc:
            self.log.debug("client_gone", error=str(exc))
        finally:
            self._connections.pop(task, None)
            writer.close()

    def _tracked(self, handler: Handler) -> Handler:
        """Wrap a part's connection handler so shutdown can drain and cancel it."""

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None  # noqa: S101 - always inside a task
            self._connections[task] = None
            try:
                await handler(reader, writer)
            finally:
                self._connections.pop(task, None)

        return handle

    # -- reload -------------------------------------------------------------------------

    async def reload(self) -> None:
        """Re-resolve settings, rebuild policy and sanitizer, record what changed."""
        systemd.notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            new = self.config.load()
        except ConfigError as exc:
            self.log.error(  # noqa: TRY400 - an operator error: message and hint suffice
                "reload_failed", error=exc.message, hint=exc.hint
            )
            systemd.notify("READY=1")
            return
        before, after = settings_diff(self.settings, new)
        self.settings = new
        self.active_intake().reconfigure(new)
        if self._otlp is not None:
            self._otlp.reconfigure(new)
        if {"watch_repos", "watch_window"} & set(after):
            await self._stop_watcher(self.settings.shutdown_timeout)
            self._start_watcher()
        if self._sinks or SINK_KEYS & set(after):
            await self._reload_sinks()
        if before or after:
            pending = sorted(RESTART_KEYS & set(after))
            self.log.info("reloaded", changed=sorted(after), restart_needed=pending)
            event = config_changed_event(before, after, self.config.files())
            intake = self.active_intake()
            me = Peer(pid=os.getpid(), uid=os.getuid(), gid=os.getgid())
            acks = await intake.accept([event], peer=me, source="daemon")
            self.log.info("config_change_recorded", id=acks[0].id, status=acks[0].status)
        else:
            self.log.info("reloaded", changed=[])
        systemd.notify("READY=1")

    # -- shutdown pieces ------------------------------------------------------------------

    async def _close_listeners(self) -> None:
        for server in self._servers:
            server.close()
        self._servers = []

    async def _drain_connections(self, deadline: float) -> None:
        """Let busy connections answer what they read; cancel idle ones and stragglers."""
        for task, connection in list(self._connections.items()):
            if connection is None or connection.idle:
                task.cancel()
        pending = set(self._connections)
        if pending:
            _, late = await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()))
            for task in late:
                task.cancel()
            if late:
                self.log.warning("connections_cancelled", count=len(late))
                await asyncio.wait(late, timeout=1.0)

    async def _stop_parts(self, deadline: float) -> None:
        self._stop_watching.set()
        await self._stop_watcher(deadline - time.monotonic())
        receiver_shutdown = getattr(self._receiver, "shutdown", None)
        if receiver_shutdown is not None:  # records what git processes sent so far
            await receiver_shutdown(max(0.1, deadline - time.monotonic()))
        await self._close_sinks(deadline)
        if self._committer is not None:
            self._committer.close()
        if self._writer is not None:
            self._writer.stop()
        for task in self._tasks:
            if task.get_name() not in {"journal", "writer", "spools"}:
                task.cancel()
        await self._wait_tasks(deadline)

    async def _wait_tasks(self, deadline: float) -> None:
        if not self._tasks:
            return
        _, late = await asyncio.wait(self._tasks, timeout=max(0.1, deadline - time.monotonic()))
        for task in late:
            task.cancel()
        if late:
            self.log.warning("tasks_cancelled", tasks=sorted(task.get_name() for task in late))
            await asyncio.wait(late, timeout=1.0)

    async def _final_flush(self, deadline: float) -> None:
        if self._writer is None:
            return
        remaining = deadline - time.monotonic()
        try:
            flushed = await asyncio.wait_for(self._writer.flush(), timeout=max(0.1, remaining))
        except TimeoutError:
            flushed = False
        if not flushed:
            self.log.warning("left_in_journal", events=self._writer.backlog)

    def _remove_socket_files(self) -> None:
        for path in self._socket_files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._socket_files = []

    async def _close_core(self) -> None:
        self.metrics.close()
        close_hub = getattr(self.publisher, "close", None)
        if close_hub is not None:  # ends the subscribers' streams
            close_hub()
        if self._spools is not None:
            self._spools.close()
        if self._writer is not None:
            await self._writer.close()
        if self._journal_worker is not None:
            self._journal_worker.stop()
        if self._journal is not None:
            self._journal.close()


def run(config_file: str | None = None, log_level: str = "info") -> int:
    """Run the daemon until SIGTERM/SIGINT; returns the exit code (0 after a clean stop)."""
    configure(log_level)
    faulthandler.register(signal.SIGUSR1)  # operators (and tests) can ask where it is stuck
    asyncio.run(_main(DaemonConfig(config_file)))
    return 0


async def _main(config: DaemonConfig) -> None:
    await Server(config).main()
