"""``POST /v1/embeddings``: OpenAI Embeddings, float or base64."""

from __future__ import annotations

import array
import base64
import sys
from typing import TYPE_CHECKING, Any

from interlace.core.operations import EmbeddingRequest
from interlace.gateway.bodies import read_json, validate
from interlace.gateway.disconnect import cancel_on_disconnect
from interlace.gateway.routes._base import ApiRoutes, json_response
from interlace.gateway.schemas import EmbeddingRequestBody

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from interlace.gateway.recording import Recording

__all__ = ["EmbeddingRoutes", "encode_base64"]


class EmbeddingRoutes(ApiRoutes):
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
        op = (await self.admit(rec, "embeddings", op, ctx)).op
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
        return json_response(answer, ctx)


def encode_base64(vector: list[float]) -> str:
    """Little-endian float32, base64: what OpenAI returns for ``encoding_format: base64``."""
    packed = array.array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()
