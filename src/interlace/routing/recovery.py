"""Mid-stream recovery: a stream cut after it reached the client is continued, not abandoned.

When a committed stream is cut, stalls past its idle deadline or carries an error event, the text
already delivered is sent as an assistant prefill to a deployment that declares it can continue
one (``supports_prefill``: the same alias first, then its fallbacks), and the continuation is
streamed into the same response, so the client receives one complete answer.

Where continuing is impossible — a tool call was (half-)sent, ``n > 1``, or no deployment can
continue — the stream ends with an error event naming the original failure. A failed recovery
never hides the real cause: the error names the cut first and the recovery failure after it.
Every cut counts as a failure on the streaming deployment's circuit breaker.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from interlace.core.errors import InterlaceError, StreamInterrupted
from interlace.core.operations import ChatChunks, ChatRequest
from interlace.core.usage import estimate_tokens
from interlace.resilience.breaker import Permit

if TYPE_CHECKING:
    from collections.abc import Callable

    from interlace.routing.context import RouteContext
    from interlace.routing.deployment import ModelRoute
    from interlace.routing.router import Router

__all__ = ["RecoveringStream"]

log = logging.getLogger("interlace.routing.recovery")


class RecoveringStream:
    def __init__(
        self,
        router: Router,
        request: ChatRequest,
        ctx: RouteContext,
        route: ModelRoute,
        *,
        max_recoveries: int = 2,
        on_complete: Callable[[RecoveringStream], None] | None = None,
    ) -> None:
        self.router = router
        self.request = request
        self.ctx = ctx
        self.route = route
        self.max_recoveries = max_recoveries
        self.text: list[str] = []
        self.tool_calls_sent = False
        self.finished = False
        self.stream_id: str | None = None
        self._continuing = False
        self._prefill_tokens = 0
        # what a completed stream delivered, for on_complete (shadow traffic)
        self.on_complete = on_complete
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None

    async def run(self, stream: ChatChunks, *, release: Callable[[], None]) -> ChatChunks:
        try:
            while True:
                try:
                    async for chunk in stream:
                        yield self._pass(chunk)
                    self._completed()
                    return
                except StreamInterrupted as cut:
                    await self._count_cut()
                    if self.finished:
                        log.warning("stream cut after its answer finished; finalised (%s)", cut.message)
                        self._completed()
                        return
                    if not self._can_continue():
                        raise
                    release()
                    await stream.aclose()
                    stream, release = await self._continue(cut)
        finally:
            release()
            await stream.aclose()

    async def _count_cut(self) -> None:
        """A cut is the streaming deployment's failure: its breaker counts it (the attempt itself was
        counted a success when its first token arrived, so a deployment that cuts every stream sits at
        half its requests failed — the default threshold opens it)."""
        ctx = self.ctx
        route = self.router.routes.get(ctx.served_model or "")
        if ctx.deployment is None or route is None:
            return
        permit = Permit(ctx.deployment, probe=False, token=None)
        try:
            await self.router.attempts.breakers.record_failure(permit, route.config.breaker)
        except Exception:  # the breaker store is advisory: a failure to count must not break the stream
            log.exception("could not count the cut of %s on its breaker", ctx.deployment)

    def _pass(self, chunk: dict[str, Any]) -> dict[str, Any]:
        if self.stream_id is None:
            self.stream_id = chunk.get("id")
        elif self._continuing:
            chunk = {**chunk, "id": self.stream_id}
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if self._continuing and "role" in delta:
                delta = {k: v for k, v in delta.items() if k != "role"}
                choice["delta"] = delta
            if delta.get("content"):
                self.text.append(delta["content"])
            if delta.get("tool_calls"):
                self.tool_calls_sent = True
            if choice.get("finish_reason"):
                self.finished = True
                self.finish_reason = choice["finish_reason"]
        usage = chunk.get("usage")
        if self._continuing and usage:
            usage = dict(usage)
            usage["completion_tokens"] = usage.get("completion_tokens", 0) + self._prefill_tokens
            usage["total_tokens"] = usage.get("prompt_tokens", 0) + usage["completion_tokens"]
            chunk = {**chunk, "usage": usage}
        if usage:
            self.usage = usage
        return chunk

    def _completed(self) -> None:
        """The stream ended normally: tell ``on_complete``, which must never break the client's stream."""
        if self.on_complete is not None:
            try:
                self.on_complete(self)
            except Exception:
                log.exception("stream completion callback failed; the stream is unaffected")

    def _can_continue(self) -> bool:
        n = self.request.body.get("n") or 1
        return (
            n == 1
            and not self.tool_calls_sent
            and bool(self.text)
            and self.ctx.recovered < self.max_recoveries
        )

    async def _continue(self, cut: StreamInterrupted) -> tuple[ChatChunks, Callable[[], None]]:
        delivered = "".join(self.text)
        body = dict(self.request.body)
        body["messages"] = [*body["messages"], {"role": "assistant", "content": delivered}]
        body.pop("n", None)
        continuation = ChatRequest(
            model=self.request.model,
            body=body,
            stream=True,
            include_usage=self.request.include_usage,
            deadline=self.request.deadline,
        )
        failed = self.ctx.deployment or "?"
        reasons: list[str] = []
        routes = [
            self.route,
            *(self.router.routes[a] for a in self.route.config.fallbacks if a in self.router.routes),
        ]
        for route in routes:
            if not any(d.supports_prefill for d in route.deployments):
                reasons.append(f"no deployment of '{route.alias}' can continue an answer (supports_prefill)")
                continue
            try:
                held = await self.router.continue_stream(continuation, self.ctx, route, failed)
            except InterlaceError as error:
                reasons.append(error.message)
                continue
            log.info("stream from %s cut (%s); continuing on %s", failed, cut.code, self.ctx.deployment)
            self.ctx.recovered += 1
            self.ctx.fallback = self.ctx.fallback or route is not self.route
            self._continuing = True
            self._prefill_tokens = estimate_tokens(delivered)
            self.text = [delivered]
            return held.value, held.release
        raise cut.with_message(f"{cut.message} The answer could not be continued: {'; '.join(reasons)}.")
