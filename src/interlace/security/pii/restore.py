"""Putting masked values back into a chat answer: a complete one, or a stream chunk by chunk.

A streamed placeholder may arrive split across chunks (``"<EMAIL_"`` then ``"ADDRESS_1>"``): the
restorer holds back a trailing piece that could still become one of the request's placeholders until
the next chunk completes it (or shows it is not one), and sends what it held before the choice's
finishing chunk, or at the end of the stream. Content deltas and tool-call arguments are restored
(arguments with JSON string escaping); nothing is held when no ``<`` ends a piece, so a stream costs
one ``rfind`` per delta. The Anthropic ``/v1/messages`` stream is translated from these chunks, after
restoration, so it is covered too.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interlace.core.operations import ChatChunks
    from interlace.security.pii.masker import Masker

__all__ = ["StreamRestorer", "restore_answer", "restore_stream"]

# a held-back piece: (choice index, None for content or the tool call's index)
_Key = tuple[int, int | None]


def restore_answer(masker: Masker, answer: dict[str, Any]) -> dict[str, Any]:
    """A complete chat completion with its placeholders restored (message content, tool arguments)."""
    for choice in answer.get("choices") or ():
        message = choice.get("message")
        if isinstance(message, dict):
            _restore_message(masker, message)
    return answer


def _restore_message(masker: Masker, message: dict[str, Any]) -> None:
    content = message.get("content")
    if isinstance(content, str):
        message["content"] = masker.restore(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                part["text"] = masker.restore(part["text"])
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            function["arguments"] = masker.restore(function["arguments"], json_string=True)


async def restore_stream(masker: Masker, chunks: ChatChunks) -> ChatChunks:
    """``chunks`` with placeholders restored, split ones included."""
    restorer = StreamRestorer(masker)
    last: dict[str, Any] | None = None
    try:
        async for chunk in chunks:
            last = chunk
            for out in restorer.feed(chunk):
                yield out
    finally:
        await chunks.aclose()
    if last is not None:
        for out in restorer.finish(last):
            yield out


class StreamRestorer:
    """Restores one stream's chunks; holds back pieces that may be the start of a placeholder."""

    __slots__ = ("_held", "_masker")

    def __init__(self, masker: Masker) -> None:
        self._masker = masker
        self._held: dict[_Key, str] = {}

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The chunks to send for ``chunk``: itself restored, preceded by flushes of finished choices."""
        choices = chunk.get("choices")
        if not choices:
            return [chunk]
        flushes: list[dict[str, Any]] = []
        for choice in choices:
            index = choice.get("index", 0)
            final = choice.get("finish_reason") is not None  # nothing more comes: hold nothing back
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._restore_delta(index, delta, final=final)
            if final:
                flushes += self._flush(chunk, index)
        return [*flushes, chunk]

    def finish(self, last: dict[str, Any]) -> list[dict[str, Any]]:
        """What is still held when the stream ends without finishing a choice."""
        out: list[dict[str, Any]] = []
        for index in sorted({index for index, _ in self._held}):
            out += self._flush(last, index)
        return out

    def _restore_delta(self, index: int, delta: dict[str, Any], *, final: bool) -> None:
        content = delta.get("content")
        if isinstance(content, str):
            delta["content"] = self._take((index, None), content, final=final)
        for call in delta.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                key = (index, int(call.get("index", 0)))
                function["arguments"] = self._take(key, function["arguments"], final=final)

    def _take(self, key: _Key, piece: str, *, final: bool) -> str:
        """The restorable part of what is held plus ``piece``; a possible placeholder start is kept."""
        text = self._held.pop(key, "") + piece
        cut = len(text) if final else self._masker.pending(text)
        if cut < len(text):
            self._held[key] = text[cut:]
        return self._masker.restore(text[:cut], json_string=key[1] is not None)

    def _flush(self, envelope: dict[str, Any], index: int) -> list[dict[str, Any]]:
        """A chunk carrying what is held for choice ``index`` (it was not a placeholder after all)."""
        content = self._held.pop((index, None), None)
        calls = [
            {"index": call, "function": {"arguments": self._held.pop((index, call))}}
            for _, call in sorted(k for k in self._held if k[0] == index and k[1] is not None)
        ]
        if content is None and not calls:
            return []
        delta: dict[str, Any] = {}
        if content is not None:
            delta["content"] = content
        if calls:
            delta["tool_calls"] = calls
        flush = {key: copy.copy(value) for key, value in envelope.items() if key not in {"choices", "usage"}}
        flush["choices"] = [{"index": index, "delta": delta, "finish_reason": None}]
        return [flush]
