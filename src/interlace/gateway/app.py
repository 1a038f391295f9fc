"""Assemble the gateway's ASGI application from explicitly passed services."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import Route

from interlace.core.errors import InterlaceError
from interlace.gateway.errors import handle_exception
from interlace.gateway.middleware.auth import MasterKeyAuth
from interlace.gateway.middleware.request_id import RequestIdMiddleware, with_request_id
from interlace.gateway.middleware.tracing import TracingMiddleware
from interlace.gateway.openapi import build_openapi
from interlace.gateway.recording import Recorder
from interlace.gateway.route_context import ContextFactory
from interlace.gateway.routes.chat import ChatRoutes
from interlace.gateway.routes.classify import ClassifyRoutes
from interlace.gateway.routes.embeddings import EmbeddingRoutes
from interlace.gateway.routes.health import HealthRoutes
from interlace.gateway.routes.inference_v2 import InferenceV2Routes
from interlace.gateway.routes.messages import MessagesRoutes
from interlace.gateway.routes.metrics import MetricsRoutes
from interlace.gateway.routes.models import ModelRoutes
from interlace.gateway.routes.usage import UsageRoutes

if TYPE_CHECKING:
    from starlette.requests import Request

    from interlace.runtime import Runtime

__all__ = ["build_app"]


def build_app(runtime: Runtime) -> Starlette:
    """The gateway for a runtime: every route, its middleware and error encoding."""
    config, router = runtime.config, runtime.router
    limit = config.server.max_body_bytes
    contexts = ContextFactory(config.routing)
    # one RequestRecord per API request, to runtime.observers (metrics, request log, event log)
    recorder = Recorder(
        runtime.observers, router.routes, capture_content=config.observability.logs.include_content
    )
    gate = runtime.gate
    chat = ChatRoutes(router, contexts, max_body_bytes=limit, recorder=recorder, gate=gate)
    embeddings = EmbeddingRoutes(router, contexts, max_body_bytes=limit, recorder=recorder, gate=gate)
    classify = ClassifyRoutes(router, contexts, max_body_bytes=limit, recorder=recorder, gate=gate)
    messages = MessagesRoutes(router, contexts, max_body_bytes=limit, recorder=recorder, gate=gate)
    models = ModelRoutes(router, created=runtime.started_at)
    inference = InferenceV2Routes(router, contexts, max_body_bytes=limit, recorder=recorder, gate=gate)
    health = HealthRoutes(runtime)
    usage = UsageRoutes(runtime.database)
    openapi = orjson.dumps(build_openapi(authenticated=config.auth.enabled))

    async def openapi_json(request: Request) -> Response:
        del request
        return Response(openapi, media_type="application/json")

    routes = [
        Route("/v1/chat/completions", chat.completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings.create, methods=["POST"]),
        Route("/v1/classify", classify.classify, methods=["POST"]),
        Route("/v1/messages", messages.create, methods=["POST"]),
        Route("/v1/models", models.list, methods=["GET"]),
        Route("/v1/usage", usage.get, methods=["GET"]),
        Route("/v1/models/{model:path}", models.retrieve, methods=["GET"]),
        Route("/v2/models/{model}/infer", inference.infer, methods=["POST"]),
        Route("/v2/models/{model}/versions/{version}/infer", inference.infer, methods=["POST"]),
        Route("/v2/models/{model}/ready", inference.ready, methods=["GET"]),
        Route("/v2/models/{model}/versions/{version}", inference.metadata, methods=["GET"]),
        Route("/v2/models/{model}", inference.metadata, methods=["GET"]),
        Route("/healthz", health.alive, methods=["GET"]),
        Route("/readyz", health.ready, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
    ]
    if runtime.metrics is not None:  # observability.metrics.enabled
        runtime.metrics.live.watch_requests(recorder.in_flight)
        routes.append(Route("/metrics", MetricsRoutes(runtime.metrics).scrape, methods=["GET"]))
    # the request id first, so every response carries x-request-id (401s of MasterKeyAuth included)
    middleware = [Middleware(RequestIdMiddleware)]
    if config.auth.master_key is not None:
        middleware.append(Middleware(MasterKeyAuth, key=config.auth.master_key.get_secret_value()))
    if runtime.tracing.enabled:  # outermost: every request gets its server span, 401s included
        middleware.insert(0, Middleware(TracingMiddleware, tracing=runtime.tracing))
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            InterlaceError: handle_exception,
            HTTPException: handle_exception,
            Exception: with_request_id(handle_exception),  # answered outside RequestIdMiddleware
        },
    )
