"""Any OpenAI-compatible upstream: OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp server, TGI.

Requests are already OpenAI-shaped, so the body passes through with the upstream model name put in;
only Azure differs, by path (``/openai/deployments/{model}/…``), ``?api-version=`` and its
``api-key`` header.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from interlace.core.errors import StreamInterrupted, UpstreamProtocolError
from interlace.core.operations import EmbeddingResult
from interlace.providers._base import HttpProvider
from interlace.providers._http import upstream_message
from interlace.providers._tally import StreamTally
from interlace.providers.openai.errors import openai_error

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from interlace.config.schema import DeploymentConfig
    from interlace.core.operations import ChatRequest, EmbeddingRequest, Operation

__all__ = ["OpenAIProvider"]

log = logging.getLogger("interlace.providers.openai")

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIProvider(HttpProvider):
    kind: ClassVar[str] = "openai"
    operations: ClassVar[frozenset[Operation]] = frozenset({"chat", "embeddings"})

    def __init__(self, *, name: str, deployment: DeploymentConfig) -> None:
        self._azure = deployment.api_style == "azure"
        # an OpenAI-compatible server declared able to continue an answer is vLLM-style: it needs
        # to be told to extend the final assistant message instead of starting a new turn
        self._continues = bool(deployment.supports_prefill)
        headers = {}
        key = deployment.api_key.get_secret_value() if deployment.api_key else None
        if key and self._azure:
            headers["api-key"] = key
        elif key:
            headers["authorization"] = f"Bearer {key}"
        if self._azure:
            self._params: dict[str, str] | None = {"api-version": deployment.api_version or ""}
            self._prefix = f"/openai/deployments/{deployment.model}"
        else:
            self._params = None
            self._prefix = ""
        super().__init__(
            name=name,
            deployment=deployment,
            base_url=deployment.base_url or DEFAULT_BASE_URL,
            headers=headers,
            error_mapper=openai_error,
        )

    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body = dict(request.body)
        body["model"] = self.upstream_model
        if stream:
            body["stream"] = True
            # always ask for usage: the gateway accounts for every stream and strips the
            # usage chunk again when the client did not ask for it
            options = dict(body.get("stream_options") or {})
            options["include_usage"] = True
            body["stream_options"] = options
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)
        if self._continues and _ends_with_assistant(body):
            body.setdefault("continue_final_message", True)
            body.setdefault("add_generation_prompt", False)
        return body

    async def chat(self, request: ChatRequest) -> dict[str, Any]:
        answer = await self.client.request_json(
            "POST",
            f"{self._prefix}/chat/completions",
            self._body(request, stream=False),
            params=self._params,
            deadline=request.deadline,
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
            raise UpstreamProtocolError(
                f"Deployment '{self.name}' answered without a 'choices' list: {str(answer)[:200]}"
            )
        return answer

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[dict[str, Any], None]:
        body = self._body(request, stream=True)
        tally = StreamTally()
        async with self.client.stream(
            f"{self._prefix}/chat/completions", body, params=self._params, deadline=request.deadline
        ) as stream:
            async for event in stream.events():
                if event.data == b"[DONE]":
                    return
                chunk = self._decode(event.data)
                if chunk is None:
                    continue
                if "error" in chunk:
                    raise StreamInterrupted(
                        f"Deployment '{self.name}' reported an error mid-stream: "
                        f"{upstream_message(event.data)}"
                    )
                tally.add(chunk)
                yield chunk
        if not tally.finished:
            raise StreamInterrupted(f"Deployment '{self.name}' closed the stream before [DONE].")
        # the answer was complete (a finish_reason arrived), only the terminator is missing
        log.warning("deployment %s ended a finished stream without [DONE]; finalising it", self.name)
        if not tally.usage_seen:
            yield tally.usage_chunk(request.body)

    def _decode(self, data: bytes) -> dict[str, Any] | None:
        """The chunk, or None for one that is not a JSON object (skipped and logged, the stream goes on)."""
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            chunk = None
        if not isinstance(chunk, dict):
            log.warning("deployment %s sent a malformed stream chunk, skipped: %r", self.name, data[:120])
            return None
        return chunk

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        body: dict[str, Any] = {
            "model": self.upstream_model,
            "input": request.inputs,
            "encoding_format": "float",
        }
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        if request.user is not None:
            body["user"] = request.user
        answer = await self.client.request_json(
            "POST", f"{self._prefix}/embeddings", body, params=self._params, deadline=request.deadline
        )
        try:
            rows = sorted(answer["data"], key=lambda row: row["index"])
            vectors = [list(map(float, row["embedding"])) for row in rows]
            prompt_tokens = int((answer.get("usage") or {}).get("prompt_tokens", 0))
        except (KeyError, TypeError, ValueError):
            raise UpstreamProtocolError(
                f"Deployment '{self.name}' answered embeddings in an unexpected shape: {str(answer)[:200]}"
            ) from None
        return EmbeddingResult(
            vectors=vectors, prompt_tokens=prompt_tokens, model=str(answer.get("model", ""))
        )


def _ends_with_assistant(body: dict[str, Any]) -> bool:
    """A prefill: the conversation ends with the start of the assistant's answer, to be continued."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return False
    last = messages[-1]
    return isinstance(last, dict) and last.get("role") == "assistant"
