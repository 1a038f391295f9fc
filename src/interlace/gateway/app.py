"""Assemble the gateway's ASGI application from explicitly passed services."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import Route

from interlace.core.errors import InterlaceError
from interlace.gateway.errors import handle_exception
from interlace.gateway.middleware.auth import Authenticate
from interlace.gateway.middleware.direct_routes import DirectRoutes
from interlace.gateway.middleware.request_id import RequestIdMiddleware, with_request_id
from interlace.gateway.openapi import build_openapi
from interlace.gateway.recording import Recorder
from interlace.gateway.route_context import ContextFactory
from interlace.gateway.routes.admin_keys import AdminKeyRoutes
from interlace.gateway.routes.async_work import async_routes
from interlace.gateway.routes.audit import AuditRoutes
from interlace.gateway.routes.chat import ChatRoutes
from interlace.gateway.routes.classify import ClassifyRoutes
from interlace.gateway.routes.embeddings import EmbeddingRoutes
from interlace.gateway.routes.flows import FlowEventRoutes
from interlace.gateway.routes.functions import FunctionRoutes
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
        runtime.observers,
        router.routes,
        capture_content=config.observability.logs.include_content,
        audit_content=config.audit.content if config.audit.enabled else "none",
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
    admin_keys = AdminKeyRoutes(runtime.keys, runtime.key_cache)  # operator only (admin or master key)
    # AI functions (interlace.functions): run through the same gate and router (runtime.functions)
    runner = runtime.functions
    functions = FunctionRoutes(runner, contexts, max_body_bytes=limit, recorder=recorder)
    flow_events = FlowEventRoutes(runtime.database, config.flows)
    # built on the first request for it, not at start-up (~30-60 ms), then served from memory
    openapi = functools.cache(
        lambda: orjson.dumps(
            build_openapi(
                authenticated=config.auth.enabled,
                functions=runner.registry,
                metrics=runtime.metrics is not None,
            )
        )
    )

    async def openapi_json(request: Request) -> Response:
        del request
        return Response(openapi(), media_type="application/json")

    routes = [
        Route("/v1/chat/completions", chat.completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings.create, methods=["POST"]),
        Route("/v1/classify", classify.classify, methods=["POST"]),
        Route("/v1/messages", messages.create, methods=["POST"]),
        Route("/v1/models", models.list, methods=["GET"]),
        Route("/v1/usage", usage.get, methods=["GET"]),
        Route("/v1/audit", AuditRoutes(runtime.database).list, methods=["GET"]),
        Route("/v1/models/{model:path}", models.retrieve, methods=["GET"]),
        Route("/v2/models/{model}/infer", inference.infer, methods=["POST"]),
        Route("/v2/models/{model}/versions/{version}/infer", inference.infer, methods=["POST"]),
        Route("/v2/models/{model}/ready", inference.ready, methods=["GET"]),
        Route("/v2/models/{model}/versions/{version}", inference.metadata, methods=["GET"]),
        Route("/v2/models/{model}", inference.metadata, methods=["GET"]),
        Route("/healthz", health.alive, methods=["GET"]),
        Route("/readyz", health.ready, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/v1/functions", functions.list, methods=["GET"]),
        Route("/v1/functions/{name}", functions.call, methods=["POST"]),
        Route("/v1/functions/{name}", functions.retrieve, methods=["GET"]),
        Route("/v1/functions/{name}/versions/{version}", functions.call, methods=["POST"]),
        # flows (interlace.flows): webhook events into a flow's inbox, 202 once durable
        Route("/v1/flows/{name}/events", flow_events.post, methods=["POST"]),
        # --- admin API: virtual keys ---
        Route("/admin/v1/keys", admin_keys.create, methods=["POST"]),
        Route("/admin/v1/keys", admin_keys.list, methods=["GET"]),
        Route("/admin/v1/keys/{key_id}", admin_keys.retrieve, methods=["GET"]),
        Route("/admin/v1/keys/{key_id}", admin_keys.revoke, methods=["DELETE"]),
        Route("/admin/v1/keys/{key_id}/rotate", admin_keys.rotate, methods=["POST"]),
        # --- end admin API: virtual keys ---
        # durable jobs, webhooks, files, batches (interlace.jobs)
        *async_routes(runtime.jobs, max_body_bytes=limit),
    ]
    if runtime.metrics is not None:  # observability.metrics.enabled
        runtime.metrics.live.watch_requests(recorder.in_flight)
        routes.append(Route("/metrics", MetricsRoutes(runtime.metrics).scrape, methods=["GET"]))
    # the request id first, so every response carries x-request-id (401s of Authenticate included),
    # and a request whose client went away ends there (recorded as 499 on its way out, not an error)
    middleware = [Middleware(RequestIdMiddleware)]
    if runtime.authenticator.enabled:  # auth.enabled: a master or admin key, virtual keys or OIDC
        middleware.append(Middleware(Authenticate, authenticator=runtime.authenticator, recorder=recorder))
    middleware.append(Middleware(DirectRoutes, routes=routes))  # innermost: fixed paths skip the router
    if runtime.tracing.enabled:  # just inside the request id: every request gets its span, 401s included
        # imported only with tracing on: the OpenTelemetry API costs start-up time (an entry-point scan)
        from interlace.gateway.middleware.tracing import TracingMiddleware  # noqa: PLC0415

        middleware.insert(1, Middleware(TracingMiddleware, tracing=runtime.tracing))
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            InterlaceError: handle_exception,
            HTTPException: handle_exception,
            Exception: with_request_id(handle_exception),  # answered outside RequestIdMiddleware
        },
    )
