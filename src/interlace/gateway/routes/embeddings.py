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

    from interlace.core.operations import EmbeddingResult
    from interlace.gateway.recording import Recording

__all__ = ["EmbeddingRoutes", "decode_embedding_request", "embeddings_answer", "encode_base64"]


class EmbeddingRoutes(ApiRoutes):
    async def create(self, request: Request) -> Response:
        with self.recorder.begin(request, "embeddings", "/v1/embeddings") as rec:
            return await self._create(request, rec)

    async def _create(self, request: Request, rec: Recording) -> Response:
        body = await read_json(request, self.max_body_bytes)
        op = decode_embedding_request(body)
        ctx = rec.route(self.contexts(request, body), body)
        op = (await self.admit(rec, "embeddings", op, ctx)).op
        result = await cancel_on_disconnect(self.router.embed(op, ctx), request.receive)
        rec.counted(result.prompt_tokens)
        return json_response(embeddings_answer(op, result, body), ctx)


def decode_embedding_request(body: dict[str, Any]) -> EmbeddingRequest:
    """The canonical request of a ``/v1/embeddings`` body; a 400 naming the field that is wrong."""
    parsed = validate(EmbeddingRequestBody, body)
    raw = parsed.input
    inputs: Any = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else raw
    return EmbeddingRequest(model=parsed.model, inputs=inputs, dimensions=parsed.dimensions, user=parsed.user)


def embeddings_answer(op: EmbeddingRequest, result: EmbeddingResult, body: dict[str, Any]) -> dict[str, Any]:
    """The ``/v1/embeddings`` answer, base64-encoded when the (validated) ``body`` asked for it."""
    as_base64 = body.get("encoding_format") == "base64"
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode_base64(v) if as_base64 else v}
            for i, v in enumerate(result.vectors)
        ],
        "model": op.model,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }


def encode_base64(vector: list[float]) -> str:
    """Little-endian float32, base64: what OpenAI returns for ``encoding_format: base64``."""
    packed = array.array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()
