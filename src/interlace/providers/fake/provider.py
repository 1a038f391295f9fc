"""A deterministic in-process provider for tests and failure drills. Never a default for chat.

It answers ``echo: <last user text>`` and serves deterministic embeddings, with configurable
latency and faults set in the deployment's ``options``::

    - provider: fake
      model: echo
      options:
        latency_ms: 20          # before the answer (or the first chunk)
        chunk_interval_ms: 5    # between stream chunks
        fault: rate_limit       # none | rate_limit | server_error | timeout | cut_stream | not_ready
        fault_every: 2          # fault on every 2nd call (1 = always); counted per deployment
        fault_first: 3          # or: fault on the first 3 calls only (a model that is still loading)
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import time
from typing import TYPE_CHECKING, Any, ClassVar

from interlace.core.errors import (
    ConfigError,
    ServiceUnavailable,
    StreamInterrupted,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from interlace.core.operations import EmbeddingResult
from interlace.core.provider import Provider

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from interlace.config.schema import DeploymentConfig
    from interlace.core.operations import ChatRequest, EmbeddingRequest, Operation

__all__ = ["FakeProvider"]

FAULTS = frozenset({"none", "rate_limit", "server_error", "timeout", "cut_stream", "not_ready"})


class FakeProvider(Provider):
    kind: ClassVar[str] = "fake"
    operations: ClassVar[frozenset[Operation]] = frozenset({"chat", "embeddings"})

    def __init__(self, *, name: str, deployment: DeploymentConfig) -> None:
        super().__init__(name=name)
        options = deployment.options
        self.upstream_model = deployment.model
        self.latency = float(options.get("latency_ms", 0)) / 1000
        self.chunk_interval = float(options.get("chunk_interval_ms", 0)) / 1000
        self.fault = str(options.get("fault", "none"))
        self.fault_every = int(options.get("fault_every", 1))
        self.fault_first = int(options["fault_first"]) if "fault_first" in options else None
        if self.fault not in FAULTS:
            raise ConfigError(
                f"deployment '{name}': fake fault '{self.fault}' is unknown — use one of {sorted(FAULTS)}"
            )
        self._calls = itertools.count(1)

    async def _maybe_fail(self, *, streaming: bool) -> bool:
        """Raise the configured fault for this call; returns True when a stream should be cut."""
        await asyncio.sleep(self.latency)
        call = next(self._calls)
        if self.fault == "none" or call % self.fault_every:
            return False
        if self.fault_first is not None and call > self.fault_first:
            return False
        if self.fault == "rate_limit":
            raise UpstreamRateLimited(f"Deployment '{self.name}' (fake) is rate limited.", retry_after=1)
        if self.fault == "server_error":
            raise UpstreamError(f"Deployment '{self.name}' (fake) failed with 500.")
        if self.fault == "timeout":
            raise UpstreamTimeout(f"Deployment '{self.name}' (fake) timed out.")
        if self.fault == "not_ready":
            raise ServiceUnavailable(f"Deployment '{self.name}' (fake) is still loading; retry shortly.")
        return streaming

    async def chat(self, request: ChatRequest) -> dict[str, Any]:
        await self._maybe_fail(streaming=False)
        text = _reply(request.body)
        prompt, completion = _count(request.body), len(text.split())
        return {
            "id": f"chatcmpl-fake-{_digest(text)[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.upstream_model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": _usage(prompt, completion),
        }

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[dict[str, Any], None]:
        cut = await self._maybe_fail(streaming=True)
        text = _reply(request.body)
        ident = f"chatcmpl-fake-{_digest(text)[:12]}"
        base = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.upstream_model,
        }
        words = text.split(" ")
        yield {
            **base,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        }
        for position, word in enumerate(words):
            if cut and position == len(words) // 2:
                raise StreamInterrupted(f"Deployment '{self.name}' (fake) cut the stream.")
            await asyncio.sleep(self.chunk_interval)
            piece = word if position == 0 else f" {word}"
            yield {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield {**base, "choices": [], "usage": _usage(_count(request.body), len(words))}

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        await self._maybe_fail(streaming=False)
        size = request.dimensions or 8
        vectors = [_vector(str(item), size) for item in request.inputs]
        tokens = sum(len(str(item).split()) for item in request.inputs)
        return EmbeddingResult(vectors=vectors, prompt_tokens=tokens, model=self.upstream_model)


def _reply(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return f"echo: {content}"
    return "echo:"


def _count(body: dict[str, Any]) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _vector(text: str, size: int) -> list[float]:
    seed = hashlib.sha256(text.encode()).digest()
    raw = [((seed[i % len(seed)] + i * 31) % 255) / 127.0 - 1.0 for i in range(size)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [v / norm for v in raw]
