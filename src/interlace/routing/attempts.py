"""The attempt loop for one model alias: pick a healthy deployment, call it, decide what a failure means.

- Candidates come in the alias's strategy order, filtered by required tags and by the policies'
  ``ctx.allow`` (residency: none is set unless a rule applies), minus deployments whose
  breaker is open or that are cooling down after a 429 (a half-open breaker lets a bounded number
  of probes through).
- A deployment whose bulkhead is full is passed over for the next; when every one is full the
  request waits in the first bounded queue with room, or is answered 503 with ``Retry-After``.
- A failure that is safe to retry (connection refused or reset, 429, 5xx, malformed answer) moves
  to the next untried candidate at once; when every candidate failed, the next round starts after
  an exponential backoff with full jitter — never sooner than a ``Retry-After`` — within the
  alias's attempt budget and the request's deadline.
- A deployment that stayed silent past its first-byte deadline is not retried for this request.
- A 429 cools the deployment down for its ``Retry-After`` without counting as a breaker failure.
- A context-window error, a content-policy refusal or a request error ends the loop at once: the
  caller decides on fallbacks.
- A traced request (``ctx.trace``) gets one CLIENT span per attempt, whose context is sent upstream
  (:mod:`interlace.observability.spans`); a streamed attempt's span ends with its stream.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from interlace.core.errors import (
    CapacityExceeded,
    InterlaceError,
    ServiceUnavailable,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from interlace.resilience.breaker import Permit, Refusal
from interlace.resilience.retry import Decision, RetrySchedule, classify
from interlace.routing.context import Attempt
from interlace.routing.strategies import filter_by_tags

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable

    from interlace.resilience.breaker import Breakers
    from interlace.routing.context import RouteContext
    from interlace.routing.deployment import Deployment, ModelRoute

__all__ = ["AttemptLoop", "Held"]

T = TypeVar("T")

#: Cool-down after a 429 that carried no Retry-After.
DEFAULT_COOL_DOWN = 1.0


@dataclass(slots=True)
class Held(Generic[T]):
    """A result that keeps its deployment's bulkhead slot until ``release`` (an open stream)."""

    value: T
    release: Callable[[], None] = field(default=lambda: None)


@dataclass(slots=True)
class _Unavailable:
    """Why no candidate could be called right now."""

    until: float | None = None  # wall time the earliest refusal ends
    reasons: list[str] = field(default_factory=list)
    capacity: bool = False


