"""``POST /v1/messages``: the Anthropic Messages API, served by any provider through translation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from interlace.core.errors import InterlaceError
from interlace.core.operations import ChatRequest
from interlace.gateway.bodies import read_json, validate
from interlace.gateway.disconnect import EventStreamResponse, cancel_on_disconnect
from interlace.gateway.routes._base import ApiRoutes, json_response
from interlace.gateway.schemas import MessagesRequestBody
from interlace.protocols.anthropic import (
    ChatChunksToMessagesStream,
    chat_response_to_messages,
    messages_request_to_chat,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request
    from starlette.responses import Response

    from interlace.gateway.recording import Recording

__all__ = ["MessagesRoutes"]


class MessagesRoutes(ApiRoutes):
    async def create(self, request: Request) -> Response:
        with self.recorder.begin(request, "chat", "/v1/messages") as rec:
            return await self._create(request, rec)

    async def _create(self, request: Request, rec: Recording) -> Response:
        body = await read_json(request, self.max_body_bytes)
        validate(MessagesRequestBody, body)
        alias = body["model"]
        chat_body = messages_request_to_chat(body)
        stream = bool(body.get("stream"))
        op = ChatRequest(model=alias, body=chat_body, stream=stream, include_usage=stream)
        ctx = rec.route(self.contexts(request, chat_body), chat_body)
        admission = await self.admit(rec, "chat", op, ctx)
        op = admission.op  # masked, when a PII policy masks
        if stream:
            chunks = await cancel_on_disconnect(self.router.stream_chat(op, ctx), request.receive)
            return EventStreamResponse(
                anthropic_events(rec.stream(admission.restore_stream(chunks)), model=alias),
                headers=ctx.response_headers(),
                on_close=rec.close,
            )
        answer = admission.restore(await cancel_on_disconnect(self.router.chat(op, ctx), request.receive))
        rec.answered(answer)
        message = chat_response_to_messages(answer, model=alias)
        return json_response(message, ctx)


async def anthropic_events(chunks: AsyncIterator[dict[str, Any]], *, model: str) -> AsyncIterator[bytes]:
    """Anthropic's event sequence; a broken stream ends with an ``error`` event, never ``message_stop``."""
    translator = ChatChunksToMessagesStream(model=model)
    try:
        async for chunk in chunks:
            for name, data in translator.feed(chunk):
                yield _frame(name, data)
    except InterlaceError as exc:
        name, data = translator.error_event(exc.message)
        yield _frame(name, data)
        return
    for name, data in translator.finish():
        yield _frame(name, data)


def _frame(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
