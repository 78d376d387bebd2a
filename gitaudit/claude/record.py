"""One ``claude.request`` event per Claude API call: what is measured, built and handed over.

The audited client (:mod:`gitaudit.claude.client`) feeds a :class:`CallRecord`
with what it sees of one call (the request as sent on each attempt, the
message or the stream events, or the exception) and hands it to
:meth:`Recorder.finish`, which builds the event, runs it through the normal
pipeline (:class:`gitaudit.pipeline.Pipeline`: policy, then the sanitizer and
the size limits) in the caller's thread, then hands it to transport on a
background thread (:mod:`gitaudit.claude.delivery`). ``on_record`` is called
with the sanitized event right after it is queued.

Recording never raises into the caller: a failure is reported once per
process on stderr (``gitaudit: ...``); an event that cannot be built in full
is replaced by a minimal one (ids, outcome, the build error) so the call is
still on record.

``details`` names (README "Claude API calls" lists their OpenTelemetry GenAI
equivalents): ``model``, ``response_model``, ``response_id``,
``max_tokens``, ``streaming``, ``input_tokens``, ``output_tokens``,
``cache_creation_input_tokens`` (``cache_creation`` splits it by TTL when the
API does), ``cache_read_input_tokens``, ``stop_reason``, ``latency_ms``,
``time_to_first_token_ms`` (streams), ``request_id`` (the ``request-id``
response header), ``client_request_id`` (ours, sent as the
``X-Client-Request-Id`` header before the first attempt), ``attempts`` (HTTP
attempts, retries included), ``cost_usd``, ``cost_source``, ``price_table``,
``prompt_sha256``/``prompt_bytes``/``message_count`` (over the canonical JSON
of ``{"system", "messages"}`` as sent), ``response_sha256``/``response_chars``
(over the text the model returned), ``server_address``, and on failure
``error_type`` and ``status_code``. Prompt and response text
(``system_instructions``, ``input_messages``, ``output_text``) only with
``capture_prompts``; a side copy in ``prompt_dir`` is named by
``prompt_file: {name, sha256}``.

Nothing here imports ``anthropic``: the SDK's objects are read by attribute.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from typing import TYPE_CHECKING, Any, Final

from gitaudit import catalog
from gitaudit.capture import context
from gitaudit.capture.hookrun import one_line
from gitaudit.claude.delivery import enqueue, report_once
from gitaudit.claude.prices import PriceTable, Usage, load_table
from gitaudit.errors import GitauditError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from gitaudit.config import Settings
    from gitaudit.pipeline import Pipeline

OPERATION: Final = "claude.request"
SOURCE: Final = "claude"
CLIENT_REQUEST_HEADER: Final = "X-Client-Request-Id"


# --- the details shape -----------------------------------------------------------------------

TOKEN_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
# Every claude.request has these details, in this order (None when unknown), whoever
# measured the call: the audited SDK client here, Claude Code's telemetry
# (gitaudit.claude.otel_map). Cost and failure fields follow them.
REQUEST_FIELDS: Final = (
    "provider", "operation_name", "model", "response_model", "response_id", "max_tokens",
    "streaming", "stop_reason", "latency_ms", "request_id", "client_request_id", "attempts",
    "server_address", "prompt_sha256", "prompt_bytes", "message_count", "response_sha256",
    "response_chars", *TOKEN_FIELDS,
)  # fmt: skip


def request_details(**known: Any) -> dict[str, Any]:
    """The ``details`` of a ``claude.request``: every :data:`REQUEST_FIELDS` key (None
    unless given; provider ``anthropic``, operation ``chat``), then any other ``known``."""
    found: dict[str, Any] = {"provider": "anthropic", "operation_name": "chat"}
    for name in REQUEST_FIELDS[2:]:
        found[name] = known.pop(name, None)
    found.update(known)
    return found


# --- one call -------------------------------------------------------------------------------


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class CallRecord:
    """What one API call did, filled in as the client sees it (see module doc)."""

    def __init__(self, body: Mapping[str, Any] | None, streaming: bool) -> None:
        self.client_request_id = catalog.uuid7()
        self.started = time.time()
        self.t0 = time.perf_counter()
        self.ended: float | None = None
        self.first_token: float | None = None
        self.streaming = streaming
        body = body or {}
        model = body.get("model")
        self.model = model if isinstance(model, str) else None
        max_tokens = body.get("max_tokens")
        self.max_tokens = max_tokens if isinstance(max_tokens, int) else None
        self.attempts = 0
        self.prompt: dict[str, Any] | None = None
        self.prompt_sha256: str | None = None
        self.prompt_bytes: int | None = None
        self.server_address: str | None = None
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.request_id: str | None = None
        self.stop_reason: str | None = None
        self.usage: dict[str, int] = {}
        self.cache_creation: dict[str, int] | None = None
        self.text: list[str] = []
        self.got_usage = False
        self.complete = not streaming
        self.closed_early = False
        self.error: BaseException | None = None
        self.error_type: str | None = None
        self.status_code: int | None = None
        self.finished = False

    # -- request side --

    def on_request(self, request: Any) -> None:
        """One HTTP attempt is about to be sent (``request``: the SDK's httpx request)."""
        self.attempts += 1
        if self.attempts > 1:
            return
        try:
            self.server_address = request.url.host or None
            content = request.content
        except Exception:  # noqa: BLE001 - a streamed request body: no prompt hash
            return
        try:
            body = json.loads(content)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        self.prompt = {"system": body.get("system"), "messages": body.get("messages")}
        canonical = catalog.canonical_json(self.prompt)
        self.prompt_sha256 = _sha256(canonical)
        self.prompt_bytes = len(canonical)

    # -- response side --

    def _usage(self, usage: Any) -> None:
        if usage is None:
            return
        self.got_usage = True
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        ):
            value = getattr(usage, name, None)
            if isinstance(value, int) and not isinstance(value, bool):
                self.usage[name] = value  # stream deltas are cumulative: the last one wins
        split = getattr(usage, "cache_creation", None)
        if split is not None:
            self.cache_creation = {
                "ephemeral_5m_input_tokens": _int(getattr(split, "ephemeral_5m_input_tokens", 0)),
                "ephemeral_1h_input_tokens": _int(getattr(split, "ephemeral_1h_input_tokens", 0)),
            }

    def on_message(self, message: Any, request_id: str | None = None) -> None:
        """A whole (non-streamed) message came back."""
        self.ended = time.perf_counter()
        self.request_id = request_id or getattr(message, "_request_id", None)
        self.response_model = getattr(message, "model", None)
        self.response_id = getattr(message, "id", None)
        self.stop_reason = getattr(message, "stop_reason", None)
        self._usage(getattr(message, "usage", None))
        for block in getattr(message, "content", None) or ():
            if getattr(block, "type", None) == "text":
                self.text.append(str(getattr(block, "text", "")))
        self.complete = True

    def on_response_headers(self, headers: Any) -> None:
        """The response of a stream arrived (its ``request-id``)."""
        with contextlib.suppress(Exception):  # a stand-in response without headers
            self.request_id = headers.get("request-id")

    def on_stream_event(self, event: Any) -> None:
        """One event of a streamed message."""
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            if self.first_token is None:
                self.first_token = time.perf_counter()
            delta = getattr(event, "delta", None)
            if getattr(delta, "type", None) == "text_delta":
                self.text.append(str(getattr(delta, "text", "")))
        elif kind == "message_start":
            message = getattr(event, "message", None)
            self.response_model = getattr(message, "model", None)
            self.response_id = getattr(message, "id", None)
            self._usage(getattr(message, "usage", None))
        elif kind == "message_delta":
            self.stop_reason = getattr(getattr(event, "delta", None), "stop_reason", None)
            self._usage(getattr(event, "usage", None))
        elif kind == "message_stop":
            self.complete = True

    def on_stream_end(self, *, closed_early: bool = False) -> None:
        """The stream ended (read to the end, or closed by the caller before that)."""
        self.ended = time.perf_counter()
        self.closed_early = closed_early and not self.complete

    def on_error(self, exc: BaseException) -> None:
        """The call (or its stream) raised ``exc``; the caller gets it unchanged."""
        self.ended = time.perf_counter()
        self.error = exc
        self.error_type = type(exc).__name__
        status = getattr(exc, "status_code", None)
        self.status_code = status if isinstance(status, int) else None
        request_id = getattr(exc, "request_id", None)
        if isinstance(request_id, str):
            self.request_id = request_id

    # -- the event --

    @property
    def outcome(self) -> str:
        if self.error is not None:
            return "failure"
        if self.streaming and not self.complete and not self.closed_early:
            return "failure"  # the stream stopped before message_stop
        return "success"

    def usage_for_cost(self) -> Usage | None:
        if not self.got_usage:
            return None
        cache_write = self.usage.get("cache_creation_input_tokens", 0)
        split = self.cache_creation
        if split and sum(split.values()):
            write_5m = split["ephemeral_5m_input_tokens"]
            write_1h = split["ephemeral_1h_input_tokens"]
        else:  # no split reported: the default TTL (5 minutes)
            write_5m, write_1h = cache_write, 0
        return Usage(
            input_tokens=self.usage.get("input_tokens", 0),
            output_tokens=self.usage.get("output_tokens", 0),
            cache_write_5m_tokens=write_5m,
            cache_write_1h_tokens=write_1h,
            cache_read_tokens=self.usage.get("cache_read_input_tokens", 0),
        )

    def details(self, prices: PriceTable | None, price_problem: str | None) -> dict[str, Any]:
        """``details`` of the event (text fields excluded, see :meth:`Recorder.build`)."""
        ended = self.ended if self.ended is not None else time.perf_counter()
        text = "".join(self.text)
        found = request_details(
            model=self.model,
            response_model=self.response_model,
            response_id=self.response_id,
            max_tokens=self.max_tokens,
            streaming=self.streaming,
            stop_reason=self.stop_reason,
            latency_ms=round((ended - self.t0) * 1000.0, 3),
            request_id=self.request_id,
            client_request_id=self.client_request_id,
            attempts=self.attempts,
            server_address=self.server_address,
            prompt_sha256=self.prompt_sha256,
            prompt_bytes=self.prompt_bytes,
            message_count=_count(self.prompt),
            response_sha256=_sha256(text.encode("utf-8", "surrogatepass")) if self.text else None,
            response_chars=len(text) if self.text else None,
            **({name: self.usage.get(name) for name in TOKEN_FIELDS} if self.got_usage else {}),
        )
        if self.cache_creation is not None:
            found["cache_creation"] = self.cache_creation
        if self.streaming:
            found["time_to_first_token_ms"] = (
                None if self.first_token is None else round((self.first_token - self.t0) * 1000, 3)
            )
            if self.closed_early:
                found["stream_closed_early"] = True
        if prices is None:
            found.update(cost_usd=None, cost_source=price_problem, price_table=None)
        else:
            cost = prices.cost(self.response_model or self.model, self.usage_for_cost())
            found.update(cost_usd=cost.usd, cost_source=cost.source, price_table=cost.table)
        if self.outcome == "failure":
            found["error_type"] = self.error_type or "IncompleteStream"
            found["status_code"] = self.status_code
        return found

    def error_text(self, limit: int) -> str | None:
        if self.error is not None:
            text = f"{type(self.error).__name__}: {self.error}"
        elif self.outcome == "failure":
            text = "the stream ended before message_stop"
        else:
            return None
        return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _count(prompt: dict[str, Any] | None) -> int | None:
    messages = prompt.get("messages") if prompt else None
    return len(messages) if isinstance(messages, list) else None


