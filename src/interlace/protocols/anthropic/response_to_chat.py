"""Anthropic's answers → OpenAI: a Message becomes a ``chat.completion``.

The stop reason and usage mappings here are shared with the stream translator
(:mod:`.stream_to_chat`). A malformed upstream answer raises :class:`UpstreamProtocolError` (502).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from interlace.core.errors import UpstreamProtocolError
from interlace.protocols.anthropic._validation import (
    _as_array,
    _as_object,
    _as_string,
    _block_type,
    _body,
    _chat_id,
    _count,
    _encode_arguments,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["FINISH_REASON_BY_STOP_REASON", "chat_usage", "finish_reason", "messages_response_to_chat"]

JSON = dict[str, Any]

#: Anthropic ``stop_reason`` → OpenAI ``finish_reason``. Anything else (or null) maps to ``"stop"``.
FINISH_REASON_BY_STOP_REASON: Final[Mapping[str, str]] = MappingProxyType(
    {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "pause_turn": "stop",
        "max_tokens": "length",
        "model_context_window_exceeded": "length",
        "tool_use": "tool_calls",
        "refusal": "content_filter",
    }
)


_UPSTREAM: Final = UpstreamProtocolError


def messages_response_to_chat(resp: JSON, *, model: str, created: int | None = None) -> JSON:
    """The OpenAI ``chat.completion`` for an Anthropic Message. ``model`` is the name to report."""
    resp = _body(resp, "upstream Anthropic response", _UPSTREAM)
    blocks = _as_array(resp.get("content"), "content", _UPSTREAM)
    collected = _Collected()
    for i, raw in enumerate(blocks):
        collected.add(_as_object(raw, f"content[{i}]", _UPSTREAM), f"content[{i}]")
    message: JSON = {"role": "assistant", "content": collected.content(), "refusal": None}
    if collected.reasoning:
        message["reasoning_content"] = "".join(collected.reasoning)
    if collected.tool_calls:
        message["tool_calls"] = collected.tool_calls
    choice: JSON = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": finish_reason(resp.get("stop_reason")),
    }
    stop_sequence = resp.get("stop_sequence")
    if isinstance(stop_sequence, str):
        choice["stop_reason"] = stop_sequence
    usage = resp.get("usage")
    return {
        "id": _chat_id(_as_string(resp.get("id"), "id", _UPSTREAM)),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [choice],
        "usage": chat_usage(usage if isinstance(usage, dict) else {}),
    }


@dataclass(slots=True)
class _Collected:
    texts: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: list[JSON] = field(default_factory=list)

    def add(self, block: JSON, where: str) -> None:
        block_type = _block_type(block, where, _UPSTREAM)
        if block_type == "text":
            self.texts.append(_as_string(block.get("text"), f"{where}.text", _UPSTREAM))
        elif block_type == "thinking":
            self.reasoning.append(_as_string(block.get("thinking"), f"{where}.thinking", _UPSTREAM))
        elif block_type == "tool_use":
            self.tool_calls.append(_tool_call(block, where))
        # redacted_thinking and server-tool blocks have no OpenAI counterpart.

    def content(self) -> str | None:
        if not self.texts and self.tool_calls:
            return None
        return "".join(self.texts)


def _tool_call(block: JSON, where: str) -> JSON:
    tool_input = block.get("input")
    return {
        "id": _as_string(block.get("id"), f"{where}.id", _UPSTREAM),
        "type": "function",
        "function": {
            "name": _as_string(block.get("name"), f"{where}.name", _UPSTREAM),
            "arguments": _encode_arguments({} if tool_input is None else tool_input),
        },
    }


def finish_reason(stop_reason: Any) -> str:
    """OpenAI's ``finish_reason`` for an Anthropic ``stop_reason`` (``stop`` for anything unknown)."""
    return FINISH_REASON_BY_STOP_REASON.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def chat_usage(usage: Mapping[str, Any]) -> JSON:
    """OpenAI's ``usage`` for Anthropic's (cache reads and writes counted as prompt tokens)."""
    cache_read = _count(usage, "cache_read_input_tokens")
    cache_write = _count(usage, "cache_creation_input_tokens")
    prompt = _count(usage, "input_tokens") + cache_read + cache_write
    completion = _count(usage, "output_tokens")
    out: JSON = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read, "cache_write_tokens": cache_write},
    }
    details = usage.get("output_tokens_details")
    if isinstance(details, dict) and "thinking_tokens" in details:
        out["completion_tokens_details"] = {"reasoning_tokens": _count(details, "thinking_tokens")}
    return out
