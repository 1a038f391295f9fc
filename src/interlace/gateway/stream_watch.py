"""What a streamed answer delivered, watched chunk by chunk for its request record.

:class:`StreamWatch` sits between the router's chunks and the protocol's event encoder and notes, with
a few dictionary reads per chunk: the time to the first chunk (the router commits a stream at its first
token and replays it at once, so this is the time to first token), an evenly spread sample of the
gaps between chunks (at most :data:`MAX_GAPS`), the usage of the final chunk, how many characters of
text were delivered (the estimate when no usage arrives), the logprobs of the content tokens, and how
the stream ended. It never changes a chunk.

Confidence is the mean token probability ``exp(logprob)`` over the content tokens of every choice;
:func:`answer_confidence` computes the same figure for a complete (non-streamed) answer.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from interlace.core.operations import ChatChunks

__all__ = ["MAX_GAPS", "StreamWatch", "answer_confidence"]

MAX_GAPS: Final = 64
"""The gap sample never holds more (it is halved and its stride doubled when it fills)."""


def answer_confidence(choices: Any) -> float | None:
    """Mean ``exp(logprob)`` over the content tokens of a chat completion's choices; None without logprobs."""
    if not choices:
        return None
    total, count = 0.0, 0
    for choice in choices:
        logprobs = choice.get("logprobs")
        if logprobs:
            add, n = _token_probabilities(logprobs)
            total += add
            count += n
    return total / count if count else None


def _token_probabilities(logprobs: dict[str, Any]) -> tuple[float, int]:
    total, count = 0.0, 0
    for token in logprobs.get("content") or ():
        value = token.get("logprob")
        if isinstance(value, int | float):
            total += math.exp(min(float(value), 0.0))
            count += 1
    return total, count


class StreamWatch:
    """Watches one stream; read its figures once the stream's response closed."""

    __slots__ = (
        "_capture",
        "_last",
        "_prob_count",
        "_prob_total",
        "_skip",
        "_started",
        "_stride",
        "chars",
        "completed",
        "error",
        "gaps",
        "text",
        "ttft",
        "usage",
    )

    def __init__(self, started: float, *, capture_text: bool = False) -> None:
        self._started = started
        """``time.perf_counter()`` when the request arrived."""
        self._capture = capture_text
        self._last = 0.0
        self._stride = 1
        self._skip = 0
        self._prob_total = 0.0
        self._prob_count = 0
        self.ttft: float | None = None
        self.gaps: list[float] = []
        self.usage: dict[str, Any] | None = None
        self.chars = 0
        self.text: list[str] = []
        """The delivered content, only when capturing text."""
        self.completed = False
        """The upstream's chunks ended normally."""
        self.error: Exception | None = None
        """What broke the stream (an error event was sent for an ``InterlaceError``)."""

    @property
    def confidence(self) -> float | None:
        return self._prob_total / self._prob_count if self._prob_count else None

    async def follow(self, chunks: ChatChunks) -> ChatChunks:
        """The same chunks, observed."""
        try:
            async for chunk in chunks:
                now = time.perf_counter()
                if self.ttft is None:
                    self.ttft = now - self._started
                else:
                    self._gap(now - self._last)
                self._last = now
                self._inspect(chunk)
                yield chunk
        except Exception as error:  # GeneratorExit and cancellation (the client left) pass untouched
            self.error = error
            raise
        else:
            self.completed = True
        finally:
            await chunks.aclose()

    def _gap(self, gap: float) -> None:
        """Keep every ``stride``-th gap; a full sample drops every other gap and doubles the stride."""
        if self._skip:
            self._skip -= 1
            return
        gaps = self.gaps
        gaps.append(gap)
        self._skip = self._stride - 1
        if len(gaps) >= MAX_GAPS:
            del gaps[1::2]
            self._stride *= 2

    def _inspect(self, chunk: dict[str, Any]) -> None:
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                if content:
                    self.chars += len(content)
                    if self._capture:
                        self.text.append(content)
            logprobs = choice.get("logprobs")
            if logprobs:
                total, count = _token_probabilities(logprobs)
                self._prob_total += total
                self._prob_count += count
