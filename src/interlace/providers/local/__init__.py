"""The ``local`` provider: in-process embeddings and zero-shot classification on all-MiniLM-L6-v2.

Importing this package is cheap: torch and sentence-transformers load only when an encoder starts.
"""

from __future__ import annotations

from interlace.providers.local.classifier import MAX_LABELS, ZeroShotClassifier
from interlace.providers.local.encoder import SentenceEncoder
from interlace.providers.local.model import ACCEPTED_MODEL_NAMES, CANONICAL_MODEL_NAME, build_encoder
from interlace.providers.local.provider import MAX_EMBEDDING_INPUTS, LocalProvider

__all__ = [
    "ACCEPTED_MODEL_NAMES",
    "CANONICAL_MODEL_NAME",
    "MAX_EMBEDDING_INPUTS",
    "MAX_LABELS",
    "LocalProvider",
    "SentenceEncoder",
    "ZeroShotClassifier",
    "build_encoder",
]
