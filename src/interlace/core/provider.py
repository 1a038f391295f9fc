"""The provider port: what the router calls to reach one deployment of a model.

A provider adapter is implemented many times with shared behaviour, so it is an ABC: every
operation a provider does not serve raises :class:`UnsupportedOperation` with a message that names
the model and the operation. One instance serves one deployment; it owns its connection pool and
is started and closed by the runtime.
"""

from __future__ import annotations

from abc import ABC
from typing import TYPE_CHECKING, Any, ClassVar

from interlace.core.errors import UnsupportedOperation

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from interlace.core.operations import (
        ChatRequest,
        ClassifyRequest,
        ClassifyResult,
        EmbeddingRequest,
        EmbeddingResult,
        InferRequest,
        Operation,
    )

__all__ = ["Provider"]


class Provider(ABC):
    """One deployment of a model behind one upstream (or in-process)."""

    #: Registry name used in ``provider:`` of a deployment.
    kind: ClassVar[str]
    #: The operations this provider can serve.
    operations: ClassVar[frozenset[Operation]]

    def __init__(self, *, name: str) -> None:
        self.name = name

    async def start(self) -> None:
        """Open pools, load models. Called once by the runtime before serving."""

    async def aclose(self) -> None:
        """Release everything :meth:`start` acquired."""

    @property
    def ready(self) -> bool:
        """Whether the provider can serve now (a local model may still be loading)."""
        return True

    async def chat(self, request: ChatRequest) -> dict[str, Any]:
        raise self._unsupported("chat completions")

    def stream_chat(self, request: ChatRequest) -> AsyncGenerator[dict[str, Any], None]:
        """OpenAI-shaped chunks as they arrive. Ending without error means the stream completed."""
        raise self._unsupported("chat completions")

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        raise self._unsupported("embeddings")

    async def classify(self, request: ClassifyRequest) -> ClassifyResult:
        raise self._unsupported("classification")

    async def infer(self, request: InferRequest) -> dict[str, Any]:
        raise self._unsupported("Open Inference Protocol inference")

    async def model_metadata(self, request: InferRequest) -> dict[str, Any]:
        raise self._unsupported("Open Inference Protocol metadata")

    def _unsupported(self, what: str) -> UnsupportedOperation:
        return UnsupportedOperation(
            f"Deployment '{self.name}' (provider '{self.kind}') does not serve {what}.",
            param="model",
        )
