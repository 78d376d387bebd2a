"""The audited Anthropic client: the real SDK, one ``claude.request`` event per Messages call.

:class:`AuditedAnthropic` and :class:`AsyncAuditedAnthropic` subclass
``anthropic.Anthropic`` / ``anthropic.AsyncAnthropic``; they take the SDK's
keyword arguments unchanged, plus the keyword-only ``audit_*`` ones and
``on_record``. ``client.messages`` is the SDK's ``Messages`` resource with one
change: its ``_post`` (the one function ``create``, ``stream`` and
``with_raw_response`` send through) is wrapped, so:

- ``messages.create(...)`` returns exactly what the SDK returns, and raises
  exactly what it raises (the event records the error type and status code);
- ``messages.create(stream=True)`` and ``messages.stream(...)`` return the
  SDK's own ``Stream`` / ``MessageStreamManager``; only the stream's inner
  iterator is observed (time to first token, usage, stop reason), and the
  event is recorded when the stream ends, fails or is dropped;
- every HTTP attempt passes the client's ``_prepare_request`` hook, which
  counts attempts (the SDK's retries) and hashes the prompt as sent.

The call carries our ``X-Client-Request-Id`` header from its first attempt.
Other endpoints (``count_tokens``, ``models``, ``beta``) are the SDK's, unaudited.
``copy()``/``with_options()`` keep the audit settings.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

import anthropic
from anthropic.resources.messages import AsyncMessages, Messages

from gitaudit.capture.hookrun import one_line
from gitaudit.claude.delivery import report_once
from gitaudit.claude.record import CLIENT_REQUEST_HEADER, CallRecord, Recorder

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import httpx2

    from gitaudit.config import Settings

_MESSAGES_PATH = "/v1/messages"


def _with_header(options: Any, call: CallRecord) -> Any:
    """The request options with our client request id added to their headers."""
    if not isinstance(options, dict):
        return options
    headers = dict(options.get("headers") or {})
    headers[CLIENT_REQUEST_HEADER] = call.client_request_id
    return {**options, "headers": headers}


def _body(kwargs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    body = kwargs.get("body")
    return body if isinstance(body, dict) else None


def _take_result(call: CallRecord, result: Any) -> None:
    """What a non-stream result says: a Message, or a raw response wrapping one."""
    http_response = getattr(result, "http_response", None)
    if http_response is None:
        call.on_message(result)
        return
    call.ended = time.perf_counter()
    call.complete = True
    # with_raw_response: the body was read, so parsing it (cached by the SDK) costs nothing
    # new; with_streaming_response: the caller has not read it yet, so it is left alone.
    if getattr(http_response, "is_closed", False):
        parsed = result.parse()
        if inspect.iscoroutine(parsed):  # the async raw response parses when awaited
            parsed.close()
        else:
            call.on_message(parsed, http_response.headers.get("request-id"))
            return
    call.on_response_headers(http_response.headers)


class _Watch:
    """What both stream observers share: the call, ended once (also when dropped unread)."""

    def __init__(self, inner: Any, call: CallRecord, recorder: Recorder) -> None:
        self._inner = inner
        self._call = call
        self._recorder = recorder

    def _end(self, *, closed_early: bool = False) -> None:
        if not self._call.finished:
            self._call.on_stream_end(closed_early=closed_early)
            self._recorder.finish(self._call)

    def _fail(self, exc: BaseException) -> None:
        self._call.on_error(exc)
        self._end()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit, modules may be gone
            self._end(closed_early=True)


class _Observed(_Watch):
    """The SDK stream's inner iterator, seen event by event; the call ends with it."""

    def __iter__(self) -> _Observed:
        return self

    def __next__(self) -> Any:
        try:
            event = next(self._inner)
        except StopIteration:
            self._end()
            raise
        except BaseException as exc:
            self._fail(exc)
            raise
        self._call.on_stream_event(event)
        return event

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()
        self._end(closed_early=True)


class _AsyncObserved(_Watch):
    """:class:`_Observed` for ``AsyncStream``."""

    def __aiter__(self) -> _AsyncObserved:
        return self

    async def __anext__(self) -> Any:
        try:
            event = await self._inner.__anext__()
        except StopAsyncIteration:
            self._end()
            raise
        except BaseException as exc:
            self._fail(exc)
            raise
        self._call.on_stream_event(event)
        return event

    async def aclose(self) -> None:
        close = getattr(self._inner, "aclose", None)
        if close is not None:
            await close()
        self._end(closed_early=True)


def _observe_stream(stream: Any, call: CallRecord, recorder: Recorder, asynchronous: bool) -> None:
    """Put an observer around ``stream``'s inner iterator (the SDK's object stays the same)."""
    call.on_response_headers(stream.response.headers)
    inner = stream._iterator  # the SDK has no public hook into a stream's events
    observed: Any = (
        _AsyncObserved(inner, call, recorder) if asynchronous else _Observed(inner, call, recorder)
    )
    stream.__dict__["_iterator"] = observed  # shadows the SDK's cached_property


