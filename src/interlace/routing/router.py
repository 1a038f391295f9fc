"""The router: model alias → deployments, chosen by weight, failing over before anything was sent.

This is the seam the routing strategies, retries, breakers and fallbacks plug into. What holds now:

- candidates are ordered by weighted random choice without replacement;
- an upstream failure that may succeed elsewhere (connection refused, timeout, 429, 5xx, malformed
  answer) moves to the next candidate; a request error (400, context window, content policy) never
  does;
- a stream is committed to a deployment only when its first chunk arrived: until then a failure
  fails over; after it, a failure reaches the client as an interrupted stream.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from interlace.core.errors import (
    ModelNotFound,
    StreamInterrupted,
    UnsupportedOperation,
    UpstreamError,
    UpstreamRejected,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable

    from interlace.config.schema import DeploymentConfig
    from interlace.core.operations import (
        ChatRequest,
        ClassifyRequest,
        ClassifyResult,
        EmbeddingRequest,
        EmbeddingResult,
        InferRequest,
        Operation,
    )
    from interlace.core.provider import Provider

__all__ = ["Deployment", "ModelRoute", "Router"]

T = TypeVar("T")


@dataclass(slots=True, frozen=True)
class Deployment:
    provider: Provider
    config: DeploymentConfig

    @property
    def name(self) -> str:
        return self.provider.name


@dataclass(slots=True, frozen=True)
class ModelRoute:
    alias: str
    deployments: tuple[Deployment, ...]
    description: str | None = None
    operations: frozenset[Operation] = field(default_factory=frozenset)

    @property
    def ready(self) -> bool:
        return any(d.provider.ready for d in self.deployments)


class Router:
    def __init__(self, routes: dict[str, ModelRoute], *, rng: random.Random | None = None) -> None:
        self.routes = routes
        self._rng = rng or random.Random()  # noqa: S311 - load spreading, not security

    def route(self, alias: str, operation: Operation) -> ModelRoute:
        route = self.routes.get(alias)
        if route is None:
            serving = [name for name, r in self.routes.items() if operation in r.operations]
            raise ModelNotFound(alias, serving)
        if operation not in route.operations:
            serving = sorted(name for name, r in self.routes.items() if operation in r.operations)
            raise UnsupportedOperation(
                f"The model '{alias}' does not serve {_OPERATION_NAMES[operation]}. "
                f"Models that do: {', '.join(serving) or 'none configured'}.",
                param="model",
            )
        return route

    def candidates(self, route: ModelRoute) -> list[Deployment]:
        if len(route.deployments) == 1:
            return list(route.deployments)
        rng = self._rng
        keyed = [(rng.random() ** (1.0 / d.config.weight), d) for d in route.deployments]
        keyed.sort(key=lambda pair: pair[0], reverse=True)
        return [d for _, d in keyed]

    async def _first_success(self, route: ModelRoute, call: Callable[[Provider], Awaitable[T]]) -> T:
        last: UpstreamError | None = None
        for deployment in self.candidates(route):
            try:
                return await call(deployment.provider)
            except UpstreamRejected:
                raise
            except UpstreamError as exc:
                last = exc
        assert last is not None  # a route has at least one deployment
        raise last

    async def chat(self, request: ChatRequest) -> dict[str, Any]:
        route = self.route(request.model, "chat")
        return await self._first_success(route, lambda p: p.chat(request))

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[dict[str, Any], None]:
        """Chunks of the first deployment that produced one; later failures interrupt the stream."""
        route = self.route(request.model, "chat")
        last: UpstreamError | None = None
        for deployment in self.candidates(route):
            stream = deployment.provider.stream_chat(request)
            try:
                first = await anext(stream)
            except StopAsyncIteration:
                last = StreamInterrupted(f"Deployment '{deployment.name}' ended the stream before any chunk.")
                continue
            except UpstreamRejected:
                await stream.aclose()
                raise
            except UpstreamError as exc:
                await stream.aclose()
                last = exc
                continue
            return _prepend(first, stream)
        assert last is not None
        raise last

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        route = self.route(request.model, "embeddings")
        return await self._first_success(route, lambda p: p.embed(request))

    async def classify(self, request: ClassifyRequest) -> ClassifyResult:
        route = self.route(request.model, "classify")
        return await self._first_success(route, lambda p: p.classify(request))

    async def infer(self, request: InferRequest) -> dict[str, Any]:
        route = self.route(request.model, "infer")
        return await self._first_success(route, lambda p: p.infer(request))

    async def model_metadata(self, request: InferRequest) -> dict[str, Any]:
        route = self.route(request.model, "infer")
        return await self._first_success(route, lambda p: p.model_metadata(request))


async def _prepend(
    first: dict[str, Any], rest: AsyncGenerator[dict[str, Any], None]
) -> AsyncGenerator[dict[str, Any], None]:
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()


_OPERATION_NAMES: dict[str, str] = {
    "chat": "chat completions",
    "embeddings": "embeddings",
    "classify": "classification",
    "infer": "Open Inference Protocol inference",
}
