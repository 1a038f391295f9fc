"""Anthropic Messages → OpenAI Chat Completions, and canonical answers back to Anthropic.

Used by the gateway's Anthropic-compatible ``POST /v1/messages``: the client's Anthropic request
becomes the canonical (OpenAI-shaped) request, and the canonical ``chat.completion`` or stream of
``chat.completion.chunk`` objects becomes an Anthropic Message or Anthropic's exact event sequence.
Pure functions, no I/O.

Where the protocols do not map 1:1:

* ``system`` (a string or text blocks) becomes one leading system message; a ``system``-role entry in
  ``messages`` (accepted by recent Anthropic APIs) becomes a system message in place.
* A user turn's ``tool_result`` blocks become ``tool`` messages placed *before* the rest of that turn,
  which stays a user message. ``is_error`` has no OpenAI counterpart and is dropped; a tool result
  may only carry text (OpenAI tool messages cannot hold images).
* Assistant ``thinking`` / ``redacted_thinking`` blocks are dropped (the canonical form has no place
  for them); several text blocks of one turn are concatenated.
* Only client tools (no ``type`` or ``type: custom``) map to function tools; Anthropic server tools
  (web search, code execution, …) are rejected. ``top_k``, ``thinking``, ``cache_control``,
  ``service_tier`` and other Anthropic-only fields are left out of the canonical request.
* A streaming request asks the canonical stream for usage (``stream_options.include_usage``) because
  Anthropic streams always report it. Since OpenAI reports usage only at the end, ``message_start``
  carries zero usage and the final ``message_delta`` carries the cumulative counts (input tokens
  included, which the Anthropic SDK folds into the final message).
* OpenAI's ``"stop"`` cannot tell a natural end from a stop sequence: it maps to ``end_turn`` unless
  the choice carries the matched sequence as ``stop_reason`` (the vLLM convention, also produced by
  :mod:`~interlace.protocols.anthropic.to_anthropic`), which maps to ``stop_sequence``. A finish of
  ``"stop"`` with tool calls maps to ``tool_use``, which is what Anthropic clients loop on.
* A malformed canonical answer raises :class:`UpstreamProtocolError` (502), not a request error.
"""

from __future__ import annotations

import copy
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from interlace.core.errors import RequestError, UpstreamProtocolError
from interlace.protocols.anthropic._validation import (
    _as_array,
    _as_int,
    _as_number,
    _as_object,
    _as_string,
    _block_type,
    _body,
    _count,
    _encode_arguments,
)
from interlace.protocols.anthropic.to_anthropic import decode_arguments

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "STOP_REASON_BY_FINISH_REASON",
    "chat_response_to_messages",
    "messages_request_to_chat",
]

JSON = dict[str, Any]

#: OpenAI ``finish_reason`` → Anthropic ``stop_reason``. Anything else (or null) maps to ``end_turn``.
STOP_REASON_BY_FINISH_REASON: Final[Mapping[str, str]] = MappingProxyType(
    {
        "stop": "end_turn",
        "length": "max_tokens",
        "tool_calls": "tool_use",
        "function_call": "tool_use",
        "content_filter": "refusal",
    }
)

_TOOL_CHOICE_BY_TYPE: Final[Mapping[str, str]] = MappingProxyType(
    {"auto": "auto", "any": "required", "none": "none"}
)
_SKIPPED_ASSISTANT_BLOCKS: Final = frozenset({"thinking", "redacted_thinking"})
_UPSTREAM: Final = UpstreamProtocolError
_MESSAGE_ID_PREFIX: Final = "msg_"
_DEFAULT_DOCUMENT_NAME: Final = "document.pdf"


def _message_id(chat_id: str) -> str:
    bare = chat_id.removeprefix("chatcmpl-")
    return bare if bare.startswith(_MESSAGE_ID_PREFIX) else _MESSAGE_ID_PREFIX + bare


# --------------------------------------------------------------------------- request


def messages_request_to_chat(body: JSON) -> JSON:
    """The canonical chat completion request for an Anthropic ``POST /v1/messages`` body."""
    body = _body(body, "request body")
    model = _as_string(body.get("model"), "model")
    max_tokens = _as_int(body.get("max_tokens"), "max_tokens")
    raw_messages = _as_array(body.get("messages"), "messages")
    if not raw_messages:
        raise RequestError("`messages` must contain at least one message.", param="messages")
    messages: list[JSON] = []
    if body.get("system") is not None:
        messages.extend(_system_messages(body["system"], "system"))
    for i, raw in enumerate(raw_messages):
        where = f"messages[{i}]"
        messages.extend(_convert_message(_as_object(raw, where), where))
    out: JSON = {"model": model, "messages": messages, "max_tokens": max_tokens}
    out.update(_tool_fields(body))
    out.update(_sampling_fields(body))
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _blocks(content: Any, where: str) -> list[tuple[JSON, str, str]]:
    """Each block of the array at ``where`` with its type and path; an empty array is rejected."""
    items = _as_array(content, where)
    if not items:
        raise RequestError(f"`{where}` must not be empty.", param=where)
    out: list[tuple[JSON, str, str]] = []
    for j, raw in enumerate(items):
        block_where = f"{where}[{j}]"
        block = _as_object(raw, block_where)
        out.append((block, _block_type(block, block_where), block_where))
    return out


def _texts(content: Any, where: str, context: str) -> list[str]:
    texts: list[str] = []
    for block, block_type, block_where in _blocks(content, where):
        if block_type != "text":
            raise RequestError(
                f"`{block_where}.type` must be 'text' in {context}, got {block_type!r}.",
                param=f"{block_where}.type",
            )
        texts.append(_as_string(block.get("text"), f"{block_where}.text"))
    return texts


def _text_content(texts: list[str]) -> str | list[JSON]:
    return texts[0] if len(texts) == 1 else [{"type": "text", "text": text} for text in texts]


def _system_messages(system: Any, where: str) -> list[JSON]:
    """``where`` is ``system`` (top level) or ``messages[i].content`` (a system-role message)."""
    if isinstance(system, str):
        return [{"role": "system", "content": system}] if system else []
    if system == []:
        return []
    return [{"role": "system", "content": _text_content(_texts(system, where, "a system prompt"))}]


def _convert_message(message: JSON, where: str) -> list[JSON]:
    role = message.get("role")
    content = message.get("content")
    if content is None:
        raise RequestError(f"`{where}.content` is required.", param=f"{where}.content")
    if role == "user":
        return _user_messages(content, where)
    if role == "assistant":
        return _assistant_messages(content, where)
    if role == "system":
        return _system_messages(content, f"{where}.content")
    raise RequestError(f"`{where}.role` must be 'user' or 'assistant', got {role!r}.", param=f"{where}.role")


def _user_messages(content: Any, where: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[JSON] = []
    parts: list[JSON] = []
    for block, block_type, block_where in _blocks(content, f"{where}.content"):
        if block_type == "tool_result":
            out.append(_tool_message(block, block_where))
        else:
            parts.append(_user_part(block, block_type, block_where))
    if parts:
        only_text = len(parts) == 1 and parts[0]["type"] == "text"
        out.append({"role": "user", "content": parts[0]["text"] if only_text else parts})
    return out


def _user_part(block: JSON, block_type: str, where: str) -> JSON:
    if block_type == "text":
        return {"type": "text", "text": _as_string(block.get("text"), f"{where}.text")}
    if block_type == "image":
        return {"type": "image_url", "image_url": {"url": _image_url(block, where)}}
    if block_type == "document":
        return _file_part(block, where)
    raise RequestError(
        f"`{where}.type` {block_type!r} is not supported in a user message "
        "(supported: text, image, document, tool_result).",
        param=f"{where}.type",
    )


def _base64_source(source: JSON, where: str) -> str:
    media_type = _as_string(source.get("media_type"), f"{where}.media_type")
    data = _as_string(source.get("data"), f"{where}.data")
    return f"data:{media_type};base64,{data}"


def _image_url(block: JSON, where: str) -> str:
    where = f"{where}.source"
    source = _as_object(block.get("source"), where)
    source_type = source.get("type")
    if source_type == "base64":
        return _base64_source(source, where)
    if source_type == "url":
        return _as_string(source.get("url"), f"{where}.url")
    raise RequestError(
        f"`{where}.type` must be 'base64' or 'url', got {source_type!r}.", param=f"{where}.type"
    )


def _file_part(block: JSON, where: str) -> JSON:
    source_where = f"{where}.source"
    source = _as_object(block.get("source"), source_where)
    if source.get("type") != "base64" or source.get("media_type") != "application/pdf":
        raise RequestError(
            f"`{source_where}` must be a base64 PDF source (type 'base64', media_type 'application/pdf').",
            param=source_where,
        )
    title = block.get("title")
    filename = title if isinstance(title, str) and title else _DEFAULT_DOCUMENT_NAME
    return {"type": "file", "file": {"file_data": _base64_source(source, source_where), "filename": filename}}


def _tool_message(block: JSON, where: str) -> JSON:
    message: JSON = {
        "role": "tool",
        "tool_call_id": _as_string(block.get("tool_use_id"), f"{where}.tool_use_id"),
    }
    content = block.get("content")
    if content is None or content == []:
        message["content"] = ""
    elif isinstance(content, str):
        message["content"] = content
    else:
        message["content"] = _text_content(_texts(content, f"{where}.content", "a tool_result"))
    return message


def _assistant_messages(content: Any, where: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"role": "assistant", "content": content}]
    texts: list[str] = []
    tool_calls: list[JSON] = []
    for block, block_type, block_where in _blocks(content, f"{where}.content"):
        if block_type == "text":
            texts.append(_as_string(block.get("text"), f"{block_where}.text"))
        elif block_type == "tool_use":
            tool_calls.append(_tool_call(block, block_where))
        elif block_type not in _SKIPPED_ASSISTANT_BLOCKS:
            raise RequestError(
                f"`{block_where}.type` {block_type!r} is not supported in an assistant message "
                "(supported: text, tool_use, thinking).",
                param=f"{block_where}.type",
            )
    if not texts and not tool_calls:
        return []
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return [message]


def _tool_call(block: JSON, where: str) -> JSON:
    return {
        "id": _as_string(block.get("id"), f"{where}.id"),
        "type": "function",
        "function": {
            "name": _as_string(block.get("name"), f"{where}.name"),
            "arguments": _encode_arguments(_as_object(block.get("input"), f"{where}.input")),
        },
    }


def _tool_fields(body: JSON) -> JSON:
    raw_tools = body.get("tools")
    if raw_tools is None or raw_tools == []:
        return {}
    tools = [
        _chat_tool(_as_object(t, f"tools[{i}]"), f"tools[{i}]")
        for i, t in enumerate(_as_array(raw_tools, "tools"))
    ]
    out: JSON = {"tools": tools}
    choice = body.get("tool_choice")
    if choice is not None:
        out.update(_tool_choice(_as_object(choice, "tool_choice")))
    return out


def _chat_tool(tool: JSON, where: str) -> JSON:
    tool_type = tool.get("type")
    if tool_type not in (None, "custom"):
        raise RequestError(
            f"`{where}.type` {tool_type!r} is an Anthropic server tool, which this gateway does not support; "
            "only client tools (name, description, input_schema) are.",
            param=f"{where}.type",
        )
    function: JSON = {"name": _as_string(tool.get("name"), f"{where}.name")}
    description = tool.get("description")
    if description is not None:
        function["description"] = _as_string(description, f"{where}.description")
    # Copied so the canonical request never aliases the client's body.
    function["parameters"] = copy.deepcopy(_as_object(tool.get("input_schema"), f"{where}.input_schema"))
    return {"type": "function", "function": function}


def _tool_choice(choice: JSON) -> JSON:
    choice_type = choice.get("type")
    out: JSON
    if isinstance(choice_type, str) and choice_type in _TOOL_CHOICE_BY_TYPE:
        out = {"tool_choice": _TOOL_CHOICE_BY_TYPE[choice_type]}
    elif choice_type == "tool":
        name = _as_string(choice.get("name"), "tool_choice.name")
        out = {"tool_choice": {"type": "function", "function": {"name": name}}}
    else:
        raise RequestError(
            f"`tool_choice.type` must be auto, any, tool or none, got {choice_type!r}.",
            param="tool_choice.type",
        )
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
    return out


def _sampling_fields(body: JSON) -> JSON:
    out: JSON = {}
    stop_sequences = body.get("stop_sequences")
    if stop_sequences is not None:
        sequences = [
            _as_string(s, f"stop_sequences[{i}]")
            for i, s in enumerate(_as_array(stop_sequences, "stop_sequences"))
        ]
        if sequences:
            out["stop"] = sequences
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None:
            out[name] = _as_number(value, name)
    metadata = body.get("metadata")
    if metadata is not None:
        user_id = _as_object(metadata, "metadata").get("user_id")
        if user_id is not None:
            out["user"] = _as_string(user_id, "metadata.user_id")
    return out


# --------------------------------------------------------------------------- response


def chat_response_to_messages(resp: JSON, *, model: str) -> JSON:
    """The Anthropic Message for a canonical ``chat.completion``. ``model`` is the name to report."""
    resp = _body(resp, "chat completion", _UPSTREAM)
    choices = _as_array(resp.get("choices"), "choices", _UPSTREAM)
    if not choices:
        raise UpstreamProtocolError("The chat completion has no choices.", param="choices")
    choice = _as_object(choices[0], "choices[0]", _UPSTREAM)
    message = _as_object(choice.get("message"), "choices[0].message", _UPSTREAM)
    content = _response_blocks(message, "choices[0].message")
    finish_reason = choice.get("finish_reason")
    stop_reason, stop_sequence = _stop(
        finish_reason if isinstance(finish_reason, str) else None,
        choice.get("stop_reason"),
        used_tools=any(block["type"] == "tool_use" for block in content),
    )
    usage = resp.get("usage")
    return {
        "id": _message_id(_as_string(resp.get("id"), "id", _UPSTREAM)),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": _messages_usage(usage if isinstance(usage, dict) else {}),
    }


def _message_text(message: JSON, where: str) -> str:
    content = message.get("content")
    if isinstance(content, list):  # some OpenAI-compatible servers answer with text parts
        return "".join(
            _as_string(part.get("text"), f"{where}.content[{j}].text", _UPSTREAM)
            for j, part in enumerate(content)
            if isinstance(part, dict) and part.get("type") == "text"
        )
    if content is None:
        refusal = message.get("refusal")
        return refusal if isinstance(refusal, str) else ""
    return _as_string(content, f"{where}.content", _UPSTREAM)


def _response_blocks(message: JSON, where: str) -> list[JSON]:
    text = _message_text(message, where)
    blocks: list[JSON] = [{"type": "text", "text": text}] if text else []
    tool_calls = message.get("tool_calls")
    for k, raw in enumerate(_as_array(tool_calls, f"{where}.tool_calls", _UPSTREAM) if tool_calls else []):
        call_where = f"{where}.tool_calls[{k}]"
        call = _as_object(raw, call_where, _UPSTREAM)
        function = _as_object(call.get("function"), f"{call_where}.function", _UPSTREAM)
        blocks.append(
            {
                "type": "tool_use",
                "id": _as_string(call.get("id"), f"{call_where}.id", _UPSTREAM),
                "name": _as_string(function.get("name"), f"{call_where}.function.name", _UPSTREAM),
                "input": decode_arguments(
                    function.get("arguments"), f"{call_where}.function.arguments", _UPSTREAM
                ),
            }
        )
    return blocks


def _stop(finish_reason: str | None, matched: Any, *, used_tools: bool) -> tuple[str, str | None]:
    """Anthropic ``stop_reason`` and ``stop_sequence`` for an OpenAI finish."""
    stop_reason = STOP_REASON_BY_FINISH_REASON.get(finish_reason or "stop", "end_turn")
    if stop_reason == "end_turn" and isinstance(matched, str):
        return "stop_sequence", matched
    if stop_reason == "end_turn" and used_tools:
        return "tool_use", None
    return stop_reason, None


def _messages_usage(usage: Mapping[str, Any]) -> JSON:
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    cache_read = _count(details, "cached_tokens")
    cache_write = _count(details, "cache_write_tokens")
    return {
        "input_tokens": max(_count(usage, "prompt_tokens") - cache_read - cache_write, 0),
        "output_tokens": _count(usage, "completion_tokens"),
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
    }
