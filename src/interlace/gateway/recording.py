"""The request record producer: exactly one :class:`RequestRecord` per API request, to the observers.

A route opens a :class:`Recording` for its request and tells it what happened::

    with self.recorder.begin(request, "chat", "/v1/chat/completions") as rec:
        body = await read_json(request, limit)
        ctx = rec.route(self.contexts(request, body), body)
        if streaming:
            chunks = rec.stream(await cancel_on_disconnect(router.stream_chat(op, ctx), receive))
            return EventStreamResponse(events(chunks), headers=..., on_close=rec.close)
        answer = await cancel_on_disconnect(router.chat(op, ctx), receive)
        rec.answered(answer)
        return Response(...)

- A plain request that raised is recorded as its ``with`` block ends, with the status and code of
  the error (499 ``client_disconnected`` when the client left). One that answered is recorded with
  status 200 once its response has been written (:mod:`interlace.gateway.after_response`): its
  duration ends with the ``with`` block, and the observers' work (metrics, logs, the event and audit
  queues, the quota settlement) is not part of the answer's latency.
- A stream is recorded when its response closes (``on_close``): 200 when it ended normally, the
  error's status when it ended with an error event, 499 when the client left; ``partial`` in both of
  the latter. Its usage is the final chunk's, or — when none arrived — an estimate from the request's
  messages and the delivered text (``usage.estimated``).

The record is built from attribute reads of what the route already has (the ``RouteContext``, the
answer's dicts, the stream watch); nothing is parsed again. The served deployment's price gives the
cost (:func:`~interlace.observability.cost.cost_usd`; a deployment without a price costs nothing and
skips the arithmetic). Prompt and completion text are put on the record only with
``observability.logs.include_content`` (or ``audit.content: full``); with ``audit.content: hash``
(the default) only their SHA-256 (``prompt_sha256``, ``completion_sha256``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self

from starlette.exceptions import HTTPException

from interlace.core.errors import InterlaceError
from interlace.core.usage import estimate_tokens
from interlace.gateway.after_response import defer
from interlace.gateway.disconnect import ClientDisconnected
from interlace.gateway.identity import principal_of
from interlace.gateway.middleware.request_id import new_request_id, request_id
from interlace.gateway.stream_watch import StreamWatch, answer_confidence
from interlace.observability.cost import cost_usd
from interlace.observability.labels import OPERATIONS, operation_of
from interlace.observability.record import AttemptOutcome, RequestRecord, Usage
from interlace.observability.tracing import TRACE_SCOPE_KEY
from interlace.security.audit.chain import content_digest

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

    from starlette.requests import Request
    from starlette.types import Scope

    from interlace.config.schema import Price
    from interlace.core.operations import ChatChunks, ClassifyResult
    from interlace.observability.observer import RequestObserver
    from interlace.routing.context import RouteContext
    from interlace.routing.deployment import ModelRoute
    from interlace.security.audit.entry import ContentMode
    from interlace.security.gate import Admission

__all__ = ["CLIENT_CLOSED", "Recorder", "Recording"]

log = logging.getLogger("interlace.gateway.recording")

CLIENT_CLOSED: Final = 499
"""The status recorded when the client left before its answer was complete (as nginx logs it)."""

_HTTP_CODES: Final = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
_TRACEPARENT: Final = re.compile(rb"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_NO_TRACE: Final = "0" * 32


@dataclass(frozen=True, slots=True)
class _Target:
    """What a record needs to know about a deployment."""

    provider: str
    upstream_model: str
    price: Price | None
    """None for a deployment whose every price is zero."""


class Recorder:
    """Opens the :class:`Recording` of each request of one app, and hands finished records on."""

    __slots__ = ("_observers", "_targets", "audit_content", "capture_content", "capture_text", "in_flight")

    def __init__(
        self,
        observers: RequestObserver,
        routes: Mapping[str, ModelRoute],
        *,
        capture_content: bool = False,
        audit_content: ContentMode = "none",
    ) -> None:
        self._observers = observers
        self._targets = {
            d.name: _Target(d.provider.kind, d.config.model, None if _free(d.price) else d.price)
            for route in routes.values()
            for d in route.deployments
        }
        self.capture_content = capture_content
        self.audit_content: ContentMode = audit_content
        """What the audit log keeps of content (``audit.content``; ``none`` when it is off)."""
        self.capture_text = capture_content or audit_content != "none"
        self.in_flight: dict[str, int] = dict.fromkeys(sorted(OPERATIONS), 0)
        """Requests begun and not yet recorded, per operation (read by the metrics at scrape time)."""

    def begin(self, request: Request, operation: str, endpoint: str) -> Recording:
        return Recording(self, request.scope, operation, endpoint)

    # --- rejected authentication (interlace.gateway.middleware.auth) ---
    def rejected(self, scope: Scope, error: InterlaceError) -> None:
        """A request refused before any route (a failed authentication): recorded with its status and code."""
        path: str = scope["path"]
        try:
            record = RequestRecord(
                request_id=request_id(scope) or new_request_id(),
                operation=operation_of(path),
                endpoint=path[:256],
                started_at=time.time(),
                duration_s=0.0,
                status=error.status,
                error_code=error.code,
                trace_id=_trace_id(scope),
                decisions=[f"authn: rejected ({error.code})"],
            )
            self._observers.observe(record)
        except Exception:  # recording must never break the answer it records
            log.exception("could not record a rejected request")

    # --- end rejected authentication ---

    def emit(self, record: RequestRecord) -> None:
        """Complete ``record`` with what its deployment says (provider, model, cost), and hand it on."""
        target = record.deployment
        found = self._targets.get(target) if target is not None else None
        if found is not None:
            record.provider = found.provider
            record.upstream_model = found.upstream_model
            if found.price is not None:
                record.cost_usd = cost_usd(record.usage, found.price)
        self._observers.observe(record)


class Recording:
    """One request being answered; finished (and recorded) exactly once."""

    __slots__ = (
        "_body",
        "_done",
        "_ended",
        "_recorder",
        "_scope",
        "_started",
        "_wall",
        "_watch",
        "admission",
        "completion",
        "confidence",
        "ctx",
        "endpoint",
        "operation",
        "request_id",
        "usage",
    )

    def __init__(self, recorder: Recorder, scope: Scope, operation: str, endpoint: str) -> None:
        self._recorder = recorder
        self._scope = scope
        self._wall = time.time()
        self._started = time.perf_counter()
        self._ended: float | None = None
        self._body: dict[str, Any] | None = None
        self._watch: StreamWatch | None = None
        self._done = False
        self.operation = operation
        self.endpoint = endpoint
        self.request_id = request_id(scope) or new_request_id()
        self.ctx: RouteContext | None = None
        self.admission: Admission[Any] | None = None
        """Set when the request passed the gate: settled (quotas, budgets) once it is recorded."""
        self.usage: Usage | None = None
        self.confidence: float | None = None
        self.completion: str | None = None
        recorder.in_flight[operation] = recorder.in_flight.get(operation, 0) + 1

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            self._finish(*_failure(exc))
        elif self._watch is None:  # answered: recorded once the response is written (module notes)
            self._ended = time.perf_counter()
            defer(self._scope, self._answered)
        # else: a stream was handed to its response, which calls close() when it ends

    def _answered(self) -> None:
        self._finish(200, None)

    def route(self, ctx: RouteContext, body: dict[str, Any] | None = None) -> RouteContext:
        """The request's routing context (read when it finishes) and its body (estimates, content)."""
        self.ctx = ctx
        self._body = body
        return ctx

    def answered(self, answer: dict[str, Any]) -> None:
        """A complete chat completion (OpenAI-shaped): its usage, confidence and text."""
        usage = answer.get("usage")
        choices = answer.get("choices")
        self.usage = Usage.from_openai(usage) if usage else self._estimate(_answer_chars(choices))
        self.confidence = answer_confidence(choices)
        if self._recorder.capture_text and choices:
            self.completion = str((choices[0].get("message") or {}).get("content") or "")

    def counted(self, prompt_tokens: int) -> None:
        """An answer whose only usage is its input tokens (embeddings)."""
        self.usage = Usage(prompt_tokens=prompt_tokens)

    def classified(self, result: ClassifyResult) -> None:
        """A classification: its input tokens, and the mean top score as its confidence."""
        self.usage = Usage(prompt_tokens=result.prompt_tokens)
        tops = [scores[0].score for scores in result.scores if scores]
        self.confidence = sum(tops) / len(tops) if tops else None

    def stream(self, chunks: ChatChunks) -> ChatChunks:
        """Watch a stream's chunks; its response must call :meth:`close` when it ends."""
        self._watch = StreamWatch(self._started, capture_text=self._recorder.capture_text)
        return self._watch.follow(chunks)

    def close(self) -> None:
        """The stream's response has ended (normally, with an error event, or the client left)."""
        watch = self._watch
        if watch is None or self._done:
            return
        if watch.error is not None:
            status, code = _failure(watch.error)
        elif watch.completed:
            status, code = 200, None
        else:
            status, code = CLIENT_CLOSED, "client_disconnected"
        self.usage = Usage.from_openai(watch.usage) if watch.usage else self._estimate(watch.chars)
        self.confidence = watch.confidence
        if self._recorder.capture_text:
            self.completion = "".join(watch.text)
        self._finish(status, code)

    def _estimate(self, completion_chars: int) -> Usage:
        """Usage counted by the gateway: the request's messages in, the delivered text out."""
        body = self._body
        prompt = 0
        if body is not None:
            for message in body.get("messages") or ():
                prompt += estimate_tokens(str(message.get("content") or ""))
        return Usage(prompt_tokens=prompt, completion_tokens=-(-completion_chars // 4), estimated=True)

    def _finish(self, status: int, code: str | None) -> None:
        if self._done:
            return
        self._done = True
        recorder = self._recorder
        recorder.in_flight[self.operation] -= 1
        try:
            record = self._record(status, code)
            recorder.emit(record)
        except Exception:  # recording must never break the answer it records
            log.exception("could not record request %s", self.request_id)
            return
        if self.admission is not None:
            self.admission.settle(record)

    def _record(self, status: int, code: str | None) -> RequestRecord:
        scope = self._scope
        watch = self._watch
        ctx = self.ctx
        record = RequestRecord(
            request_id=self.request_id,
            operation=self.operation,
            endpoint=self.endpoint,
            started_at=self._wall,
            duration_s=(self._ended or time.perf_counter()) - self._started,
            status=status,
            error_code=code,
            trace_id=_trace_id(scope),
            usage=self.usage or Usage(),
            confidence=self.confidence,
        )
        principal = ctx.principal if ctx is not None else principal_of(scope)
        if principal.kind != "anonymous":
            record.api_key_id = principal.id
        record.tenant = principal.tenant
        record.principal_kind, record.team, record.subject = principal.kind, principal.team, principal.subject
        if watch is not None:
            record.stream = True
            record.partial = status != 200  # noqa: PLR2004 - an error event, or the client left
            record.ttft_s = watch.ttft
            record.chunk_gaps_s = watch.gaps
        if ctx is not None:
            record.requested_model = ctx.requested_model
            record.served_model = ctx.served_model
            record.deployment = ctx.deployment
            record.rule = ctx.rule
            record.fallback = ctx.fallback
            record.recovered = ctx.recovered
            record.attempts = len(ctx.attempts)
            record.attempt_log = [
                AttemptOutcome(a.model, a.deployment, a.outcome, a.seconds) for a in ctx.attempts
            ]
            record.decisions = ctx.decisions
        recorder = self._recorder
        if recorder.capture_text:
            body = self._body
            prompt = body.get("messages", body.get("input")) if body is not None else None
            if recorder.capture_content or recorder.audit_content == "full":
                record.prompt = prompt
                record.completion = self.completion
            if recorder.audit_content == "hash":  # the audit log proves what was sent without keeping it
                record.prompt_sha256 = content_digest(prompt)
                record.completion_sha256 = content_digest(self.completion)
        return record


def _failure(exc: BaseException) -> tuple[int, str]:
    """The status and code a request that raised ``exc`` was answered with."""
    if isinstance(exc, InterlaceError):
        return exc.status, exc.code
    if isinstance(exc, ClientDisconnected | asyncio.CancelledError):
        return CLIENT_CLOSED, "client_disconnected"
    if isinstance(exc, HTTPException):
        return exc.status_code, _HTTP_CODES.get(exc.status_code, "invalid_request")
    return 500, "internal_error"


def _trace_id(scope: Scope) -> str | None:
    """The request's trace: its server span when tracing is on, else the caller's ``traceparent``."""
    trace = scope.get(TRACE_SCOPE_KEY)
    if trace is not None:
        return str(trace.trace_id)
    for name, value in scope["headers"]:
        if name == b"traceparent":
            match = _TRACEPARENT.match(value)
            ident = match.group(1).decode() if match else None
            return ident if ident != _NO_TRACE else None
    return None


def _answer_chars(choices: Any) -> int:
    return sum(len(str((c.get("message") or {}).get("content") or "")) for c in choices or ())


def _free(price: Price) -> bool:
    return not (price.input or price.output or price.cached_input or price.reasoning)
