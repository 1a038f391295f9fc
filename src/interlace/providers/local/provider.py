"""The ``local`` provider: embeddings and zero-shot classification on the in-process model.

The provider is a thin adapter from the canonical operations to the shared
:class:`~interlace.providers.local.encoder.SentenceEncoder`: it validates what the model can and
cannot take and shapes the result. The encoder is owned by the runtime (it is shared by every local
deployment), so :meth:`LocalProvider.start` and :meth:`LocalProvider.aclose` leave it alone.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

from interlace.core.errors import RequestError, ServiceUnavailable
from interlace.core.operations import EmbeddingResult
from interlace.core.provider import Provider
from interlace.providers.local.classifier import ZeroShotClassifier

if TYPE_CHECKING:
    from interlace.config.schema import DeploymentConfig
    from interlace.core.operations import ClassifyRequest, ClassifyResult, EmbeddingRequest, Operation
    from interlace.providers.local.encoder import SentenceEncoder

__all__ = ["MAX_EMBEDDING_INPUTS", "LocalProvider"]

#: The most texts one embeddings request may carry (the OpenAI API's limit).
MAX_EMBEDDING_INPUTS = 2048


class LocalProvider(Provider):
    """One deployment served by the in-process sentence encoder."""

    kind: ClassVar[str] = "local"
    operations: ClassVar[frozenset[Operation]] = frozenset({"embeddings", "classify"})

    def __init__(self, *, name: str, deployment: DeploymentConfig, encoder: SentenceEncoder) -> None:
        super().__init__(name=name)
        self.deployment = deployment
        self._encoder = encoder
        self._classifier = ZeroShotClassifier(encoder)

    @property
    def ready(self) -> bool:
        return self._encoder.ready

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Unit vectors for the texts; ``dimensions`` below the model's width truncates and re-normalizes.

        all-MiniLM-L6-v2 was not trained Matryoshka-style, so truncated vectors keep less of the
        meaning than the leading dimensions of a Matryoshka model would; they stay unit-norm and
        comparable with each other.
        """
        inputs = request.inputs
        if not inputs:
            raise RequestError("'input' must contain at least one text.", param="input")
        if len(inputs) > MAX_EMBEDDING_INPUTS:
            raise RequestError(
                f"'input' has {len(inputs)} items; at most {MAX_EMBEDDING_INPUTS} are allowed.", param="input"
            )
        texts = [text for text in inputs if isinstance(text, str)]
        if len(texts) != len(inputs):
            raise RequestError(
                f"The local model '{self.deployment.model}' takes text input, not token arrays.",
                param="input",
            )
        if not self._encoder.ready:
            raise ServiceUnavailable(
                f"The local model '{self.deployment.model}' is still loading; retry shortly."
            )
        width = self._encoder.dimensions
        dimensions = request.dimensions
        if dimensions is not None and not 1 <= dimensions <= width:
            raise RequestError(
                f"'dimensions' must be from 1 to {width} for '{self.deployment.model}'; got {dimensions}.",
                param="dimensions",
            )
        vectors, tokens = await self._encoder.encode(texts)
        if dimensions is not None and dimensions < width:
            vectors = [_truncate(vector, dimensions) for vector in vectors]
        return EmbeddingResult(vectors=vectors, prompt_tokens=tokens, model=self.deployment.model)

    async def classify(self, request: ClassifyRequest) -> ClassifyResult:
        """Zero-shot scores; the classifier validates ``labels`` and ``input``."""
        return await self._classifier.classify(request, model=self.deployment.model)


def _truncate(vector: list[float], dimensions: int) -> list[float]:
    head = vector[:dimensions]
    norm = math.hypot(*head)
    if norm == 0.0:
        return head
    return [value / norm for value in head]
