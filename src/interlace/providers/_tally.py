"""What a chat stream has carried so far: finished or not, usage or not, how much text."""

from __future__ import annotations

from typing import Any

from interlace.core.usage import estimate_tokens, usage_dict

__all__ = ["StreamTally"]


class StreamTally:
    __slots__ = ("characters", "finished", "last", "usage_seen")

    def __init__(self) -> None:
        self.finished = False
        self.usage_seen = False
        self.characters = 0
        self.last: dict[str, Any] = {}

    def add(self, chunk: dict[str, Any]) -> None:
        self.last = chunk
        if chunk.get("usage"):
            self.usage_seen = True
        for choice in chunk.get("choices") or ():
            if choice.get("finish_reason"):
                self.finished = True
            content = (choice.get("delta") or {}).get("content")
            if content:
                self.characters += len(content)

    def usage_chunk(self, body: dict[str, Any]) -> dict[str, Any]:
        """An estimated usage chunk for a stream whose upstream reported none."""
        prompt = sum(estimate_tokens(str(m.get("content") or "")) for m in body.get("messages", []))
        usage = usage_dict(prompt, -(-self.characters // 4))
        usage["estimated"] = True
        return {
            "id": self.last.get("id", "chatcmpl-interlace"),
            "object": "chat.completion.chunk",
            "created": self.last.get("created", 0),
            "model": self.last.get("model", ""),
            "choices": [],
            "usage": usage,
        }
