"""Open Inference Protocol v2 passthrough: ``/v2/models/{name}[/versions/{v}][/infer]``.

Classic ML model servers (KServe, Triton, MLServer) are reached through the same router and
policies as every other call; the body passes through, only the model name is mapped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from interlace.core.operations import InferRequest
from interlace.gateway.bodies import read_json, validate
from interlace.gateway.disconnect import cancel_on_disconnect
from interlace.gateway.routes._base import ApiRoutes, json_response
from interlace.gateway.schemas import InferenceRequestBody

if TYPE_CHECKING:
    from starlette.requests import Request

    from interlace.gateway.recording import Recording

__all__ = ["InferenceV2Routes"]

_INFER = "/v2/models/{model}/infer"
_VERSIONED_INFER = "/v2/models/{model}/versions/{version}/infer"


class InferenceV2Routes(ApiRoutes):
    def _op(self, request: Request, body: dict[str, object] | None = None) -> InferRequest:
        return InferRequest(
            model=request.path_params["model"],
            version=request.path_params.get("version"),
            body=dict(body or {}),
        )

    async def infer(self, request: Request) -> Response:
        endpoint = _VERSIONED_INFER if "version" in request.path_params else _INFER
        with self.recorder.begin(request, "infer", endpoint) as rec:
            return await self._infer(request, rec)

    async def _infer(self, request: Request, rec: Recording) -> Response:
        body = await read_json(request, self.max_body_bytes)
        validate(InferenceRequestBody, body)
        op = self._op(request, body)
        ctx = rec.route(self.contexts(request))
        op = (await self.admit(rec, "infer", op, ctx)).op
        answer = await cancel_on_disconnect(self.router.infer(op, ctx), request.receive)
        answer["model_name"] = op.model
        return json_response(answer, ctx)

    async def metadata(self, request: Request) -> Response:
        op = self._op(request)
        answer = await cancel_on_disconnect(
            self.router.model_metadata(op, self.contexts(request)), request.receive
        )
        answer["name"] = op.model
        return json_response(answer)

    async def ready(self, request: Request) -> Response:
        route = self.router.route(request.path_params["model"], "infer")
        return Response(status_code=200 if route.ready else 503)