def _begin(recorder: Recorder, kwargs: dict[str, Any]) -> CallRecord:
    """Start recording a POST /v1/messages; its options get our client request id."""
    call = recorder.start(_body(kwargs), bool(kwargs.get("stream")))
    kwargs["options"] = _with_header(kwargs.get("options"), call)
    return call


def _failed(recorder: Recorder, call: CallRecord, exc: BaseException) -> None:
    call.on_error(exc)
    recorder.finish(call)


def _returned(recorder: Recorder, call: CallRecord, result: Any, asynchronous: bool) -> None:
    """The SDK returned ``result``: record it now, or when its stream ends. Never raises."""
    try:
        if call.streaming and hasattr(result, "_iterator") and hasattr(result, "response"):
            _observe_stream(result, call, recorder, asynchronous)
            return
        _take_result(call, result)
    except Exception as exc:  # noqa: BLE001 - the caller gets the SDK's result regardless
        report_once("measure", f"a Claude call could not be measured: {one_line(exc)}")
    recorder.finish(call)


class _AuditedMessages(Messages):
    """``Messages`` whose POSTs to /v1/messages are recorded."""

    def __init__(self, client: AuditedAnthropic) -> None:
        super().__init__(client)
        self._audit_recorder = client._audit_recorder
        self._sdk_post = self._post
        self._post = self._audited_post

    def _audited_post(self, path: str, **kwargs: Any) -> Any:
        if path != _MESSAGES_PATH:
            return self._sdk_post(path, **kwargs)
        recorder = self._audit_recorder
        call = _begin(recorder, kwargs)
        try:
            result = self._sdk_post(path, **kwargs)
        except BaseException as exc:
            _failed(recorder, call, exc)
            raise
        _returned(recorder, call, result, asynchronous=False)
        return result


class _AsyncAuditedMessages(AsyncMessages):
    """``AsyncMessages`` whose POSTs to /v1/messages are recorded."""

    def __init__(self, client: AsyncAuditedAnthropic) -> None:
        super().__init__(client)
        self._audit_recorder = client._audit_recorder
        self._sdk_post = self._post
        self._post = self._audited_post

    async def _audited_post(self, path: str, **kwargs: Any) -> Any:
        if path != _MESSAGES_PATH:
            return await self._sdk_post(path, **kwargs)
        recorder = self._audit_recorder
        call = _begin(recorder, kwargs)
        try:
            result = await self._sdk_post(path, **kwargs)
        except BaseException as exc:
            _failed(recorder, call, exc)
            raise
        _returned(recorder, call, result, asynchronous=True)
        return result


class _Audit:
    """What both audited clients add to the SDK's: the recorder, kept across ``copy()``."""

    _audit_recorder: Recorder

    def __init__(
        self,
        *,
        audit_parent_id: str | None = None,
        audit_correlation_id: str | None = None,
        audit_settings: Settings | None = None,
        on_record: Callable[[dict[str, Any]], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._audit_recorder = Recorder(
            settings=audit_settings,
            parent_id=audit_parent_id,
            correlation_id=audit_correlation_id,
            on_record=on_record,
        )

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        """The SDK's copy, recording with the same settings, ids and callback."""
        # The SDK builds the copy with self.__class__(...): hand it our settings so that it
        # does not load them again, then share this client's recorder (ids, callback).
        extra = {"audit_settings": self._audit_recorder.settings, **kwargs.pop("_extra_kwargs", {})}
        client = super().copy(*args, _extra_kwargs=extra, **kwargs)  # type: ignore[misc]
        client._audit_recorder = self._audit_recorder
        return client

    with_options = copy

    @property
    def audit_correlation_id(self) -> str:
        """The correlation id this client's events carry."""
        return self._audit_recorder.correlation_id


class AuditedAnthropic(_Audit, anthropic.Anthropic):
    """``anthropic.Anthropic`` that records every Messages call (see module doc)."""

    @cached_property
    def messages(self) -> Messages:
        """The SDK's Messages resource, audited."""
        return _AuditedMessages(self)

    def _prepare_request(self, request: httpx2.Request) -> None:
        super()._prepare_request(request)
        self._audit_recorder.on_request(request)


class AsyncAuditedAnthropic(_Audit, anthropic.AsyncAnthropic):
    """``anthropic.AsyncAnthropic`` that records every Messages call (see module doc)."""

    @cached_property
    def messages(self) -> AsyncMessages:
        """The SDK's AsyncMessages resource, audited."""
        return _AsyncAuditedMessages(self)

    async def _prepare_request(self, request: httpx2.Request) -> None:
        await super()._prepare_request(request)
        self._audit_recorder.on_request(request)
