"""``POST /v1/classify``: zero-shot classification of one or more texts into given labels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interlace.core.operations import ClassifyRequest
from interlace.gateway.bodies import read_json, validate
from interlace.gateway.disconnect import cancel_on_disconnect
from interlace.gateway.routes._base import ApiRoutes, json_response
from interlace.gateway.schemas import ClassifyRequestBody

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from interlace.core.operations import ClassifyResult
    from interlace.gateway.recording import Recording

__all__ = ["ClassifyRoutes", "classify_answer", "decode_classify_request"]


class ClassifyRoutes(ApiRoutes):
    async def classify(self, request: Request) -> Response:
        with self.recorder.begin(request, "classify", "/v1/classify") as rec:
            return await self._classify(request, rec)

    async def _classify(self, request: Request, rec: Recording) -> Response:
        body = await read_json(request, self.max_body_bytes)
        op = decode_classify_request(body)
        ctx = rec.route(self.contexts(request, body), body)
        op = (await self.admit(rec, "classify", op, ctx)).op
        result = await cancel_on_disconnect(self.router.classify(op, ctx), request.receive)
        rec.classified(result)
        return json_response(classify_answer(op, result), ctx)


def decode_classify_request(body: dict[str, Any]) -> ClassifyRequest:
    """The canonical request of a ``/v1/classify`` body; a 400 naming the field that is wrong."""
    parsed = validate(ClassifyRequestBody, body)
    inputs = [parsed.input] if isinstance(parsed.input, str) else parsed.input
    return ClassifyRequest(
        model=parsed.model, inputs=inputs, labels=parsed.labels, multi_label=parsed.multi_label
    )


def classify_answer(op: ClassifyRequest, result: ClassifyResult) -> dict[str, Any]:
    """The ``/v1/classify`` answer: each input's labels, best first."""
    return {
        "object": "list",
        "model": op.model,
        "multi_label": op.multi_label,
        "data": [
            {
                "object": "classification",
                "index": index,
                "label": scores[0].label,
                "score": scores[0].score,
                "labels": [{"label": s.label, "score": s.score} for s in scores],
            }
            for index, scores in enumerate(result.scores)
        ],
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }
