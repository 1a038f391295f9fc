"""An Anthropic Messages-compatible fake upstream: ``POST /v1/messages``, token counting, models.

An honest fake of the upstream boundary (see :mod:`interlace.testing.faults`). Like the real API it
requires a key (``x-api-key``, or ``Authorization: Bearer`` as the current SDK sends it) and an
``anthropic-version`` header, requires ``max_tokens``, rejects a ``system`` role inside ``messages`` and a
``tool_result`` that answers no ``tool_use`` of the previous turn, and answers errors as
``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``.

The reply comes from the :mod:`~interlace.testing.echo` model, as in the OpenAI fake: ``"echo: <text>"``
for the last user turn's text (tool results included); ``stop_sequences`` give ``stop_reason``
``"stop_sequence"``, ``max_tokens`` ``"max_tokens"``; ``call <tool>`` in a user turn (no tool result in
it) naming an offered tool gives ``tool_use`` blocks and ``"tool_use"``. ``tool_choice``
``{"type": "tool"}``/``{"type": "any"}`` force a call, ``{"type": "none"}`` forbids one. Usage counts
whitespace words and reports zero cache reads and writes.

Streams follow the real event sequence: ``message_start``, then per block ``content_block_start``
(a ``ping`` after the first), ``content_block_delta`` (``text_delta`` per word, ``input_json_delta`` per
8 characters), ``content_block_stop``, then ``message_delta`` and ``message_stop`` (the terminator a
``cut_stream`` fault withholds). An ``error_after_first_chunk`` fault sends ``event: error`` with an
``overloaded_error`` unless the fault names a code.
"""

from __future__ import annotations

import itertools
import re
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import orjson

from interlace.testing.echo import EchoText, continue_echo, count_tokens, echo_text, tool_calls_in
from interlace.testing.exchange import (
    Exchange,
    RejectionError,
    Route,
    RouteSpec,
    UpstreamApp,
    match_route,
    sse,
)
from interlace.testing.faults import NORMAL, Fault
from interlace.testing.replies import ReplyScript

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["AnthropicUpstream"]

_ARG_PIECE: Final = 8
_TYPE_BY_STATUS: Final = MappingProxyType(
    {
        400: "invalid_request_error",
        401: "authentication_error",
        402: "billing_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        504: "timeout_error",
        529: "overloaded_error",
    }
)
_DEFAULT_MESSAGE: Final = MappingProxyType(
    {
        "invalid_request_error": "Invalid request.",
        "authentication_error": "invalid x-api-key",
        "billing_error": "Your credit balance is too low to access the Anthropic API.",
        "permission_error": "Your API key does not have permission to use the specified resource.",
        "not_found_error": "Not found",
        "request_too_large": "Request exceeds the maximum allowed number of bytes.",
        "rate_limit_error": "Number of requests has exceeded your per-minute rate limit.",
        "api_error": "Internal server error",
        "timeout_error": "Request timed out",
        "overloaded_error": "Overloaded",
    }
)
_KNOWN_CODES: Final = MappingProxyType(
    {  # OpenAI-style codes a fault may name, in Anthropic's words
        "context_length_exceeded": (
            "invalid_request_error",
            "prompt is too long: 200001 tokens > 200000 maximum",
        ),
        "content_filter": ("invalid_request_error", "Output blocked by content filtering policy"),
    }
)


def _block_text(block: Any) -> str:
    if not isinstance(block, dict):
        return ""
    if block.get("type") == "text":
        return str(block.get("text", ""))
    if block.get("type") == "tool_result":
        return _content_text(block.get("content"))
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(text for text in map(_block_text, content) if text)
    return ""


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []


class AnthropicUpstream(UpstreamApp):
    """The Anthropic Messages fake. ``api_key`` makes it check the key's value too."""

    protocol = "anthropic"

    def __init__(
        self, *, models: Sequence[str] = ("echo",), api_key: str | None = None, default_fault: Fault = NORMAL
    ) -> None:
        super().__init__(default_fault=default_fault)
        self.models = tuple(models)
        self.api_key = api_key
        self._ids = itertools.count(1)
        #: Exact reply texts for the next messages (:mod:`interlace.testing.replies`).
        self.replies = ReplyScript()
        self._routes: tuple[RouteSpec, ...] = (
            ("POST", re.compile(r"/v1/messages"), self._messages, True),
            ("POST", re.compile(r"/v1/messages/count_tokens"), self._count_tokens, False),
            ("GET", re.compile(r"/v1/models"), self._list_models, False),
        )

    def route(self, method: str, path: str) -> Route | None:
        return match_route(self._routes, method, path)

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"request-id", b"req_%024x" % next(self._ids))]

    def error_body(self, status: int, code: str | None, message: str | None) -> dict[str, Any]:
        if code is not None and code in _KNOWN_CODES:
            kind, default = _KNOWN_CODES[code]
        else:
            fallback = "api_error" if status >= 500 else "invalid_request_error"  # noqa: PLR2004 - the 5xx class
            kind = code if code and code.endswith("_error") else _TYPE_BY_STATUS.get(status, fallback)
            default = _DEFAULT_MESSAGE.get(kind, "Error")
        error = {"type": kind, "message": message or default}
        return {"type": "error", "error": error, "request_id": f"req_{next(self._ids):024x}"}

    def stream_error_frame(self, fault: Fault) -> bytes:
        body = self.error_body(fault.http_status if fault.code else 529, fault.code, fault.message)
        return sse({"type": "error", "error": body["error"]}, "error")

    def _admit(self, ex: Exchange) -> None:
        """Check the key and the API version the way the real API does."""
        headers = ex.record.headers
        bearer = headers.get("authorization", "")
        key = headers.get("x-api-key") or (bearer[7:] if bearer.lower().startswith("bearer ") else None)
        if not key:
            raise RejectionError("x-api-key header is required", status=401)
        if self.api_key is not None and key != self.api_key:
            raise RejectionError("invalid x-api-key", status=401)
        if not headers.get("anthropic-version"):
            raise RejectionError("anthropic-version: header is required")

    async def _messages(self, ex: Exchange) -> None:
        self._admit(ex)
        body = ex.body
        _check_request(body, count_only=False)
        messages: list[dict[str, Any]] = body["messages"]
        user: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        text = _content_text(user.get("content"))
        answering = any(block.get("type") == "tool_result" for block in _blocks(user))
        calls = self._tool_calls(body, text) if messages[-1].get("role") == "user" and not answering else []
        echo = echo_text(text, stop=body.get("stop_sequences") or (), max_tokens=body["max_tokens"])
        if messages[-1].get("role") == "assistant":  # a prefill: continue the answer it starts
            echo = continue_echo(echo, _content_text(messages[-1].get("content")))
        scripted = None if calls else self.replies.pop()
        if scripted is not None:  # a scripted reply, verbatim (structured-output tests)
            echo = EchoText(tuple(scripted.split(" ")), "stop", None)
        number = next(self._ids)
        content: list[dict[str, Any]] = [
            {"type": "tool_use", "id": f"toolu_{number:016x}{k:08x}", "name": name, "input": arguments}
            for k, (name, arguments) in enumerate(calls)
        ] or [{"type": "text", "text": "".join(echo.pieces())}]
        output = (
            sum(count_tokens(f"{b['name']} {orjson.dumps(b['input']).decode()}") for b in content)
            if calls
            else len(echo.words)
        )
        usage = {
            "input_tokens": _input_tokens(body),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": output,
            "service_tier": "standard",
        }
        message = {
            "id": f"msg_{number:024x}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": "tool_use" if calls else _stop_reason(echo),
            "stop_sequence": None if calls else echo.stop_sequence,
            "usage": usage,
        }
        if body.get("stream"):
            await ex.respond_stream(_events(message, echo), sse({"type": "message_stop"}, "message_stop"))
        else:
            await ex.respond(message)

    def _tool_calls(self, body: dict[str, Any], text: str) -> list[tuple[str, dict[str, Any]]]:
        offered = [str(tool["name"]) for tool in body.get("tools") or ()]
        choice = body.get("tool_choice") or {}
        if not offered or choice.get("type") == "none":
            return []
        calls = tool_calls_in(text, offered)
        if not calls and choice.get("type") == "tool" and choice.get("name") in offered:
            calls = [(str(choice["name"]), {})]
        if not calls and choice.get("type") == "any":
            calls = [(offered[0], {})]
        return calls

    async def _count_tokens(self, ex: Exchange) -> None:
        self._admit(ex)
        _check_request(ex.body, count_only=True)
        await ex.send_json({"input_tokens": _input_tokens(ex.body)})

    async def _list_models(self, ex: Exchange) -> None:
        self._admit(ex)
        data = [
            {"type": "model", "id": name, "display_name": name, "created_at": "2025-01-01T00:00:00Z"}
            for name in self.models
        ]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        await ex.send_json({"data": data, "has_more": False, "first_id": first, "last_id": last})


def _stop_reason(echo: EchoText) -> str:
    if echo.finish == "length":
        return "max_tokens"
    return "end_turn" if echo.stop_sequence is None else "stop_sequence"


def _input_tokens(body: dict[str, Any]) -> int:
    system = _content_text(body.get("system"))
    return count_tokens(system) + sum(count_tokens(_content_text(m.get("content"))) for m in body["messages"])


def _events(message: dict[str, Any], echo: EchoText) -> list[bytes]:
    usage = message["usage"]
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    frames = [sse({"type": "message_start", "message": start}, "message_start")]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            opening: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in echo.pieces()]
        else:
            opening = {**block, "input": {}}
            arguments = orjson.dumps(block["input"]).decode()
            pieces = [arguments[i : i + _ARG_PIECE] for i in range(0, len(arguments), _ARG_PIECE)]
            deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in ["", *pieces]]
        frames.append(
            sse(
                {"type": "content_block_start", "index": index, "content_block": opening},
                "content_block_start",
            )
        )
        if index == 0:
            frames.append(sse({"type": "ping"}, "ping"))
        frames.extend(
            sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
            for delta in deltas
        )
        frames.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    frames.append(
        sse(
            {"type": "message_delta", "delta": delta, "usage": {"output_tokens": usage["output_tokens"]}},
            "message_delta",
        )
    )
    return frames


def _check_request(body: Any, *, count_only: bool) -> None:
    """Reject what the real API rejects in a Messages request."""
    if not isinstance(body, dict):
        raise RejectionError("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str):
        raise RejectionError("model: Field required")
    if not count_only and "max_tokens" not in body:
        raise RejectionError("max_tokens: Field required")
    if not count_only and (not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1):
        raise RejectionError("max_tokens: Input should be an integer greater than or equal to 1")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RejectionError(
            "messages: Field required" if messages is None else "messages: at least one message is required"
        )
    _check_turns(messages)
    stops = body.get("stop_sequences")
    if stops is not None and not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
        raise RejectionError("stop_sequences: Input should be a valid list of strings")
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(
        isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools
    ):
        raise RejectionError("tools: Input should be a valid list of tools, each with a name")
    if not isinstance(body.get("tool_choice") or {}, dict):
        raise RejectionError("tool_choice: Input should be a valid dictionary")


def _check_turns(messages: list[Any]) -> None:
    offered: set[str] = set()  # tool_use ids of the previous turn
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "system":
            raise RejectionError(
                'messages: Unexpected role "system". The Messages API accepts a top-level `system` '
                'parameter, not "system" as an input message role.'
            )
        if role not in {"user", "assistant"}:
            raise RejectionError(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        for block in _blocks(message):
            if block.get("type") == "tool_result" and block.get("tool_use_id") not in offered:
                raise RejectionError(
                    f"messages.{index}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                    "`tool_use` block in the previous message."
                )
        offered = {str(block.get("id")) for block in _blocks(message) if block.get("type") == "tool_use"}
