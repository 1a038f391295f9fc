"""``POST /v1/embeddings``: OpenAI Embeddings, float or base64."""

from __future__ import annotations

import array
import base64
import sys
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response

from interlace.core.operations import EmbeddingRequest
from interlace.gateway.bodies import read_json, validate
from interlace.gateway.disconnect import cancel_on_disconnect
from interlace.gateway.schemas import EmbeddingRequestBody

if TYPE_CHECKING:
    from starlette.requests import Request

    from interlace.gateway.recording import Recorder, Recording
    from interlace.gateway.route_context import ContextFactory
    from interlace.routing.router import Router

__all__ = ["EmbeddingRoutes", "encode_base64"]


class EmbeddingRoutes:
    def __init__(
        self, router: Router, contexts: ContextFactory, *, max_body_bytes: int, recorder: Recorder
    ) -> None:
        self.router = router
        self.contexts = contexts
        self.max_body_bytes = max_body_bytes
        self.recorder = recorder

    async def create(self, request: Request) -> Response:
        with self.recorder.begin(request, "embeddings", "/v1/embeddings") as rec:
            return await self._create(request, rec)

    async def _create(self, request: Request, rec: Recording) -> Response:
        body = await read_json(request, self.max_body_bytes)
        parsed = validate(EmbeddingRequestBody, body)
        raw = parsed.input
        inputs: Any = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else raw
        op = EmbeddingRequest(
            model=parsed.model, inputs=inputs, dimensions=parsed.dimensions, user=parsed.user
        )
        ctx = rec.route(self.contexts(request, body), body)
        result = await cancel_on_disconnect(self.router.embed(op, ctx), request.receive)
        rec.counted(result.prompt_tokens)
        as_base64 = parsed.encoding_format == "base64"
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": encode_base64(vector) if as_base64 else vector,
            }
            for index, vector in enumerate(result.vectors)
        ]
        answer = {
            "object": "list",
            "data": data,
            "model": parsed.model,
            "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
        }
        return Response(orjson.dumps(answer), media_type="application/json", headers=ctx.response_headers())


def encode_base64(vector: list[float]) -> str:
    """Little-endian float32, base64: what OpenAI returns for ``encoding_format: base64``."""
    packed = array.array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()
