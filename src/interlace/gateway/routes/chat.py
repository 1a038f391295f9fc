"""``POST /v1/chat/completions``: OpenAI Chat Completions, plain and streamed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from interlace.core.errors import InterlaceError
from interlace.core.operations import ChatRequest
from interlace.core.usage import estimate_tokens, usage_dict
from interlace.gateway.bodies import read_json, validate
from interlace.gateway.disconnect import EventStreamResponse, cancel_on_disconnect
from interlace.gateway.routes._base import ApiRoutes, json_response
from interlace.gateway.schemas import ChatCompletionRequest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request
    from starlette.responses import Response

    from interlace.gateway.recording import Recording

__all__ = ["ChatRoutes", "decode_chat_request"]

DONE = b"data: [DONE]\n\n"


def decode_chat_request(body: dict[str, Any]) -> ChatRequest:
    validate(ChatCompletionRequest, body)
    options = body.get("stream_options") or {}
    return ChatRequest(
        model=body["model"],
        body=body,
        stream=bool(body.get("stream")),
        include_usage=bool(options.get("include_usage")),
    )


class ChatRoutes(ApiRoutes):
    async def completions(self, request: Request) -> Response:
        with self.recorder.begin(request, "chat", "/v1/chat/completions") as rec:
            return await self._completions(request, rec)

    async def _completions(self, request: Request, rec: Recording) -> Response:
        body = await read_json(request, self.max_body_bytes)
        op = decode_chat_request(body)
        ctx = rec.route(self.contexts(request, body), body)
        admission = await self.admit(rec, "chat", op, ctx)
        op = admission.op  # masked, when a PII policy masks
        if op.stream:
            chunks = await cancel_on_disconnect(self.router.stream_chat(op, ctx), request.receive)
            return EventStreamResponse(
                openai_events(rec.stream(admission.restore_stream(chunks)), include_usage=op.include_usage),
                headers=ctx.response_headers(),
                on_close=rec.close,
            )
        answer = admission.restore(await cancel_on_disconnect(self.router.chat(op, ctx), request.receive))
        if not answer.get("usage"):
            answer["usage"] = _estimated_usage(op.body, answer)
        rec.answered(answer)
        return json_response(answer, ctx)


async def openai_events(
    chunks: AsyncIterator[dict[str, Any]], *, include_usage: bool
) -> AsyncIterator[bytes]:
    """SSE frames for OpenAI clients; a broken stream ends with an error event, never ``[DONE]``."""
    try:
        async for chunk in chunks:
            if not chunk.get("choices") and chunk.get("usage") is not None:
                if include_usage:
                    yield b"data: " + orjson.dumps(chunk) + b"\n\n"
                continue
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
    except InterlaceError as exc:
        yield b"data: " + orjson.dumps(exc.to_openai()) + b"\n\n"
        return
    yield DONE


def _estimated_usage(body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    prompt = sum(estimate_tokens(str(m.get("content") or "")) for m in body.get("messages", []))
    completion = sum(
        estimate_tokens(str((c.get("message") or {}).get("content") or "")) for c in answer.get("choices", [])
    )
    usage = usage_dict(prompt, completion)
    usage["estimated"] = True
    return usage
