"""The deterministic *echo model* behind the chat and embedding fakes.

Shared by :mod:`~interlace.testing.openai_upstream` and :mod:`~interlace.testing.anthropic_upstream`
(honest fakes of the upstream boundary, see :mod:`interlace.testing.faults`), so the same request gets
the same answer in either protocol and a test can compute what the gateway should pass through:

- :func:`echo_text`: the reply is ``"echo: <text>"`` (or the JSON object ``{"echo": "<text>"}`` in JSON
  mode), whitespace normalised; the first stop sequence cuts it, then ``max_tokens`` keeps that many
  words (finish ``"length"``);
- :func:`tool_calls_in`: each ``call <name>`` naming an offered tool is a call, its arguments the JSON
  object written right after the name (``call get_weather {"city": "Paris"}``), else ``{}``;
- :func:`count_tokens`: a token is a whitespace-separated word;
- :func:`embedding_vector`: a unit vector derived from a hash of the input, exact in float32.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

__all__ = [
    "EchoText",
    "continue_echo",
    "count_tokens",
    "echo_text",
    "embedding_vector",
    "message_text",
    "tool_calls_in",
]

_CALL: Final = re.compile(r"\bcall\s+([A-Za-z0-9_-]+)")


def count_tokens(text: str) -> int:
    """Tokens as the fakes count them: whitespace-separated words."""
    return len(text.split())


def message_text(content: Any) -> str:
    """The text of a chat message's content: a string, or its text parts joined by spaces."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part["text"]) for part in content if isinstance(part, dict) and "text" in part)
    return ""


@dataclass(frozen=True, slots=True)
class EchoText:
    """The echo model's text reply."""

    words: tuple[str, ...]
    #: ``"stop"`` (natural end or a stop sequence) or ``"length"`` (cut by max_tokens).
    finish: Literal["stop", "length"]
    #: The stop sequence that ended the reply, if one did.
    stop_sequence: str | None
    #: The reply continues an assistant prefill: its first word follows the prefill after a space.
    continued: bool = False

    def pieces(self) -> list[str]:
        """The reply as streamed: a word per chunk, each after the first led by a space."""
        return [word if i == 0 and not self.continued else f" {word}" for i, word in enumerate(self.words)]

    @property
    def text(self) -> str:
        return " ".join(self.words)


def echo_text(
    text: str, *, stop: Sequence[str] = (), max_tokens: int | None = None, json_mode: bool = False
) -> EchoText:
    """What the echo model replies to ``text``."""
    normalised = " ".join(text.split())
    reply = orjson.dumps({"echo": normalised}).decode() if json_mode else f"echo: {normalised}".rstrip()
    hits = sorted((reply.find(seq), seq) for seq in stop if seq and seq in reply)
    matched = hits[0][1] if hits else None
    words = tuple((reply[: hits[0][0]] if hits else reply).split())
    if max_tokens is not None and len(words) > max_tokens:
        return EchoText(words[:max_tokens], "length", None)
    return EchoText(words, "stop", matched)


def continue_echo(echo: EchoText, prefill: str) -> EchoText:
    """The rest of ``echo`` after an assistant prefill that is a prefix of it (prefill continuation)."""
    done = prefill.split()
    if tuple(done) == echo.words[: len(done)]:
        return EchoText(echo.words[len(done) :], echo.finish, echo.stop_sequence, continued=True)
    return EchoText(echo.words, echo.finish, echo.stop_sequence, continued=True)


def tool_calls_in(text: str, offered: Collection[str]) -> list[tuple[str, dict[str, Any]]]:
    """``(name, arguments)`` for each ``call <name> [{json}]`` in ``text`` naming an offered tool."""
    decoder = json.JSONDecoder()
    calls: list[tuple[str, dict[str, Any]]] = []
    for found in _CALL.finditer(text):
        if found.group(1) not in offered:
            continue
        arguments: dict[str, Any] = {}
        rest = text[found.end() :].lstrip()
        if rest.startswith("{"):
            with contextlib.suppress(ValueError):
                value, _ = decoder.raw_decode(rest)
                arguments = value if isinstance(value, dict) else {}
        calls.append((found.group(1), arguments))
    return calls


def embedding_vector(item: str | list[int], dimensions: int) -> list[float]:
    """A deterministic unit vector for one input, exactly representable in float32."""
    seed = item.encode() if isinstance(item, str) else orjson.dumps(item)
    raw = struct.unpack(f"<{dimensions}I", hashlib.shake_256(seed).digest(4 * dimensions))
    vector = [value / 2**31 - 1.0 for value in raw]
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *(v / norm for v in vector))))
