"""Anthropic Messages event stream → OpenAI ``chat.completion.chunk`` dicts, event by event."""

from __future__ import annotations

import time
from typing import Any, Final

from interlace.core.errors import StreamInterrupted, UpstreamProtocolError
from interlace.protocols.anthropic._validation import (
    _as_int,
    _as_object,
    _as_string,
    _block_type,
    _body,
    _chat_id,
)
from interlace.protocols.anthropic.response_to_chat import _UPSTREAM, chat_usage, finish_reason

__all__ = ["MessagesStreamToChatChunks"]

JSON = dict[str, Any]


class MessagesStreamToChatChunks:
    """Translates one Anthropic Messages event stream into OpenAI ``chat.completion.chunk`` dicts.

    Feed every SSE event (its ``event:`` name and decoded ``data``) in order. The stream is complete
    only once :attr:`finished` is true (``message_stop`` seen); a stream that ends before is cut.
    """

    _USAGE_KEYS: Final = (
        "input_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "output_tokens",
        "output_tokens_details",
    )

    _AFTER_START: Final = frozenset(
        {"content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"}
    )

    def __init__(self, *, model: str, include_usage: bool = False, created: int | None = None) -> None:
        self._model = model
        self._include_usage = include_usage
        self._created = int(time.time()) if created is None else created
        self._id = ""
        self._finished = False
        #: Anthropic content block index → OpenAI ``tool_calls`` index.
        self._tool_index_by_block: dict[int, int] = {}
        self._usage: JSON = {}

    @property
    def finished(self) -> bool:
        """Whether ``message_stop`` arrived: the upstream completed the stream."""
        return self._finished

    def feed(self, event_type: str, data: JSON) -> list[JSON]:
        """The chunks (possibly none) one upstream event translates to."""
        data = _body(data, f"data of the upstream `{event_type}` event", _UPSTREAM)
        if not self._id and event_type in self._AFTER_START:
            raise UpstreamProtocolError(f"The upstream stream sent `{event_type}` before `message_start`.")
        match event_type:
            case "message_start":
                return self._message_start(data)
            case "content_block_start":
                return self._block_start(data)
            case "content_block_delta":
                return self._block_delta(data)
            case "message_delta":
                return self._message_delta(data)
            case "message_stop":
                return self._message_stop()
            case "error":
                raise _stream_error(data)
            case _:  # ping, content_block_stop, and event types Anthropic may add later
                return []

    def _chunk(self, delta: JSON, finish_reason: str | None = None) -> JSON:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    def _record_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self._usage.update({k: usage[k] for k in self._USAGE_KEYS if usage.get(k) is not None})

    def _message_start(self, data: JSON) -> list[JSON]:
        message = _as_object(data.get("message"), "message", _UPSTREAM)
        self._id = _chat_id(_as_string(message.get("id"), "message.id", _UPSTREAM))
        self._record_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, data: JSON) -> list[JSON]:
        index = _as_int(data.get("index"), "index", error=_UPSTREAM)
        block = _as_object(data.get("content_block"), "content_block", _UPSTREAM)
        block_type = _block_type(block, "content_block", _UPSTREAM)
        if block_type == "tool_use":
            tool_index = len(self._tool_index_by_block)
            self._tool_index_by_block[index] = tool_index
            call = {
                "index": tool_index,
                "id": _as_string(block.get("id"), "content_block.id", _UPSTREAM),
                "type": "function",
                "function": {
                    "name": _as_string(block.get("name"), "content_block.name", _UPSTREAM),
                    "arguments": "",
                },
            }
            return [self._chunk({"tool_calls": [call]})]
        initial = block.get(block_type) if block_type in ("text", "thinking") else None
        return self._text_chunks(block_type, initial)

    def _text_chunks(self, kind: str, text: Any) -> list[JSON]:
        if not isinstance(text, str) or not text:
            return []
        key = "content" if kind == "text" else "reasoning_content"
        return [self._chunk({key: text})]

    def _block_delta(self, data: JSON) -> list[JSON]:
        index = _as_int(data.get("index"), "index", error=_UPSTREAM)
        delta = _as_object(data.get("delta"), "delta", _UPSTREAM)
        delta_type = _block_type(delta, "delta", _UPSTREAM)
        if delta_type == "text_delta":
            return self._text_chunks("text", delta.get("text"))
        if delta_type == "thinking_delta":
            return self._text_chunks("thinking", delta.get("thinking"))
        if delta_type != "input_json_delta":
            return []  # signature_delta, citations_delta
        tool_index = self._tool_index_by_block.get(index)
        if tool_index is None:
            raise UpstreamProtocolError(
                f"The upstream sent input_json_delta for block {index}, not a tool_use."
            )
        partial = _as_string(delta.get("partial_json"), "delta.partial_json", _UPSTREAM)
        if not partial:
            return []
        return [self._chunk({"tool_calls": [{"index": tool_index, "function": {"arguments": partial}}]})]

    def _message_delta(self, data: JSON) -> list[JSON]:
        self._record_usage(data.get("usage"))
        delta = _as_object(data.get("delta"), "delta", _UPSTREAM)
        stop_reason = delta.get("stop_reason")
        if stop_reason is None:
            return []
        chunk = self._chunk({}, finish_reason(stop_reason))
        stop_sequence = delta.get("stop_sequence")
        if isinstance(stop_sequence, str):
            chunk["choices"][0]["stop_reason"] = stop_sequence
        return [chunk]

    def _message_stop(self) -> list[JSON]:
        self._finished = True
        if not self._include_usage:
            return []
        usage_chunk = self._chunk({})
        usage_chunk["choices"] = []
        usage_chunk["usage"] = chat_usage(self._usage)
        return [usage_chunk]


def _stream_error(data: JSON) -> StreamInterrupted:
    error = data.get("error")
    error = error if isinstance(error, dict) else {}
    message = error.get("message") or "no message"
    return StreamInterrupted(f"The Anthropic stream failed ({error.get('type') or 'error'}): {message}")