class AttemptLoop:
    def __init__(self, breakers: Breakers, *, rng: random.Random) -> None:
        self.breakers = breakers
        self._rng = rng

    async def run(
        self,
        route: ModelRoute,
        call: Callable[[Deployment], Awaitable[T]],
        ctx: RouteContext,
        *,
        hold: bool = False,
        eligible: Callable[[Deployment], bool] | None = None,
    ) -> T | Held[T]:
        """Serve from the first deployment that answers. With ``hold`` the slot outlives the call."""
        schedule = RetrySchedule.from_config(route.config.retry, deadline=ctx.deadline, rng=self._rng)
        pool = _candidates(route, ctx, eligible)
        tried: set[str] = set()  # this round
        silent: set[str] = set()  # past their first-byte deadline: not again for this request
        retry_number = 0
        last: InterlaceError | None = None
        while True:
            pick = await self._pick(route, [d for d in pool if d.name not in tried | silent], ctx)
            if isinstance(pick, _Unavailable):
                if pick.capacity and last is None:
                    raise CapacityExceeded(
                        f"Every deployment of '{route.alias}' is at its concurrency limit; retry shortly.",
                        headers={"retry-after": "1"},
                    )
                retry_after = None if pick.until is None else max(0.0, pick.until - time.time())
            else:
                deployment, permit = pick
                try:
                    return await self._attempt(route, deployment, permit, call, ctx, hold=hold)
                except InterlaceError as error:
                    decision = classify(error)
                    if decision not in {Decision.RETRY, Decision.FAIL_OVER}:
                        raise
                    last = error
                    schedule.record_attempt()
                    if not schedule.attempts_left:
                        raise
                    (silent if decision is Decision.FAIL_OVER else tried).add(deployment.name)
                    if any(d.name not in tried | silent for d in pool):
                        continue  # fail over to the next candidate at once
                    retry_after = error.retry_after if isinstance(error, UpstreamRateLimited) else None
            retry_number += 1
            delay = schedule.delay_before(retry_number, retry_after=retry_after, now=time.monotonic())
            if delay is None:
                if last is not None:
                    raise last
                raise _unavailable(route, pick if isinstance(pick, _Unavailable) else _Unavailable())
            await asyncio.sleep(delay)
            tried.clear()

    async def _pick(
        self, route: ModelRoute, candidates: list[Deployment], ctx: RouteContext
    ) -> tuple[Deployment, Permit] | _Unavailable:
        unavailable = _Unavailable()
        admitted: list[tuple[Deployment, Permit]] = []
        for deployment in route.strategy.order(candidates):
            verdict = await self.breakers.allow(deployment.name, route.config.breaker)
            if isinstance(verdict, Refusal):
                unavailable.reasons.append(f"{deployment.name} {verdict.reason.replace('_', ' ')}")
                if unavailable.until is None or verdict.until < unavailable.until:
                    unavailable.until = verdict.until
                continue
            if deployment.bulkhead.try_enter():
                for _, other in admitted:
                    await self.breakers.release(other)
                return deployment, verdict
            admitted.append((deployment, verdict))
        # every admitted deployment is at its limit: wait in the first bounded queue with room
        chosen: tuple[Deployment, Permit] | None = None
        for deployment, permit in admitted:
            if chosen is None and await deployment.bulkhead.enter(timeout=max(0.0, ctx.remaining())):
                chosen = (deployment, permit)
            else:
                await self.breakers.release(permit)
        if chosen is not None:
            return chosen
        unavailable.capacity = bool(admitted)
        return unavailable

    async def _attempt(
        self,
        route: ModelRoute,
        deployment: Deployment,
        permit: Permit,
        call: Callable[[Deployment], Awaitable[T]],
        ctx: RouteContext,
        *,
        hold: bool,
    ) -> T | Held[T]:
        started = time.monotonic()
        deployment.stats.started()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                deployment.bulkhead.leave()

        # tracing: a client span per attempt; ctx.trace is None unless tracing is on
        span = ctx.trace.attempt(route, deployment, ctx, stream=hold) if ctx.trace is not None else None
        try:
            result = await (call(deployment) if span is None else span.propagate(call(deployment)))
        except asyncio.CancelledError as error:
            if span is not None:
                span.failed(error)
            release()
            deployment.stats.cancelled()
            await asyncio.shield(self.breakers.release(permit))
            raise
        except BaseException as error:
            if span is not None:
                span.failed(error)
            if not isinstance(error, InterlaceError):
                release()
                deployment.stats.finished(time.monotonic() - started, ok=False)
                await self.breakers.release(permit)
                raise
            release()
            elapsed = time.monotonic() - started
            deployment.stats.finished(elapsed, ok=False)
            ctx.attempts.append(Attempt(route.alias, deployment.name, error.code, elapsed, error.message))
            await self._settle(route, deployment, permit, error)
            raise
        elapsed = time.monotonic() - started
        if span is not None:  # a stream's span ends with the stream
            result = span.succeeded(result, elapsed=elapsed, stream=hold)
        deployment.stats.finished(elapsed, ok=True)
        ctx.attempts.append(Attempt(route.alias, deployment.name, "ok", elapsed))
        ctx.served_model, ctx.deployment = route.alias, deployment.name
        await self.breakers.record_success(permit, route.config.breaker)
        if hold:
            return Held(result, release)
        release()
        return result

    async def _settle(
        self, route: ModelRoute, deployment: Deployment, permit: Permit, error: InterlaceError
    ) -> None:
        """Tell the breaker what the failure means for the deployment's health."""
        if isinstance(error, UpstreamRateLimited):
            await self.breakers.release(permit)
            await self.breakers.cool_down(deployment.name, error.retry_after or DEFAULT_COOL_DOWN)
        elif isinstance(error, ServiceUnavailable):
            # not ready (a local model still loading) or full: says nothing about its health
            await self.breakers.release(permit)
        elif (isinstance(error, UpstreamError) and error.retryable) or classify(error) is Decision.FAIL_OVER:
            await self.breakers.record_failure(permit, route.config.breaker)
        else:
            # the deployment answered; the request was at fault (400, context window, content policy)
            await self.breakers.record_success(permit, route.config.breaker)


def _candidates(
    route: ModelRoute, ctx: RouteContext, eligible: Callable[[Deployment], bool] | None
) -> list[Deployment]:
    """The alias's deployments this request may use: required tags, ``eligible``, the policies' ``allow``."""
    tagged = filter_by_tags(route.deployments, ctx.required_tags)
    pool = [d for d in tagged if eligible is None or eligible(d)]
    if not pool:
        raise UpstreamUnavailable(
            f"No deployment of '{route.alias}' has the required tags {dict(ctx.required_tags)}.",
            code="no_matching_deployment",
        )
    allow = ctx.allow
    if allow is not None:
        pool = [d for d in pool if allow.allows(d)]
        if not pool:  # the router falls back, or refuses when the whole chain is excluded
            refusal = allow.refuse(route.alias, [route])
            raise UpstreamUnavailable(refusal.message, code="no_allowed_deployment")
    return pool


def _unavailable(route: ModelRoute, pick: _Unavailable) -> UpstreamUnavailable:
    detail = "; ".join(pick.reasons) or "no deployment available"
    error = UpstreamUnavailable(
        f"No deployment of '{route.alias}' is available now ({detail}).", code="deployments_unavailable"
    )
    if pick.until is not None:
        error.headers["retry-after"] = str(max(1, int(pick.until - time.time() + 0.999)))
    return error