# --- who and where ------------------------------------------------------------------------------


def _where(cwd: str, environ: Mapping[str, str], git: str | None) -> tuple[dict[str, Any], Any]:
    """(actor, repo) for a call made in ``cwd``: as for any event (see capture.context)."""
    from gitaudit.capture import gitstate, hooks, record

    layout = gitstate.discover(cwd, environ)
    params: dict[str, str] | None
    if layout is not None:
        params = hooks.read_config_params(layout, environ)
    else:
        params = _user_params(environ)
    if params is None:  # includes or odd syntax: ask git itself (once per client and cwd)
        import shutil

        found_git = git or shutil.which("git")
        params = gitstate.config_params(found_git, layout, cwd, environ) if found_git else {}
    name, email = context.git_identity(environ, params)
    uid = os.getuid()
    actor = context.build_actor(
        uid=uid,
        user=context.os_user(environ, uid),
        host=os.uname().nodename,
        git_name=name,
        git_email=email,
        ci=context.ci_info(environ),
    )
    if layout is None:
        return actor, None
    try:
        branch = gitstate.read_head(layout).ref
    except Exception:  # noqa: BLE001 - an odd layout: the branch stays unknown
        branch = None
    repo = record.repo_object(
        os.path.realpath(layout.worktree or layout.git_dir), params, branch=branch
    )
    return actor, repo


