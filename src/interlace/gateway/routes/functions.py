"""``/v1/functions``: call AI functions with a typed payload, list them with their schemas.

- ``POST /v1/functions/{name}`` (latest version) and ``POST /v1/functions/{name}/versions/{version}``:
  the body is the function's input object itself. It is validated first (400 naming the field as a
  JSON pointer, ``param: "/customer/email"``); the answer is::

      {"object": "function.result", "function": "classify_ticket", "version": "2",
       "output": {...},                 # exactly the object validated against the output schema
       "confidence": 0.93, "needs_review": false, "model": "minilm", "repairs": 0, "fallback": false,
       "usage": {"prompt_tokens": 12, "completion_tokens": 0, "total_tokens": 12}}

  An answer that stays invalid after the re-asks is a 502 ``function_output_invalid`` whose error
  carries ``raw_output`` and ``violations``.
- ``GET /v1/functions``: every version of every function, with input and output schemas.
- ``GET /v1/functions/{name}``: the latest version, and the list of versions.

Functions run through the gate (endpoint family ``functions``) and the router like every model call
(:mod:`interlace.functions.runner`), and each call is recorded once, as operation ``function``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interlace.core.errors import PermissionDenied
from interlace.functions.runner import ENDPOINT
from interlace.gateway.bodies import read_json
from interlace.gateway.disconnect import cancel_on_disconnect
from interlace.gateway.identity import principal_of
from interlace.gateway.routes._base import ApiRoutes, json_response

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from interlace.functions.runner import FunctionRunner
    from interlace.gateway.recording import Recorder, Recording
    from interlace.gateway.route_context import ContextFactory
    from interlace.observability.record import Usage
    from interlace.security.gate import Admission

__all__ = ["FunctionRoutes"]


class FunctionRoutes(ApiRoutes):
    def __init__(
        self,
        runner: FunctionRunner,
        contexts: ContextFactory,
        *,
        max_body_bytes: int,
        recorder: Recorder,
    ) -> None:
        super().__init__(
            runner.router, contexts, max_body_bytes=max_body_bytes, recorder=recorder, gate=runner.gate
        )
        self.runner = runner

    async def call(self, request: Request) -> Response:
        endpoint = (
            "/v1/functions/{name}/versions/{version}"
            if "version" in request.path_params
            else "/v1/functions/{name}"
        )
        with self.recorder.begin(request, "function", endpoint) as rec:
            return await self._call(request, rec)

    async def _call(self, request: Request, rec: Recording) -> Response:
        name = request.path_params["name"]
        version = request.path_params.get("version")
        self.runner.registry.get(name, version)  # 404 before reading the body
        body = await read_json(request, self.max_body_bytes)
        ctx = rec.route(self.contexts(request), body)

        def admitted(admission: Admission[Any]) -> None:
            rec.admission = admission  # settled (quotas, budgets) once the call is recorded

        def spent(usage: Usage) -> None:
            rec.usage = usage  # every model request's tokens, re-asks of a failed call included

        result = await cancel_on_disconnect(
            self.runner.run(ctx.principal, name, version, body, ctx=ctx, on_admit=admitted, on_usage=spent),
            request.receive,
        )
        rec.confidence = result.confidence
        return json_response(result.to_json(), ctx)

    def _allowed(self, request: Request) -> None:
        principal = principal_of(request.scope)
        if not principal.may_call(ENDPOINT):
            raise PermissionDenied(
                f"credential '{principal.id}' may not call {ENDPOINT} endpoints",
                code="endpoint_not_allowed",
            )

    async def list(self, request: Request) -> Response:
        self._allowed(request)
        data = [definition.describe() for definition in self.runner.registry]
        return json_response({"object": "list", "data": data})

    async def retrieve(self, request: Request) -> Response:
        self._allowed(request)
        name = request.path_params["name"]
        versions = self.runner.registry.versions(name)
        answer = self.runner.registry.get(name).describe()
        answer["versions"] = [d.version for d in versions]
        return json_response(answer)
