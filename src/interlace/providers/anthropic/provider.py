"""Anthropic's Messages API, served to OpenAI-shaped callers by translation both ways.

The request is translated from the canonical OpenAI shape, the answer back; a stream is
translated event by event as it arrives, and a stream that ends without ``message_stop`` is an
interrupted stream, never a complete answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from interlace.core.errors import StreamInterrupted
from interlace.protocols.anthropic import (
    MessagesStreamToChatChunks,
    chat_request_to_messages,
    messages_response_to_chat,
)
from interlace.providers._base import HttpProvider
from interlace.providers.anthropic.errors import anthropic_error

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from interlace.config.schema import DeploymentConfig
    from interlace.core.operations import ChatRequest, Operation

__all__ = ["ANTHROPIC_VERSION", "AnthropicProvider"]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_BASE_URL = "https://api.anthropic.com"


class AnthropicProvider(HttpProvider):
    kind: ClassVar[str] = "anthropic"
    operations: ClassVar[frozenset[Operation]] = frozenset({"chat"})

    def __init__(self, *, name: str, deployment: DeploymentConfig) -> None:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if deployment.api_key is not None:
            headers["x-api-key"] = deployment.api_key.get_secret_value()
        base = (deployment.base_url or DEFAULT_BASE_URL).rstrip("/")
        super().__init__(
            name=name,
            deployment=deployment,
            base_url=base.removesuffix("/v1"),
            headers=headers,
            error_mapper=anthropic_error,
        )

    async def chat(self, request: ChatRequest) -> dict[str, Any]:
        body = chat_request_to_messages(request.body, upstream_model=self.upstream_model)
        body.pop("stream", None)
        answer = await self.client.request_json("POST", "/v1/messages", body, deadline=request.deadline)
        return messages_response_to_chat(answer, model=self.upstream_model)

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[dict[str, Any], None]:
        body = chat_request_to_messages(request.body, upstream_model=self.upstream_model)
        body["stream"] = True
        translator = MessagesStreamToChatChunks(model=self.upstream_model, include_usage=True)
        async with self.client.stream("/v1/messages", body, deadline=request.deadline) as stream:
            async for event in stream.events():
                try:
                    data = orjson.loads(event.data)
                except orjson.JSONDecodeError:
                    raise StreamInterrupted(
                        f"Deployment '{self.name}' sent a stream event that is not JSON: {event.data[:80]!r}"
                    ) from None
                kind = event.event or str(data.get("type", ""))
                for chunk in translator.feed(kind, data):
                    yield chunk
                if translator.finished:
                    return
        raise StreamInterrupted(f"Deployment '{self.name}' closed the stream before message_stop.")
