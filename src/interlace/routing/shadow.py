"""Shadow traffic: mirror a sampled share of a model's chat requests to a candidate model.

A model alias with ``shadow: {model: CANDIDATE, sample: 0.1}`` has that share of its successful chat
requests sent again, in the background, to the candidate alias — non-streaming, through the router's
attempt loop (strategy, breakers, bulkheads, retries of the candidate; no fallback chain) — and both
answers are recorded side by side: texts, finish reasons, latencies, usage, errors, the deployments
that served and what each call cost at its deployment's ``price``
(:mod:`interlace.observability.cost`, the same arithmetic billing uses).

The client never waits for it and never sees it:

- the mirror starts only once the client's answer is ready (for a stream, once it completed, with the
  text the client received); starting it is synchronous and does no I/O;
- the shadow call runs in a task owned by the :class:`ShadowMirror`, with its own
  :class:`~interlace.routing.context.RouteContext` (``shadow=True``: quota and billing skip it; the
  deadline is the candidate's ``total`` timeout); nothing it raises reaches the client path;
- at most ``max_concurrent`` shadow calls run at once: beyond, the mirror is dropped and counted
  (``dropped``), never queued;
- the record is written by the same task, off the request path; a failed write is logged and counted.

A request for several choices (``n > 1``) is not mirrored: its answers cannot be compared one to one.
The primary's required tags (from the request or a traffic rule) and its residency restriction
(``ctx.allow``) apply to the shadow call too, so a request pinned to, say, ``region=eu`` is never
mirrored outside it; a candidate with no allowed deployment is not called at all (``skipped``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from interlace.core.errors import InterlaceError
from interlace.core.operations import ChatRequest
from interlace.observability.cost import cost_usd
from interlace.observability.record import Usage
from interlace.routing.agreement import chat_answer_text, same_text, token_overlap
from interlace.routing.context import RouteContext

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Mapping

    from interlace.routing.attempts import AttemptLoop
    from interlace.routing.deployment import Deployment, ModelRoute
    from interlace.routing.recovery import RecoveringStream

__all__ = [
    "DEFAULT_MAX_CONCURRENT",
    "MAX_TEXT",
    "Outcome",
    "PrimaryOutcome",
    "ShadowMirror",
    "ShadowRecord",
    "ShadowSink",
    "SideRecord",
]

log = logging.getLogger("interlace.routing.shadow")

#: Shadow calls in flight at once; beyond, mirrors are dropped.
DEFAULT_MAX_CONCURRENT = 32
#: Characters of each answer kept in a record (agreement is computed on the whole text first).
MAX_TEXT = 16_384


@dataclass(slots=True, frozen=True, kw_only=True)
class Outcome:
    """One side of a comparison: who answered what, how fast, at what usage — or which error."""

    deployment: str | None
    text: str = ""
    finish: str | None = None
    latency: float = 0.0
    """Seconds."""
    usage: Mapping[str, Any] | None = None
    error: str | None = None
    """The error code when the call failed."""


@dataclass(slots=True, frozen=True, kw_only=True)
class PrimaryOutcome:
    """What the client received, and the context it was served in."""

    request_id: str
    alias: str
    """The alias that served the client (after traffic rules and fallbacks)."""
    ctx: RouteContext
    stream: bool
    outcome: Outcome

    @classmethod
    def from_answer(cls, ctx: RouteContext, answer: dict[str, Any], latency: float) -> PrimaryOutcome:
        text, finish = chat_answer_text(answer)
        usage = answer.get("usage")
        outcome = Outcome(
            deployment=ctx.deployment,
            text=text,
            finish=finish,
            latency=latency,
            usage=usage if isinstance(usage, dict) else None,
        )
        answer_id = answer.get("id")
        return cls(
            request_id=answer_id if isinstance(answer_id, str) else uuid.uuid4().hex,
            alias=ctx.served_model or "",
            ctx=ctx,
            stream=False,
            outcome=outcome,
        )

    @classmethod
    def from_stream(cls, ctx: RouteContext, stream: RecoveringStream, latency: float) -> PrimaryOutcome:
        outcome = Outcome(
            deployment=ctx.deployment,
            text="".join(stream.text),
            finish=stream.finish_reason,
            latency=latency,
            usage=stream.usage,
        )
        return cls(
            request_id=stream.stream_id or uuid.uuid4().hex,
            alias=stream.route.alias,
            ctx=ctx,
            stream=True,
            outcome=outcome,
        )


@dataclass(slots=True, frozen=True, kw_only=True)
class SideRecord:
    """One side of a stored comparison."""

    deployment: str | None
    text: str
    finish: str | None
    latency_ms: float
    prompt_tokens: int | None
    completion_tokens: int | None
    error: str | None
    cost_usd: float | None


@dataclass(slots=True, frozen=True, kw_only=True)
class ShadowRecord:
    """A mirrored request: the primary's answer and the candidate's, side by side."""

    id: str
    request_id: str
    alias: str
    candidate: str
    created_at: datetime
    stream: bool
    exact_match: bool | None
    """Identical texts after whitespace normalisation; ``None`` unless both sides answered."""
    similarity: float | None
    """Token overlap of the texts; ``None`` unless both sides answered."""
    primary: SideRecord
    shadow: SideRecord


class ShadowSink(Protocol):
    """Where comparisons go (the state database in production)."""

    async def record(self, record: ShadowRecord) -> None: ...


class ShadowMirror:
    """Starts, bounds and owns the background shadow calls; see the module docstring."""

    def __init__(
        self,
        routes: Mapping[str, ModelRoute],
        attempts: AttemptLoop,
        *,
        rng: random.Random,
        recorder: ShadowSink,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
        self._routes = routes
        self._attempts = attempts
        self._rng = rng
        self._recorder = recorder
        self._limit = max_concurrent
        self._deployments: dict[str, Deployment] = {
            d.name: d for route in routes.values() for d in route.deployments
        }
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.mirrored = 0
        """Shadow calls started."""
        self.dropped = 0
        """Mirrors not started because ``max_concurrent`` calls were in flight."""
        self.skipped = 0
        """Sampled requests that cannot be mirrored (``n > 1``, a candidate that does not chat or that
        the request's residency rule excludes)."""
        self.recorded = 0
        self.failed_records = 0

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    # -- the router's hooks: synchronous, no I/O, never raise -----------------------------------

    def after_answer(
        self, request: ChatRequest, ctx: RouteContext, answer: dict[str, Any], latency: float
    ) -> None:
        """A chat answer is ready for the client: mirror it if its alias is shadowed and sampled."""
        route = self._routes.get(ctx.served_model or "")
        if route is None or route.config.shadow is None:
            return
        try:
            self.maybe_mirror(request, PrimaryOutcome.from_answer(ctx, answer, latency))
        except Exception:
            log.exception("shadow mirror failed to start; the client's answer is unaffected")

    def stream_observer(
        self, request: ChatRequest, ctx: RouteContext, started: float
    ) -> Callable[[RecoveringStream], None]:
        """A callback for a stream's normal completion (``started``: ``time.monotonic()`` of the request)."""

        def completed(stream: RecoveringStream) -> None:
            try:
                primary = PrimaryOutcome.from_stream(ctx, stream, time.monotonic() - started)
                self.maybe_mirror(request, primary)
            except Exception:
                log.exception("shadow mirror failed to start; the client's stream is unaffected")

        return completed

    def maybe_mirror(self, request: ChatRequest, primary: PrimaryOutcome) -> bool:
        """Sample the request by its alias's ``shadow.sample``; start the shadow call. Never awaits."""
        route = self._routes.get(primary.alias)
        shadow = route.config.shadow if route is not None else None
        if shadow is None or primary.ctx.shadow or self._closed:
            return False
        if not (shadow.sample >= 1.0 or self._rng.random() < shadow.sample):
            return False
        candidate = self._routes.get(shadow.model)
        if candidate is None or "chat" not in candidate.operations or (request.body.get("n") or 1) != 1:
            self.skipped += 1
            return False
        allow = primary.ctx.allow  # residency: never mirror to a deployment the request may not reach
        if allow is not None and not any(allow.allows(d) for d in candidate.deployments):
            self.skipped += 1
            return False
        if len(self._tasks) >= self._limit:
            self.dropped += 1
            if math.log10(self.dropped).is_integer():  # 1, 10, 100, …: visible, never a flood
                log.warning(
                    "shadow traffic saturated (%d calls in flight): %d mirrors dropped so far",
                    self._limit,
                    self.dropped,
                )
            return False
        task = asyncio.create_task(
            self._mirror(_shadow_request(request, candidate.alias), primary, candidate),
            name=f"shadow {primary.alias}->{candidate.alias}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.mirrored += 1
        return True

    async def aclose(self) -> None:
        """Stop mirroring; cancel the shadow calls in flight and wait for them to end."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the background task ---------------------------------------------------------------------

    async def _mirror(self, request: ChatRequest, primary: PrimaryOutcome, candidate: ModelRoute) -> None:
        created_at = datetime.now(UTC)
        try:
            shadow = await self._call(request, primary.ctx, candidate)
            record = self._record(primary, candidate.alias, shadow, created_at)
        except Exception:
            log.exception("shadow call to %s failed unexpectedly; nothing recorded", candidate.alias)
            return
        try:
            await self._recorder.record(record)
        except Exception as error:
            self.failed_records += 1
            log.warning("shadow record for %s -> %s not stored: %r", primary.alias, candidate.alias, error)
            return
        self.recorded += 1

    async def _call(self, request: ChatRequest, primary: RouteContext, route: ModelRoute) -> Outcome:
        total = max(d.config.timeouts.total for d in route.deployments)
        ctx = RouteContext(
            deadline=time.monotonic() + total,
            required_tags=dict(primary.required_tags),
            allow=primary.allow,
            principal=primary.principal,
            user=primary.user,
            metadata=dict(primary.metadata),
            shadow=True,
        )
        ctx.requested_model = route.alias
        request.deadline = ctx.deadline
        started = time.monotonic()
        try:
            answer = await self._attempts.run(route, lambda d: d.provider.chat(request), ctx)
        except InterlaceError as error:
            served = ctx.attempts[-1].deployment if ctx.attempts else None
            log.debug("shadow call to %s failed: %s", route.alias, error.message)
            return Outcome(deployment=served, latency=time.monotonic() - started, error=error.code)
        latency = time.monotonic() - started
        if not isinstance(answer, dict):  # hold=False: the loop returns the call's own result
            return Outcome(deployment=ctx.deployment, latency=latency, error="upstream_protocol_error")
        text, finish = chat_answer_text(answer)
        usage = answer.get("usage")
        return Outcome(
            deployment=ctx.deployment,
            text=text,
            finish=finish,
            latency=latency,
            usage=usage if isinstance(usage, dict) else None,
        )

    def _record(
        self, primary: PrimaryOutcome, candidate: str, shadow: Outcome, created_at: datetime
    ) -> ShadowRecord:
        first = primary.outcome
        both = first.error is None and shadow.error is None
        return ShadowRecord(
            id=uuid.uuid4().hex,
            request_id=primary.request_id,
            alias=primary.alias,
            candidate=candidate,
            created_at=created_at,
            stream=primary.stream,
            exact_match=same_text(first.text, shadow.text) if both else None,
            similarity=token_overlap(first.text, shadow.text) if both else None,
            primary=self._side(first),
            shadow=self._side(shadow),
        )

    def _side(self, outcome: Outcome) -> SideRecord:
        deployment = self._deployments.get(outcome.deployment or "")
        reported = bool(outcome.usage)  # no usage, no counts and no cost (never a made-up zero)
        usage = Usage.from_openai(dict(outcome.usage)) if outcome.usage else Usage()
        return SideRecord(
            deployment=outcome.deployment,
            text=outcome.text[:MAX_TEXT],
            finish=outcome.finish,
            latency_ms=outcome.latency * 1000,
            prompt_tokens=usage.prompt_tokens if reported else None,
            completion_tokens=usage.completion_tokens if reported else None,
            error=outcome.error,
            cost_usd=cost_usd(usage, deployment.price) if reported and deployment is not None else None,
        )


def _shadow_request(request: ChatRequest, candidate: str) -> ChatRequest:
    """The primary's request, non-streaming, for the candidate alias (a shallow copy: never mutated)."""
    body = {k: v for k, v in request.body.items() if k not in ("stream", "stream_options")}
    body["model"] = candidate
    return ChatRequest(model=candidate, body=body)
