"""Token usage: what a provider reported, or an honest estimate when it reported nothing."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["estimate_tokens", "usage_dict"]


def estimate_tokens(text: str) -> int:
    """About four characters per token, the usual rule for English with BPE tokenizers."""
    return math.ceil(len(text) / 4) if text else 0


def usage_dict(prompt_tokens: int, completion_tokens: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
