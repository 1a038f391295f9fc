"""Canonical operations: what every inbound adapter decodes to and every provider serves.

Chat is canonical in the OpenAI Chat Completions shape (the lingua franca every client and most
upstreams speak): ``ChatRequest.body`` is the validated request body as a plain dict, so fields we do
not model are carried through untouched. Responses and stream chunks are OpenAI-shaped dicts too;
adapters for other protocols (Anthropic Messages) translate at their edge.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = [
    "ChatChunks",
    "ChatRequest",
    "ClassifyRequest",
    "ClassifyResult",
    "EmbeddingRequest",
    "EmbeddingResult",
    "InferRequest",
    "LabelScore",
    "ModelRequest",
    "Operation",
]

Operation = Literal["chat", "embeddings", "classify", "infer"]

JSON = dict[str, Any]

#: A chat completion stream: OpenAI-shaped chunks as they arrive.
ChatChunks: TypeAlias = AsyncGenerator[dict[str, Any], None]


@dataclass(slots=True, kw_only=True)
class ChatRequest:
    """A chat completion, OpenAI-shaped. ``body["model"]`` is the alias the client asked for."""

    model: str
    body: JSON
    stream: bool = False
    include_usage: bool = False
    deadline: float | None = None
    """Absolute ``time.monotonic()`` by which the whole request must be done (None: no bound)."""


@dataclass(slots=True, kw_only=True)
class EmbeddingRequest:
    model: str
    inputs: list[str] | list[list[int]]
    dimensions: int | None = None
    user: str | None = None
    deadline: float | None = None


@dataclass(slots=True, kw_only=True)
class EmbeddingResult:
    vectors: list[list[float]]
    prompt_tokens: int
    model: str


@dataclass(slots=True, kw_only=True)
class ClassifyRequest:
    model: str
    inputs: list[str]
    labels: list[str]
    multi_label: bool = False
    deadline: float | None = None


@dataclass(slots=True, frozen=True)
class LabelScore:
    label: str
    score: float


@dataclass(slots=True, kw_only=True)
class ClassifyResult:
    """Per input, the labels ordered by score (highest first)."""

    scores: list[list[LabelScore]]
    model: str
    prompt_tokens: int = 0


@dataclass(slots=True, kw_only=True)
class InferRequest:
    """An Open Inference Protocol v2 inference request, passed through as its JSON body."""

    model: str
    body: JSON
    version: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    deadline: float | None = None


ModelRequest: TypeAlias = ChatRequest | EmbeddingRequest | ClassifyRequest | InferRequest
"""Any request the router serves (what the admission policies see)."""
