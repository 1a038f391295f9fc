"""Reversible masking: values become placeholders (``<EMAIL_ADDRESS_1>``), and placeholders values again.

One :class:`Masker` serves one request. The same value gets the same placeholder wherever it occurs in
the request (every message, every text part), and each entity type is numbered from 1. A placeholder
that the request's text already contains literally is never handed out, so restoring turns exactly
the masked text back into the original one (``restore(mask(text)) == text`` for every text), and a
literal ``<EMAIL_ADDRESS_1>`` a user typed is left alone.

Restoring into a tool call's ``arguments`` (JSON text) escapes the value for a JSON string.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from interlace.security.pii.detector import Detection

__all__ = ["PLACEHOLDER", "Masker"]

PLACEHOLDER: Final = re.compile(r"<([A-Z][A-Z_]*)_([1-9][0-9]*)>")
"""What a placeholder looks like: ``<ENTITY_TYPE_N>``."""


class Masker:
    """A request's value ⇄ placeholder mapping."""

    __slots__ = ("_by_placeholder", "_by_value", "_counts", "_reserved")

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._by_value: dict[tuple[str, str], str] = {}
        self._by_placeholder: dict[str, str] = {}
        self._counts: Counter[str] = Counter()
        self._reserved = {found.group(0) for text in texts for found in PLACEHOLDER.finditer(text)}
        """Placeholders the request already contains literally: never handed out."""

    def __bool__(self) -> bool:
        return bool(self._by_placeholder)

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(self._by_placeholder)

    def entity_counts(self) -> Counter[str]:
        """How many distinct values of each entity type were masked."""
        return Counter(entity for entity, _ in self._by_value)

    def placeholder(self, entity: str, value: str) -> str:
        """The placeholder of ``value`` (the same one every time within this request)."""
        key = (entity, value)
        found = self._by_value.get(key)
        if found is not None:
            return found
        while True:
            self._counts[entity] += 1
            candidate = f"<{entity}_{self._counts[entity]}>"
            if candidate not in self._reserved:
                break
        self._by_value[key] = candidate
        self._by_placeholder[candidate] = value
        return candidate

    def mask(self, text: str, detections: Sequence[Detection]) -> str:
        """``text`` with each detection (non-overlapping, in text order) replaced by its placeholder."""
        if not detections:
            return text
        pieces: list[str] = []
        position = 0
        for detection in detections:
            pieces.append(text[position : detection.start])
            pieces.append(self.placeholder(detection.entity, text[detection.start : detection.end]))
            position = detection.end
        pieces.append(text[position:])
        return "".join(pieces)

    def restore(self, text: str, *, json_string: bool = False) -> str:
        """``text`` with every placeholder of this request replaced by its value.

        ``json_string``: the text is JSON (a tool call's arguments); values are escaped for a JSON string.
        """
        if not self._by_placeholder or "<" not in text:
            return text
        values = self._by_placeholder

        def value_of(found: re.Match[str]) -> str:
            value = values.get(found.group(0))
            if value is None:
                return found.group(0)
            return json.dumps(value, ensure_ascii=False)[1:-1] if json_string else value

        return PLACEHOLDER.sub(value_of, text)

    def pending(self, text: str) -> int:
        """Where a placeholder may begin at the end of ``text`` and be completed by what follows.

        The index of the trailing ``<…`` that is a proper prefix of one of this request's placeholders;
        ``len(text)`` when there is none (everything can be restored and sent now).
        """
        start = text.rfind("<")
        if start == -1:
            return len(text)
        tail = text[start:]
        if ">" in tail:
            return len(text)
        if any(p.startswith(tail) and p != tail for p in self._by_placeholder):
            return start
        return len(text)
