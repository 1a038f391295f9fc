"""How alike two answers are: exact agreement after whitespace normalisation, and token overlap.

Both are cheap and model-free, so a shadow comparison costs no extra call: ``same_text`` says whether
two answers are identical but for spacing, ``token_overlap`` is the Jaccard similarity of their
lower-cased word sets (1.0 for two empty answers, 0.0 when they share no word).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["chat_answer_text", "normalise_text", "same_text", "token_overlap"]

_WORD = re.compile(r"\w+")


def normalise_text(text: str) -> str:
    """``text`` with every run of whitespace made one space, and none at either end."""
    return " ".join(text.split())


def same_text(a: str, b: str) -> bool:
    return normalise_text(a) == normalise_text(b)


def token_overlap(a: str, b: str) -> float:
    """Jaccard similarity of the lower-cased word sets of ``a`` and ``b``, in [0, 1]."""
    left = set(_WORD.findall(a.lower()))
    right = set(_WORD.findall(b.lower()))
    if not left and not right:
        return 1.0
    return len(left & right) / len(left | right)


def chat_answer_text(answer: dict[str, Any]) -> tuple[str, str | None]:
    """The first choice's text and finish reason of an OpenAI-shaped chat completion."""
    choices = answer.get("choices") or ()
    if not choices or not isinstance(choices[0], dict):
        return "", None
    choice = choices[0]
    content = (choice.get("message") or {}).get("content")
    finish = choice.get("finish_reason")
    return (content if isinstance(content, str) else ""), (finish if isinstance(finish, str) else None)