def _user_params(environ: Mapping[str, str]) -> dict[str, str] | None:
    """Identity from the user's own config files (outside any repository); None: ask git."""
    from gitaudit.capture import gitstate, hooks

    found: dict[str, str] = {}
    for path in gitstate.user_config_files(environ):
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                text = handle.read()
        except OSError:
            continue
        if not hooks.parse_config_text(text, found):
            return None
    return found


def _plain_actor(environ: Mapping[str, str]) -> dict[str, Any]:
    uid = os.getuid()
    return context.build_actor(
        uid=uid, user=context.os_user(environ, uid), host=os.uname().nodename,
        git_name=None, git_email=None, ci=context.ci_info(environ),
    )  # fmt: skip


# --- the recorder -------------------------------------------------------------------------------


class Recorder:
    """Per client: settings, pipeline, ids and price table, resolved once."""

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        parent_id: str | None = None,
        correlation_id: str | None = None,
        on_record: Callable[[dict[str, Any]], None] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        if settings is None:
            from gitaudit.capture.hookrun import load_settings

            settings, problem = load_settings(self.environ)
            if problem:
                report_once("settings", problem)
        self.settings = settings
        self.parent_id = parent_id or context.parent_id(self.environ)
        self.correlation_id = correlation_id or context.correlation_id(self.environ, catalog.uuid7)
        self.on_record = on_record
        self.calls: dict[str, CallRecord] = {}  # in flight, by client_request_id
        self._pipeline: Pipeline | None = None
        self._prices: PriceTable | None = None
        self._price_problem: str | None = None
        self._places: dict[str, tuple[dict[str, Any], Any]] = {}

    # -- lazily resolved pieces --

    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            from gitaudit.pipeline import Pipeline

            self._pipeline = Pipeline(self.settings)
        return self._pipeline

    def prices(self) -> PriceTable | None:
        if self._prices is None and self._price_problem is None:
            try:
                self._prices = load_table(self.settings.price_table)
            except GitauditError as exc:
                self._price_problem = "price_table_unreadable"
                report_once("prices", one_line(exc))
        return self._prices

    def place(self) -> tuple[dict[str, Any], Any]:
        try:
            cwd = os.getcwd()
        except OSError:
            return _plain_actor(self.environ), None
        found = self._places.get(cwd)
        if found is None:
            try:
                found = _where(cwd, self.environ, self.settings.git)
            except Exception as exc:  # noqa: BLE001 - who and where are best effort
                report_once("place", f"repository of a Claude call not found: {one_line(exc)}")
                found = (_plain_actor(self.environ), None)
            self._places[cwd] = found
        return found

    # -- per call --

    def start(self, body: Mapping[str, Any] | None, streaming: bool) -> CallRecord:
        """A new call; its ``client_request_id`` must go out as :data:`CLIENT_REQUEST_HEADER`."""
        call = CallRecord(body, streaming)
        self.calls[call.client_request_id] = call
        return call

    def on_request(self, request: Any) -> None:
        """Called for every HTTP attempt the SDK makes (its ``_prepare_request`` hook)."""
        try:
            call = self.calls.get(request.headers.get(CLIENT_REQUEST_HEADER, ""))
            if call is not None:
                call.on_request(request)
        except Exception as exc:  # noqa: BLE001 - recording never breaks the call
            report_once("build", f"a Claude call could not be measured: {one_line(exc)}")

    def finish(self, call: CallRecord) -> None:
        """Build, sanitize and queue the call's event; never raises."""
        if call.finished:
            return
        call.finished = True
        self.calls.pop(call.client_request_id, None)
        if not self.settings.enabled:
            return
        raw: dict[str, Any] | None
        try:
            raw = self.build(call)
        except Exception as exc:  # noqa: BLE001 - a minimal event still records the call
            report_once("build", f"claude.request recorded without details: {one_line(exc)}")
            raw = self._minimal(call, exc)
        try:
            event = self.pipeline().process(raw) if raw is not None else None
        except Exception as exc:  # noqa: BLE001 - nothing unsanitized is ever written
            report_once("sanitize", f"claude.request not recorded: {one_line(exc)}")
            return
        if event is None:
            return
        enqueue(event, self.settings)
        if self.on_record is not None:
            try:
                self.on_record(event)
            except Exception as exc:  # noqa: BLE001 - the caller's callback must not break it
                report_once("on_record", f"on_record callback failed: {one_line(exc)}")

    def _envelope(self, call: CallRecord, details: dict[str, Any]) -> dict[str, Any]:
        actor, repo = self.place()
        outcome = call.outcome
        return {
            "id": catalog.uuid7(),
            "schema_version": catalog.SCHEMA_VERSION,
            "occurred_at": catalog.now_rfc3339(call.started),
            "duration_ms": details.get("latency_ms"),
            "operation": OPERATION,
            "category": catalog.category_for(OPERATION, details),
            "outcome": outcome,
            "severity": catalog.severity_for(OPERATION, details, outcome),
            "source": SOURCE,
            "correlation_id": self.correlation_id,
            "parent_id": self.parent_id,
            "actor": actor,
            "repo": repo,
            "result": {"exit_code": None, "error": call.error_text(self.settings.error_max_chars)},
            "details": details,
        }

    def build(self, call: CallRecord) -> dict[str, Any]:
        """The raw (not yet sanitized) event of a finished call."""
        prices = self.prices()
        details = call.details(prices, self._price_problem)
        if self.settings.capture_prompts:
            self._add_text(call, details)
        return self._envelope(call, details)

    def _add_text(self, call: CallRecord, details: dict[str, Any]) -> None:
        prompt = call.prompt or {}
        text = {
            "system_instructions": prompt.get("system"),
            "input_messages": prompt.get("messages"),
            "output_text": "".join(call.text) if call.text else None,
        }
        details.update(text)
        if self.settings.prompt_dir:
            try:
                details["prompt_file"] = self._side_copy(call, text)
            except OSError as exc:
                report_once(
                    "prompt_dir", f"prompt copy not written to {self.settings.prompt_dir}: {exc}"
                )

    def _side_copy(self, call: CallRecord, text: dict[str, Any]) -> dict[str, str]:
        """Write the redacted, untruncated prompt and response; its name and SHA-256."""
        folder = str(self.settings.prompt_dir)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        info = os.stat(folder)
        if info.st_uid == os.getuid() and info.st_mode & 0o077:
            os.chmod(folder, 0o700)
        elif info.st_uid != os.getuid():
            raise PermissionError(f"{folder} is not owned by this user")
        body = {"client_request_id": call.client_request_id, **self.pipeline().redactor(text)}
        data = json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8", "surrogatepass")
        name = f"{call.client_request_id}.json"
        fd = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return {"name": name, "sha256": _sha256(data)}

    def _minimal(self, call: CallRecord, problem: BaseException) -> dict[str, Any] | None:
        details = {
            "model": call.model,
            "client_request_id": call.client_request_id,
            "attempts": call.attempts,
            "streaming": call.streaming,
            "audit_error": one_line(problem),
        }
        try:
            return self._envelope(call, details)
        except Exception as exc:  # noqa: BLE001 - nothing left to record the call with
            report_once("build-minimal", f"claude.request not recorded: {one_line(exc)}")
            return None
