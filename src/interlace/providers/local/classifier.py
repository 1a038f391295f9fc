"""Zero-shot classification by embedding similarity, on the shared :class:`SentenceEncoder`.

Each label is turned into a hypothesis through a template (``"This text is about {label}."``) and
embedded; each input is embedded; the score of a label is derived from the cosine similarity of the
two unit vectors (their dot product):

* **single-label** (the default): a softmax over the labels of ``similarity / temperature``, so an
  input's scores sum to 1. all-MiniLM-L6-v2 similarities of a text to a fitting hypothesis are
  typically 0.25-0.55 and to an unrelated one -0.1-0.15, so a raw softmax would be almost uniform;
  the temperature of 0.05 turns a lead of 0.1 in similarity into ~7x the probability.
* **multi-label**: each label independently ``sigmoid((similarity - 0.2) / 0.05)``, a score in [0, 1].
  The midpoint 0.2 sits between the unrelated and the fitting range measured above, so a fitting label
  scores ~0.9 and above, an unrelated one ~0.1 and below.

These constants are heuristics calibrated for all-MiniLM-L6-v2; they are constructor arguments.
Label embeddings are kept in a bounded LRU cache owned by the instance, so a fixed label set is
embedded once. ``prompt_tokens`` counts the tokens of the inputs only (the hypotheses are cached, so
counting them would make the same request cost differently from one call to the next).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import TYPE_CHECKING

from interlace.core.errors import RequestError
from interlace.core.operations import ClassifyRequest, ClassifyResult, LabelScore

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from interlace.providers.local.encoder import SentenceEncoder

__all__ = [
    "DEFAULT_HYPOTHESIS_TEMPLATE",
    "DEFAULT_SIGMOID_MIDPOINT",
    "DEFAULT_SIGMOID_SCALE",
    "DEFAULT_TEMPERATURE",
    "MAX_LABELS",
    "ZeroShotClassifier",
]

DEFAULT_HYPOTHESIS_TEMPLATE = "This text is about {label}."
DEFAULT_TEMPERATURE = 0.05
DEFAULT_SIGMOID_MIDPOINT = 0.2
DEFAULT_SIGMOID_SCALE = 0.05
#: The most labels one request may name.
MAX_LABELS = 100


class ZeroShotClassifier:
    """Scores labels for texts by the similarity of the text to a hypothesis built from each label."""

    def __init__(
        self,
        encoder: SentenceEncoder,
        *,
        template: str = DEFAULT_HYPOTHESIS_TEMPLATE,
        temperature: float = DEFAULT_TEMPERATURE,
        sigmoid_midpoint: float = DEFAULT_SIGMOID_MIDPOINT,
        sigmoid_scale: float = DEFAULT_SIGMOID_SCALE,
        cache_size: int = 4096,
    ) -> None:
        try:
            probe = template.format(label="\0")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"the hypothesis template may only use the field '{{label}}': {exc}") from exc
        if "\0" not in probe:
            raise ValueError("the hypothesis template must contain '{label}'")
        if temperature <= 0 or sigmoid_scale <= 0 or cache_size < 1:
            raise ValueError("temperature, sigmoid_scale and cache_size must be positive")
        self._encoder = encoder
        self._template = template
        self._temperature = temperature
        self._midpoint = sigmoid_midpoint
        self._scale = sigmoid_scale
        self._cache_size = cache_size
        self._label_vectors: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()

    async def classify(self, request: ClassifyRequest, *, model: str | None = None) -> ClassifyResult:
        """Score every label for every input; per input the labels are ordered by score, highest first.

        ``model`` is the name reported in the result (default: ``request.model``).
        """
        _validate(request)
        labels = request.labels
        vectors = self._cached(labels)  # taken before awaiting: other requests may evict meanwhile
        missing = [label for label in labels if label not in vectors]
        if missing:
            (input_vectors, tokens), (fresh, _) = await asyncio.gather(
                self._encoder.encode(request.inputs),
                self._encoder.encode([self._template.format(label=label) for label in missing]),
            )
            vectors.update(self._remember(missing, fresh))
        else:
            input_vectors, tokens = await self._encoder.encode(request.inputs)
        scores = self._score(
            input_vectors, [vectors[label] for label in labels], multi_label=request.multi_label
        )
        ranked = [
            sorted(
                (LabelScore(label, float(score)) for label, score in zip(labels, row, strict=True)),
                key=lambda item: item.score,
                reverse=True,
            )
            for row in scores
        ]
        return ClassifyResult(scores=ranked, model=model or request.model, prompt_tokens=tokens)

    def _cached(self, labels: list[str]) -> dict[str, npt.NDArray[np.float32]]:
        """The cached vectors of ``labels``, marked as recently used."""
        found = {}
        for label in labels:
            vector = self._label_vectors.get(label)
            if vector is not None:
                self._label_vectors.move_to_end(label)
                found[label] = vector
        return found

    def _remember(self, labels: list[str], vectors: list[list[float]]) -> dict[str, npt.NDArray[np.float32]]:
        """Cache freshly embedded label vectors, evicting the least recently used beyond the bound."""
        import numpy as np  # noqa: PLC0415 - comes with the `local` extra; keeps this module's import light

        fresh = {
            label: np.asarray(vector, dtype=np.float32) for label, vector in zip(labels, vectors, strict=True)
        }
        for label, vector in fresh.items():
            self._label_vectors[label] = vector
            self._label_vectors.move_to_end(label)
        while len(self._label_vectors) > self._cache_size:
            self._label_vectors.popitem(last=False)
        return fresh

    def _score(
        self,
        input_vectors: list[list[float]],
        label_vectors: list[npt.NDArray[np.float32]],
        *,
        multi_label: bool,
    ) -> npt.NDArray[np.float64]:
        import numpy as np  # noqa: PLC0415 - see _remember

        similarity = (
            np.asarray(input_vectors, dtype=np.float64) @ np.stack(label_vectors).astype(np.float64).T
        )
        if multi_label:
            result: npt.NDArray[np.float64] = 1.0 / (
                1.0 + np.exp(-(similarity - self._midpoint) / self._scale)
            )
            return result
        logits = similarity / self._temperature
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        normalized: npt.NDArray[np.float64] = weights / weights.sum(axis=1, keepdims=True)
        return normalized


def _validate(request: ClassifyRequest) -> None:
    labels, inputs = request.labels, request.inputs
    if not labels:
        raise RequestError("'labels' must name at least one label.", param="labels")
    if len(labels) > MAX_LABELS:
        raise RequestError(
            f"'labels' names {len(labels)} labels; at most {MAX_LABELS} are allowed.", param="labels"
        )
    if not all(label.strip() for label in labels):
        raise RequestError("Every label must be a non-empty string.", param="labels")
    if len(set(labels)) != len(labels):
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        raise RequestError(f"Labels must be unique; repeated: {', '.join(duplicates)}.", param="labels")
    if not inputs:
        raise RequestError("'input' must contain at least one text.", param="input")
