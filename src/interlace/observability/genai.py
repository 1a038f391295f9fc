"""GenAI semantic conventions for upstream attempts: attribute names, and what an answer reports.

Names follow the OpenTelemetry GenAI semantic conventions (``gen_ai.*``, development status), plus
``interlace.*`` for what only the gateway knows (deployment, attempt number, fallback, traffic rule).
They are spelled out here rather than imported from the incubating semconv package, whose GenAI
constants are deprecated in favour of a separate repository and may move again.

Chat answers and stream chunks are OpenAI-shaped whatever the upstream (see
:mod:`interlace.core.operations`), so one reading serves every provider.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from interlace.core.operations import ClassifyResult, EmbeddingResult

if TYPE_CHECKING:
    from collections.abc import Mapping

    from opentelemetry.util.types import AttributeValue

__all__ = [
    "ATTEMPT",
    "ATTEMPTS",
    "CACHE_READ_INPUT_TOKENS",
    "DEPLOYMENT",
    "EMBEDDING_DIMENSIONS",
    "ERROR_TYPE",
    "FALLBACK",
    "FINISH_REASONS",
    "INPUT_TOKENS",
    "MODEL_ALIAS",
    "OPERATION",
    "OUTPUT_TOKENS",
    "PROVIDER",
    "REASONING_OUTPUT_TOKENS",
    "RECOVERED",
    "REQUESTED_MODEL",
    "REQUEST_MODEL",
    "REQUEST_STREAM",
    "REQUIRED_TAGS",
    "RESPONSE_ID",
    "RESPONSE_MODEL",
    "RULE",
    "SERVER_ADDRESS",
    "SERVER_PORT",
    "SYSTEM",
    "TIME_TO_FIRST_CHUNK",
    "StreamFacts",
    "answer_attributes",
    "operation_name",
    "provider_name",
]

# GenAI client-span attributes
OPERATION: Final = "gen_ai.operation.name"
PROVIDER: Final = "gen_ai.provider.name"
SYSTEM: Final = "gen_ai.system"
"""Superseded by ``gen_ai.provider.name`` (semconv 1.37); still set, as many backends read only it."""
REQUEST_MODEL: Final = "gen_ai.request.model"
REQUEST_STREAM: Final = "gen_ai.request.stream"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_ID: Final = "gen_ai.response.id"
FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
EMBEDDING_DIMENSIONS: Final = "gen_ai.embeddings.dimension.count"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"

# What only the gateway knows
DEPLOYMENT: Final = "interlace.deployment"
ATTEMPT: Final = "interlace.attempt"
"""1-based number of the attempt within the request, across retries, fail-overs and fallbacks."""
FALLBACK: Final = "interlace.fallback"
MODEL_ALIAS: Final = "interlace.model_alias"
REQUESTED_MODEL: Final = "interlace.requested_model"
RULE: Final = "interlace.rule"
ATTEMPTS: Final = "interlace.attempts"
RECOVERED: Final = "interlace.recovered"
REQUIRED_TAGS: Final = "interlace.required_tags"

# The router's operations, named as gen_ai.operation.name; classify and infer have no well-known value.
_OPERATIONS: Final[Mapping[str, str]] = MappingProxyType(
    {"chat": "chat", "embeddings": "embeddings", "classify": "classify", "infer": "infer"}
)


def operation_name(operation: str | None) -> str:
    return _OPERATIONS.get(operation or "", operation or "unknown")


def provider_name(kind: str, api_style: str) -> str:
    """``gen_ai.provider.name``: the well-known value where there is one, else the provider kind."""
    return "azure.ai.openai" if kind == "openai" and api_style == "azure" else kind


def answer_attributes(answer: object) -> dict[str, AttributeValue]:
    """What a finished (non-streamed) answer reports: response model and id, finish reasons, usage."""
    if isinstance(answer, dict):
        attributes = _identity(answer)
        reasons = [str(c["finish_reason"]) for c in answer.get("choices") or () if c.get("finish_reason")]
        if reasons:
            attributes[FINISH_REASONS] = reasons
        _usage(answer.get("usage"), attributes)
        if RESPONSE_MODEL not in attributes and isinstance(answer.get("model_name"), str):
            attributes[RESPONSE_MODEL] = answer["model_name"]  # Open Inference Protocol v2
        return attributes
    if isinstance(answer, EmbeddingResult):
        attributes = {INPUT_TOKENS: answer.prompt_tokens}
        if answer.model:
            attributes[RESPONSE_MODEL] = answer.model
        if answer.vectors:
            attributes[EMBEDDING_DIMENSIONS] = len(answer.vectors[0])
        return attributes
    if isinstance(answer, ClassifyResult):
        attributes = {INPUT_TOKENS: answer.prompt_tokens}
        if answer.model:
            attributes[RESPONSE_MODEL] = answer.model
        return attributes
    return {}


class StreamFacts:
    """What a chat stream reported by its end: model, id, finish reasons and the final usage chunk."""

    __slots__ = ("finished", "identity", "reasons", "usage")

    def __init__(self) -> None:
        self.identity: dict[str, AttributeValue] | None = None
        self.reasons: list[str] = []
        self.usage: dict[str, Any] | None = None
        self.finished = False

    def add(self, chunk: dict[str, Any]) -> None:
        if self.identity is None:
            self.identity = _identity(chunk) or None
        for choice in chunk.get("choices") or ():
            reason = choice.get("finish_reason")
            if reason:
                self.reasons.append(str(reason))
                self.finished = True
        usage = chunk.get("usage")
        if usage:
            self.usage = usage

    def attributes(self) -> dict[str, AttributeValue]:
        attributes = dict(self.identity or {})
        if self.reasons:
            attributes[FINISH_REASONS] = self.reasons
        _usage(self.usage, attributes)
        return attributes


def _identity(answer: Mapping[str, Any]) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {}
    model, answer_id = answer.get("model"), answer.get("id")
    if isinstance(model, str) and model:
        attributes[RESPONSE_MODEL] = model
    if isinstance(answer_id, str) and answer_id:
        attributes[RESPONSE_ID] = answer_id
    return attributes


def _usage(usage: object, attributes: dict[str, AttributeValue]) -> None:
    """OpenAI usage as GenAI usage attributes; counts the upstream did not report are left out."""
    if not isinstance(usage, dict):
        return
    for key, name in (("prompt_tokens", INPUT_TOKENS), ("completion_tokens", OUTPUT_TOKENS)):
        value = usage.get(key)
        if isinstance(value, int):
            attributes[name] = value
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if isinstance(cached, int) and cached:
        attributes[CACHE_READ_INPUT_TOKENS] = cached
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if isinstance(reasoning, int) and reasoning:
        attributes[REASONING_OUTPUT_TOKENS] = reasoning
