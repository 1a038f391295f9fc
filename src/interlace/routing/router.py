"""The router: traffic rules → model alias → attempt loop → fallback chains.

- Traffic rules may send a request to another alias or split it over several (A/B, canary).
- Each alias is served by its :class:`AttemptLoop` (strategy, breakers, bulkheads, retries).
- A policy's ``ctx.allow`` (residency) keeps every attempt on allowed deployments: an alias with none
  allowed is passed over for its fallbacks, and a chain with none at all is the policy's refusal (403).
- When an alias is exhausted, its ``fallbacks`` are tried in order; a context-window error goes
  to ``context_fallbacks`` instead, and a content-policy refusal to ``content_policy_fallbacks``
  when (and only when) that chain is configured. When everything failed, one error lists every
  attempt.
- A stream is committed to a deployment at its first token: until then a failure (or a first token
  slower than the deployment's ``first_token`` deadline) fails over; after it,
  :mod:`interlace.routing.recovery` continues a cut stream where a deployment can.
- An answered chat request (a completed stream) of an alias with ``shadow`` may be mirrored to its
  candidate in the background by :mod:`interlace.routing.shadow`; the client never waits for it.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, TypeVar

from interlace.core.errors import (
    ContentPolicyViolation,
    ContextWindowExceeded,
    InterlaceError,
    ModelNotFound,
    StreamInterrupted,
    UnsupportedOperation,
    UpstreamError,
    UpstreamTimeout,
)
from interlace.routing.attempts import AttemptLoop, Held
from interlace.routing.recovery import RecoveringStream
from interlace.routing.rules import RequestFacts

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable

    from interlace.core.operations import (
        ChatChunks,
        ChatRequest,
        ClassifyRequest,
        ClassifyResult,
        EmbeddingRequest,
        EmbeddingResult,
        InferRequest,
        Operation,
    )
    from interlace.core.provider import Provider
    from interlace.resilience.breaker import Breakers
    from interlace.routing.context import RouteContext
    from interlace.routing.deployment import Deployment, ModelRoute
    from interlace.routing.rules import TrafficRules
    from interlace.routing.shadow import ShadowMirror

__all__ = ["Router"]

T = TypeVar("T")

_OPERATION_NAMES: dict[str, str] = {
    "chat": "chat completions",
    "embeddings": "embeddings",
    "classify": "classification",
    "infer": "Open Inference Protocol inference",
}


class Router:
    def __init__(
        self,
        routes: dict[str, ModelRoute],
        *,
        breakers: Breakers,
        rules: TrafficRules,
        rng: random.Random,
    ) -> None:
        self.routes = routes
        self.rules = rules
        self.attempts = AttemptLoop(breakers, rng=rng)
        #: Shadow traffic (:mod:`interlace.routing.shadow`); the runtime sets it when a model has ``shadow``.
        self.mirror: ShadowMirror | None = None

    def route(self, alias: str, operation: Operation) -> ModelRoute:
        route = self.routes.get(alias)
        if route is not None and operation in route.operations:
            return route
        serving = sorted(name for name, r in self.routes.items() if operation in r.operations)
        if route is None:
            raise ModelNotFound(alias, serving)
        raise UnsupportedOperation(
            f"The model '{alias}' does not serve {_OPERATION_NAMES[operation]}. "
            f"Models that do: {', '.join(serving) or 'none configured'}.",
            param="model",
        )

    def _resolve(self, model: str, operation: Operation, ctx: RouteContext) -> ModelRoute:
        ctx.requested_model = model
        ctx.operation = operation  # names the attempts' trace spans
        if self.rules:
            decision = self.rules.decide(
                RequestFacts(
                    model=model,
                    headers=ctx.headers,
                    api_key=ctx.api_key,
                    tenant=ctx.tenant,
                    user=ctx.user,
                    metadata=ctx.metadata,
                )
            )
            ctx.rule = decision.rule
            if decision.require_tags:
                ctx.required_tags = {**ctx.required_tags, **decision.require_tags}
            model = decision.model
        return self.route(model, operation)

    async def _serve(
        self,
        model: str,
        operation: Operation,
        ctx: RouteContext,
        call: Callable[[Deployment], Awaitable[T]],
        *,
        hold: bool = False,
    ) -> T | Held[T]:
        primary = self._resolve(model, operation, ctx)
        chain = [primary]
        index = 0
        failure: UpstreamError | None = None  # the last real failure, not a residency exclusion
        while True:
            route = chain[index]
            try:
                return await self.attempts.run(route, call, ctx, hold=hold)
            except ContextWindowExceeded as error:
                chain, index = self._switch(chain, index, primary.config.context_fallbacks, operation, error)
            except ContentPolicyViolation as error:
                chain, index = self._switch(
                    chain, index, primary.config.content_policy_fallbacks, operation, error
                )
            except UpstreamError as error:
                if error.code != "no_allowed_deployment":
                    failure = error
                if index == 0 and len(chain) == 1:
                    chain += [self.route(alias, operation) for alias in primary.config.fallbacks]
                if index + 1 >= len(chain):
                    if ctx.allow is not None and not _any_allowed(ctx, chain):
                        raise ctx.allow.refuse(model, chain) from None  # residency: 403, not 502
                    raise _exhausted(failure or error, ctx) from None
                index += 1
            ctx.fallback = True

    def _switch(
        self,
        chain: list[ModelRoute],
        index: int,
        aliases: list[str],
        operation: Operation,
        error: InterlaceError,
    ) -> tuple[list[ModelRoute], int]:
        """Move to a dedicated chain (context window, content policy); its models are tried once."""
        tried = {route.alias for route in chain[: index + 1]}
        remaining = [self.route(alias, operation) for alias in aliases if alias not in tried]
        if not remaining:
            raise error
        return [*chain[: index + 1], *remaining], index + 1

    async def chat(self, request: ChatRequest, ctx: RouteContext) -> dict[str, Any]:
        request.deadline = ctx.deadline
        mirror = self.mirror
        started = time.monotonic() if mirror is not None else 0.0
        answer = await self._serve(request.model, "chat", ctx, lambda d: d.provider.chat(request))
        assert isinstance(answer, dict)
        if mirror is not None:  # shadow traffic: starts a background task, never awaited here
            mirror.after_answer(request, ctx, answer, time.monotonic() - started)
        return answer

    async def stream_chat(self, request: ChatRequest, ctx: RouteContext) -> ChatChunks:
        """Chunks of the first deployment whose first token arrived; a later cut is recovered if it can be."""
        request.deadline = ctx.deadline
        mirror = self.mirror
        started = time.monotonic() if mirror is not None else 0.0
        held = await self._serve(request.model, "chat", ctx, lambda d: _first_token(d, request), hold=True)
        assert isinstance(held, Held)
        route = self.routes[ctx.served_model or request.model]
        # shadow traffic: mirrored once the stream completed, with the text the client received
        observer = (
            mirror.stream_observer(request, ctx, started)
            if mirror is not None and route.config.shadow is not None
            else None
        )
        recovery = RecoveringStream(self, request, ctx, route, on_complete=observer)
        return recovery.run(held.value, release=held.release)

    async def continue_stream(
        self, request: ChatRequest, ctx: RouteContext, route: ModelRoute, failed: str
    ) -> Held[ChatChunks]:
        """Open a continuation of a cut stream on a deployment that declares it can continue one."""
        held = await self.attempts.run(
            route,
            lambda d: _first_token(d, request),
            ctx,
            hold=True,
            eligible=lambda d: d.supports_prefill,
        )
        assert isinstance(held, Held)
        del failed
        return held

    async def embed(self, request: EmbeddingRequest, ctx: RouteContext) -> EmbeddingResult:
        request.deadline = ctx.deadline
        return await self._plain(request.model, "embeddings", ctx, lambda p: p.embed(request))

    async def classify(self, request: ClassifyRequest, ctx: RouteContext) -> ClassifyResult:
        request.deadline = ctx.deadline
        return await self._plain(request.model, "classify", ctx, lambda p: p.classify(request))

    async def infer(self, request: InferRequest, ctx: RouteContext) -> dict[str, Any]:
        request.deadline = ctx.deadline
        return await self._plain(request.model, "infer", ctx, lambda p: p.infer(request))

    async def model_metadata(self, request: InferRequest, ctx: RouteContext) -> dict[str, Any]:
        request.deadline = ctx.deadline
        return await self._plain(request.model, "infer", ctx, lambda p: p.model_metadata(request))

    async def _plain(
        self, model: str, operation: Operation, ctx: RouteContext, call: Callable[[Provider], Awaitable[T]]
    ) -> T:
        result = await self._serve(model, operation, ctx, lambda d: call(d.provider))
        assert not isinstance(result, Held)
        return result


async def _first_token(deployment: Deployment, request: ChatRequest) -> ChatChunks:
    """Open a stream and wait for its first token; the chunks before it are kept and replayed."""
    stream = deployment.provider.stream_chat(request)
    limit = deployment.config.timeouts.first_token
    if request.deadline is not None:
        limit = min(limit, max(0.0, request.deadline - time.monotonic()))
    buffered: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(limit):
            async for chunk in stream:
                buffered.append(chunk)
                if _carries_output(chunk):
                    break
            else:
                raise StreamInterrupted(f"Deployment '{deployment.name}' ended the stream before any token.")
    except TimeoutError:
        await stream.aclose()
        raise UpstreamTimeout(
            f"Deployment '{deployment.name}' sent no token within first_token={limit:g}s.",
            code="first_token_timeout",
        ) from None
    except BaseException:
        await stream.aclose()
        raise
    return _replay(buffered, stream)


def _carries_output(chunk: dict[str, Any]) -> bool:
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or choice.get("finish_reason"):
            return True
    return bool(chunk.get("usage"))


async def _replay(buffered: list[dict[str, Any]], rest: ChatChunks) -> ChatChunks:
    try:
        for chunk in buffered:
            yield chunk
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()


def _any_allowed(ctx: RouteContext, chain: list[ModelRoute]) -> bool:
    allow = ctx.allow
    return allow is None or any(allow.allows(d) for route in chain for d in route.deployments)


def _exhausted(error: UpstreamError, ctx: RouteContext) -> UpstreamError:
    """The last error, its message listing every attempt of the request."""
    if len(ctx.attempts) <= 1:
        return error
    lines = "; ".join(attempt.describe() for attempt in ctx.attempts)
    return error.with_message(f"All {len(ctx.attempts)} attempts failed: {lines}")
