"""Canonical (OpenAI) chat chunks → Anthropic's streaming event sequence, chunk by chunk."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from interlace.core.errors import UpstreamProtocolError
from interlace.protocols.anthropic._validation import (
    _as_array,
    _as_int,
    _as_object,
    _as_string,
    _body,
)
from interlace.protocols.anthropic.from_anthropic import (
    _UPSTREAM,
    _message_id,
    _messages_usage,
    _stop,
)

__all__ = ["ChatChunksToMessagesStream", "StreamEvent"]

JSON = dict[str, Any]
#: One Anthropic server-sent event: its ``event:`` name and its ``data`` object.
StreamEvent = tuple[str, JSON]


class ChatChunksToMessagesStream:
    """Translates a canonical chunk stream into Anthropic's streaming event sequence.

    ``message_start``, then per content block ``content_block_start`` / ``content_block_delta`` … /
    ``content_block_stop``, then ``message_delta`` and ``message_stop`` (those two from :meth:`finish`,
    which the caller invokes once the canonical stream completed).
    """

    def __init__(self, *, model: str, message_id: str | None = None) -> None:
        self._model = model
        self._id = message_id
        self._started = False
        self._finished = False
        self._next_block = 0
        #: Anthropic index and kind of the open content block (``tool`` holds the OpenAI tool index).
        self._open: int | None = None
        self._open_kind: Literal["text", "tool"] | None = None
        self._open_tool: int | None = None
        self._tool_indices_seen: set[int] = set()
        self._finish_reason: str | None = None
        self._matched_stop: Any = None
        self._usage: JSON = {}

    def feed(self, chunk: JSON) -> list[StreamEvent]:
        """The events (possibly none) one canonical chunk translates to."""
        chunk = _body(chunk, "chat completion chunk", _UPSTREAM)
        if self._finished:
            return []
        events: list[StreamEvent] = []
        if not self._started:
            events.append(self._message_start(chunk))
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choices = chunk.get("choices")
        for i, raw in enumerate(_as_array(choices, "choices", _UPSTREAM) if choices else []):
            choice = _as_object(raw, f"choices[{i}]", _UPSTREAM)
            if choice.get("index", 0) == 0:
                events.extend(self._choice(choice, f"choices[{i}]"))
        return events

    def finish(self) -> list[StreamEvent]:
        """Close any open block and end the message: ``message_delta`` then ``message_stop``."""
        if self._finished:
            return []
        events: list[StreamEvent] = []
        if not self._started:
            events.append(self._message_start({}))
        events.extend(self._close())
        stop_reason, stop_sequence = _stop(
            self._finish_reason, self._matched_stop, used_tools=bool(self._tool_indices_seen)
        )
        delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
        events.append(
            (
                "message_delta",
                {"type": "message_delta", "delta": delta, "usage": _messages_usage(self._usage)},
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        self._finished = True
        return events

    @staticmethod
    def error_event(message: str, *, error_type: str = "api_error") -> StreamEvent:
        """Anthropic's in-stream ``error`` event (``error_type`` as in Anthropic's error objects)."""
        return ("error", {"type": "error", "error": {"type": error_type, "message": message}})

    def _message_start(self, chunk: JSON) -> StreamEvent:
        self._started = True
        if self._id is None:
            chunk_id = chunk.get("id")
            self._id = (
                _message_id(chunk_id) if isinstance(chunk_id, str) and chunk_id else f"msg_{uuid.uuid4().hex}"
            )
        usage = chunk.get("usage")
        message: JSON = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _messages_usage(usage if isinstance(usage, dict) else {}),
        }
        return ("message_start", {"type": "message_start", "message": message})

    def _choice(self, choice: JSON, where: str) -> list[StreamEvent]:
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        events: list[StreamEvent] = []
        for key in ("content", "refusal"):
            piece = delta.get(key)
            if isinstance(piece, str) and piece:
                events.extend(self._text(piece))
        tool_calls = delta.get("tool_calls")
        calls_where = f"{where}.delta.tool_calls"
        for k, raw in enumerate(_as_array(tool_calls, calls_where, _UPSTREAM) if tool_calls else []):
            call_where = f"{calls_where}[{k}]"
            events.extend(self._tool_delta(_as_object(raw, call_where, _UPSTREAM), call_where))
        finish_reason = choice.get("finish_reason")
        if isinstance(finish_reason, str):
            events.extend(self._close())
            self._finish_reason = finish_reason
            self._matched_stop = choice.get("stop_reason")
        return events

    def _start_block(
        self, content_block: JSON, kind: Literal["text", "tool"], tool: int | None = None
    ) -> StreamEvent:
        self._open, self._open_kind, self._open_tool = self._next_block, kind, tool
        self._next_block += 1
        return (
            "content_block_start",
            {"type": "content_block_start", "index": self._open, "content_block": content_block},
        )

    def _delta(self, delta: JSON) -> StreamEvent:
        return ("content_block_delta", {"type": "content_block_delta", "index": self._open, "delta": delta})

    def _close(self) -> list[StreamEvent]:
        if self._open is None:
            return []
        event: StreamEvent = ("content_block_stop", {"type": "content_block_stop", "index": self._open})
        self._open, self._open_kind, self._open_tool = None, None, None
        return [event]

    def _text(self, text: str) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if self._open_kind != "text":
            events.extend(self._close())
            events.append(self._start_block({"type": "text", "text": ""}, "text"))
        events.append(self._delta({"type": "text_delta", "text": text}))
        return events

    def _tool_delta(self, call: JSON, where: str) -> list[StreamEvent]:
        tool_index = _as_int(call.get("index"), f"{where}.index", error=_UPSTREAM)
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        events: list[StreamEvent] = []
        if self._open_kind != "tool" or self._open_tool != tool_index:
            if tool_index in self._tool_indices_seen:
                raise UpstreamProtocolError(
                    f"Tool call {tool_index} continued after another content block started; "
                    "Anthropic content blocks cannot interleave.",
                    param=f"{where}.index",
                )
            events.extend(self._close())
            call_id = call.get("id")
            block = {
                "type": "tool_use",
                "id": call_id if isinstance(call_id, str) and call_id else f"toolu_{self._id}_{tool_index}",
                "name": _as_string(function.get("name"), f"{where}.function.name", _UPSTREAM),
                "input": {},
            }
            events.append(self._start_block(block, "tool", tool_index))
            self._tool_indices_seen.add(tool_index)
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        return events
