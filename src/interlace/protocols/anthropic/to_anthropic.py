"""OpenAI Chat Completions → Anthropic Messages, and Anthropic's answers back to OpenAI.

Used by the ``anthropic`` provider: the canonical (OpenAI-shaped) request becomes an Anthropic
``POST /v1/messages`` body, and the upstream's Message or its stream events become an OpenAI
``chat.completion`` or ``chat.completion.chunk`` objects. Pure functions, no I/O.

Where the protocols do not map 1:1:

* ``system`` and ``developer`` messages are hoisted into the top-level ``system`` (Anthropic has no
  mid-conversation system turns); one text becomes a string, several become text blocks in order.
* Anthropic requires alternating turns: consecutive messages that land on the same role are merged
  (``tool`` messages become ``tool_result`` blocks of a user turn), and within a user turn the
  ``tool_result`` blocks are moved first, as Anthropic requires. Empty or whitespace-only text
  parts are dropped (Anthropic rejects them) and a turn left without blocks is skipped.
* ``max_completion_tokens`` wins over ``max_tokens``; without either, :data:`DEFAULT_MAX_TOKENS`.
* ``temperature`` is clamped to Anthropic's range 0..1 (OpenAI accepts up to 2). When both
  ``temperature`` and ``top_p`` are set only ``temperature`` is sent: recent Claude models reject the
  pair. Anthropic API version 2026-10-21 rejects every sampling parameter (the 2.x SDK no longer has
  them), so a provider speaking that version passes ``forward_sampling=False`` and they are dropped.
* ``response_format`` (json_object / json_schema) is *emulated*: an instruction (with the schema)
  is appended to ``system``. The model is asked, not forced, so the output may still not parse;
  ``strict`` cannot be honoured.
* ``n`` > 1, ``logprobs``/``top_logprobs``, audio output, the deprecated ``functions`` /
  ``function_call`` and ``web_search_options`` change what the client gets back, so they are
  rejected with a :class:`RequestError` naming the field rather than silently ignored. Sampling
  hints with no Anthropic equivalent (``frequency_penalty``, ``presence_penalty``, ``seed``,
  ``logit_bias``) and OpenAI platform options (``store``, ``metadata``, ``service_tier``,
  ``reasoning_effort``, ``prediction``, ``prompt_cache_key``, …) are dropped. ``strict`` on tools,
  message ``name`` and image ``detail`` are dropped too.
* Responses: ``thinking`` blocks are exposed as the non-standard ``message.reasoning_content``
  (the signature is not kept, so thinking cannot be sent back); server-tool blocks are dropped.
  When a custom stop sequence matched, the choice carries it as ``stop_reason`` (the vLLM
  convention) so the Anthropic-compatible endpoint can restore ``stop_sequence``.
* A malformed upstream answer raises :class:`UpstreamProtocolError` (502), not a request error.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from interlace.core.errors import (
    InterlaceError,
    RequestError,
    StreamInterrupted,
    UpstreamProtocolError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "FINISH_REASON_BY_STOP_REASON",
    "MessagesStreamToChatChunks",
    "chat_request_to_messages",
    "messages_response_to_chat",
]

JSON = dict[str, Any]
ErrorClass = type[InterlaceError]

#: ``max_tokens`` sent upstream when the client set neither ``max_tokens`` nor ``max_completion_tokens``.
DEFAULT_MAX_TOKENS: Final = 4096

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

_IMAGE_MEDIA_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_DOCUMENT_MEDIA_TYPES: Final = frozenset({"application/pdf"})
_ROLE_BY_CHAT_ROLE: Final[Mapping[str, str]] = MappingProxyType(
    {"user": "user", "assistant": "assistant", "tool": "user"}
)
_TOOL_CHOICE_TYPE: Final[Mapping[str, str]] = MappingProxyType(
    {"none": "none", "auto": "auto", "required": "any"}
)
#: Fields whose presence (non-null, non-false) asks for something Anthropic cannot give back.
_REJECTED_FIELDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "logprobs": "Anthropic models do not return log probabilities",
        "top_logprobs": "Anthropic models do not return log probabilities",
        "audio": "Anthropic models do not produce audio output",
        "functions": "the deprecated `functions` API is not supported; send `tools` instead",
        "function_call": "the deprecated `function_call` is not supported; send `tool_choice` instead",
        "web_search_options": "web search is not available through this model",
    }
)
_JSON_OBJECT_INSTRUCTION: Final = (
    "Respond with a single valid JSON object and nothing else: "
    "no Markdown code fences, no text before or after it."
)
_CHAT_ID_PREFIX: Final = "chatcmpl-"


# --------------------------------------------------------------------------- validation helpers
# Shared with from_anthropic.py: every malformed input becomes an InterlaceError naming the field.


_JSON_KINDS: Final = (
    (bool, "boolean"),
    (int | float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def _kind(value: Any) -> str:
    """The JSON type name of a decoded value, for error messages."""
    if value is None:
        return "null"
    return next((name for kind, name in _JSON_KINDS if isinstance(value, kind)), type(value).__name__)


def _invalid(where: str, expected: str, value: Any, error: ErrorClass) -> InterlaceError:
    if value is None:
        return error(f"`{where}` is required.", param=where)
    return error(f"`{where}` must be {expected}, got {_kind(value)}.", param=where)


def _as_object(value: Any, where: str, error: ErrorClass = RequestError) -> JSON:
    if not isinstance(value, dict):
        raise _invalid(where, "an object", value, error)
    return value


def _as_array(value: Any, where: str, error: ErrorClass = RequestError) -> list[Any]:
    if not isinstance(value, list):
        raise _invalid(where, "an array", value, error)
    return value


def _as_string(value: Any, where: str, error: ErrorClass = RequestError) -> str:
    if not isinstance(value, str):
        raise _invalid(where, "a string", value, error)
    return value


def _as_int(value: Any, where: str, *, minimum: int = 0, error: ErrorClass = RequestError) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(where, "an integer", value, error)
    if value < minimum:
        raise error(f"`{where}` must be at least {minimum}, got {value}.", param=where)
    return value


def _as_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(where, "a number", value, RequestError)
    return float(value)


def _body(value: Any, what: str, error: ErrorClass = RequestError) -> JSON:
    if not isinstance(value, dict):
        raise error(f"The {what} must be a JSON object, got {_kind(value)}.")
    return value


def _block_type(block: JSON, where: str, error: ErrorClass = RequestError) -> str:
    return _as_string(block.get("type"), f"{where}.type", error)


def _count(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _chat_id(message_id: str) -> str:
    """``msg_X`` → ``chatcmpl-X`` (from_anthropic maps back), so ids survive a round trip."""
    if message_id.startswith(_CHAT_ID_PREFIX):
        return message_id
    return _CHAT_ID_PREFIX + message_id.removeprefix("msg_")


def _text_blocks(text: str) -> list[JSON]:
    return [{"type": "text", "text": text}] if text.strip() else []


def _encode_arguments(arguments: Any) -> str:
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------- request


def chat_request_to_messages(body: JSON, *, upstream_model: str, forward_sampling: bool = True) -> JSON:
    """The Anthropic ``POST /v1/messages`` body for a canonical chat completion request.

    ``forward_sampling`` sends ``temperature`` / ``top_p`` (anthropic-version 2023-06-01); pass False
    for anthropic-version 2026-10-21, which rejects them. They are validated either way.
    """
    body = _body(body, "request body")
    _reject_unsupported(body)
    messages = _as_array(body.get("messages"), "messages")
    if not messages:
        raise RequestError("`messages` must contain at least one message.", param="messages")
    system, turns = _convert_messages(messages)
    instruction = _response_format_instruction(body.get("response_format"))
    if instruction is not None:
        system.append(instruction)
    out: JSON = {"model": upstream_model, "max_tokens": _max_tokens(body), "messages": turns}
    if system:
        out["system"] = system[0] if len(system) == 1 else [{"type": "text", "text": s} for s in system]
    out.update(_tool_fields(body))
    out.update(_stop_fields(body))
    sampling = _sampling_fields(body)
    if forward_sampling:
        out.update(sampling)
    out.update(_metadata_fields(body))
    if body.get("stream") is True:
        out["stream"] = True
    return out


def _reject_unsupported(body: JSON) -> None:
    for name, reason in _REJECTED_FIELDS.items():
        if body.get(name) not in (None, False):
            raise RequestError(f"`{name}` is not supported: {reason}.", param=name)
    n = body.get("n")
    if n is not None and _as_int(n, "n", minimum=1) != 1:
        raise RequestError("`n` must be 1: Anthropic models return a single choice.", param="n")
    modalities = body.get("modalities")
    if modalities is not None and any(m != "text" for m in _as_array(modalities, "modalities")):
        raise RequestError(
            '`modalities` must be ["text"]: Anthropic models only produce text.', param="modalities"
        )


def _max_tokens(body: JSON) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is not None:
            return _as_int(value, name)
    return DEFAULT_MAX_TOKENS


def _convert_messages(messages: list[Any]) -> tuple[list[str], list[JSON]]:
    system: list[str] = []
    turns: list[JSON] = []
    for i, raw in enumerate(messages):
        where = f"messages[{i}]"
        message = _as_object(raw, where)
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_system_texts(message, where))
            continue
        if not isinstance(role, str) or role not in _TURN_CONVERTERS:
            raise RequestError(
                f"`{where}.role` must be one of system, developer, user, assistant, tool; got {role!r}.",
                param=f"{where}.role",
            )
        blocks = _TURN_CONVERTERS[role](message, where)
        anthropic_role = _ROLE_BY_CHAT_ROLE[role]
        if blocks and turns and turns[-1]["role"] == anthropic_role:
            turns[-1]["content"].extend(blocks)
        elif blocks:
            turns.append({"role": anthropic_role, "content": blocks})
    if not turns:
        raise RequestError("`messages` must contain a non-empty user or assistant message.", param="messages")
    for turn in turns:
        # Anthropic wants a user turn's tool_result blocks before anything else (sort is stable).
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    return system, turns


def _part_texts(content: Any, where: str) -> list[str]:
    """The texts of a string or an array of text parts (system, developer and tool messages)."""
    if isinstance(content, str):
        return [content]
    texts: list[str] = []
    for j, raw in enumerate(_as_array(content, f"{where}.content")):
        part_where = f"{where}.content[{j}]"
        part = _as_object(raw, part_where)
        part_type = _block_type(part, part_where)
        if part_type != "text":
            raise RequestError(
                f"`{part_where}.type` must be 'text' here, got {part_type!r}.", param=f"{part_where}.type"
            )
        texts.append(_as_string(part.get("text"), f"{part_where}.text"))
    return texts


def _system_texts(message: JSON, where: str) -> list[str]:
    return [text for text in _part_texts(message.get("content"), where) if text.strip()]


def _user_blocks(message: JSON, where: str) -> list[JSON]:
    content = message.get("content")
    if isinstance(content, str):
        return _text_blocks(content)
    blocks: list[JSON] = []
    for j, raw in enumerate(_as_array(content, f"{where}.content")):
        part_where = f"{where}.content[{j}]"
        blocks.extend(_user_part(_as_object(raw, part_where), part_where))
    return blocks


def _user_part(part: JSON, where: str) -> list[JSON]:
    part_type = _block_type(part, where)
    if part_type == "text":
        return _text_blocks(_as_string(part.get("text"), f"{where}.text"))
    if part_type == "image_url":
        return [_image_block(part, where)]
    if part_type == "file":
        return [_document_block(part, where)]
    raise RequestError(
        f"`{where}.type` {part_type!r} is not supported for Anthropic models "
        "(supported: text, image_url, file with PDF file_data).",
        param=f"{where}.type",
    )


def _parse_data_url(url: str, where: str) -> tuple[str, str]:
    header, comma, data = url.removeprefix("data:").partition(",")
    media_type, *params = header.split(";")
    if not comma or "base64" not in params or not data:
        raise RequestError(f"`{where}` must be a base64 data URL (data:<type>;base64,<data>).", param=where)
    return media_type.lower(), data


def _image_block(part: JSON, where: str) -> JSON:
    image_url = part.get("image_url")
    if isinstance(image_url, dict):
        url = _as_string(image_url.get("url"), f"{where}.image_url.url")
    else:
        url = _as_string(image_url, f"{where}.image_url")
    where = f"{where}.image_url.url"
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    if not url.startswith("data:"):
        raise RequestError(f"`{where}` must be an http(s) URL or a base64 data URL.", param=where)
    media_type, data = _parse_data_url(url, where)
    if media_type not in _IMAGE_MEDIA_TYPES:
        allowed = ", ".join(sorted(_IMAGE_MEDIA_TYPES))
        raise RequestError(f"`{where}` has media type {media_type!r}; supported: {allowed}.", param=where)
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _document_block(part: JSON, where: str) -> JSON:
    file = _as_object(part.get("file"), f"{where}.file")
    where = f"{where}.file.file_data"
    file_data = file.get("file_data")
    if file_data is None:
        raise RequestError(
            f"`{where}` is required: Anthropic models cannot read uploaded `file_id`s.", param=where
        )
    media_type, data = _parse_data_url(_as_string(file_data, where), where)
    if media_type not in _DOCUMENT_MEDIA_TYPES:
        raise RequestError(f"`{where}` must be a PDF (application/pdf), got {media_type!r}.", param=where)
    block: JSON = {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}
    filename = file.get("filename")
    if isinstance(filename, str) and filename:
        block["title"] = filename
    return block


def _assistant_blocks(message: JSON, where: str) -> list[JSON]:
    content = message.get("content")
    if content is None:
        refusal = message.get("refusal")
        blocks = _text_blocks(refusal) if isinstance(refusal, str) else []
    elif isinstance(content, str):
        blocks = _text_blocks(content)
    else:
        blocks = [block for text in _assistant_part_texts(content, where) for block in _text_blocks(text)]
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        calls_where = f"{where}.tool_calls"
        for k, call in enumerate(_as_array(tool_calls, calls_where)):
            blocks.append(_tool_use_block(_as_object(call, f"{calls_where}[{k}]"), f"{calls_where}[{k}]"))
    return blocks


def _assistant_part_texts(content: Any, where: str) -> list[str]:
    texts: list[str] = []
    for j, raw in enumerate(_as_array(content, f"{where}.content")):
        part_where = f"{where}.content[{j}]"
        part = _as_object(raw, part_where)
        part_type = _block_type(part, part_where)
        if part_type not in ("text", "refusal"):
            raise RequestError(
                f"`{part_where}.type` must be 'text' or 'refusal', got {part_type!r}.",
                param=f"{part_where}.type",
            )
        texts.append(_as_string(part.get(part_type), f"{part_where}.{part_type}"))
    return texts


def _tool_use_block(call: JSON, where: str) -> JSON:
    call_type = call.get("type", "function")
    if call_type != "function":
        raise RequestError(
            f"`{where}.type` must be 'function' for Anthropic models, got {call_type!r}.",
            param=f"{where}.type",
        )
    function = _as_object(call.get("function"), f"{where}.function")
    return {
        "type": "tool_use",
        "id": _as_string(call.get("id"), f"{where}.id"),
        "name": _as_string(function.get("name"), f"{where}.function.name"),
        "input": _decode_arguments(function.get("arguments"), f"{where}.function.arguments"),
    }


def _decode_arguments(arguments: Any, where: str, error: ErrorClass = RequestError) -> JSON:
    """Tool-call ``arguments`` (a JSON string) as the object Anthropic's ``input`` must be."""
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    try:
        value = json.loads(_as_string(arguments, where, error))
    except ValueError as exc:
        raise error(f"`{where}` is not valid JSON: {exc}.", param=where) from exc
    if not isinstance(value, dict):
        raise error(f"`{where}` must encode a JSON object, got {_kind(value)}.", param=where)
    return value


def _tool_result_blocks(message: JSON, where: str) -> list[JSON]:
    block: JSON = {
        "type": "tool_result",
        "tool_use_id": _as_string(message.get("tool_call_id"), f"{where}.tool_call_id"),
    }
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    else:
        texts = _part_texts(content, where)
        block["content"] = [text_block for text in texts for text_block in _text_blocks(text)]
    return [block]


_TURN_CONVERTERS: Final[Mapping[str, Callable[[JSON, str], list[JSON]]]] = MappingProxyType(
    {"user": _user_blocks, "assistant": _assistant_blocks, "tool": _tool_result_blocks}
)


def _response_format_instruction(value: Any) -> str | None:
    if value is None:
        return None
    response_format = _as_object(value, "response_format")
    format_type = response_format.get("type")
    if format_type == "text":
        return None
    if format_type == "json_object":
        return _JSON_OBJECT_INSTRUCTION
    if format_type == "json_schema":
        spec = _as_object(response_format.get("json_schema"), "response_format.json_schema")
        name = _as_string(spec.get("name"), "response_format.json_schema.name")
        schema = _as_object(spec.get("schema", {}), "response_format.json_schema.schema")
        return (
            f"Respond with a single valid JSON value that conforms to the JSON Schema named {name!r} "
            "below, and nothing else: no Markdown code fences, no text before or after it.\n"
            + json.dumps(schema, ensure_ascii=False)
        )
    raise RequestError(
        f"`response_format.type` must be text, json_object or json_schema, got {format_type!r}.",
        param="response_format.type",
    )


def _tool_fields(body: JSON) -> JSON:
    raw_tools = body.get("tools")
    if raw_tools is None or raw_tools == []:
        return {}
    out: JSON = {
        "tools": [
            _tool(_as_object(t, f"tools[{i}]"), f"tools[{i}]")
            for i, t in enumerate(_as_array(raw_tools, "tools"))
        ]
    }
    choice = _tool_choice(body.get("tool_choice"))
    if body.get("parallel_tool_calls") is False:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    if choice is not None:
        out["tool_choice"] = choice
    return out


def _tool(tool: JSON, where: str) -> JSON:
    if tool.get("type") != "function":
        raise RequestError(
            f"`{where}.type` must be 'function' for Anthropic models, got {tool.get('type')!r}.",
            param=f"{where}.type",
        )
    function = _as_object(tool.get("function"), f"{where}.function")
    out: JSON = {"name": _as_string(function.get("name"), f"{where}.function.name")}
    description = function.get("description")
    if description is not None:
        out["description"] = _as_string(description, f"{where}.function.description")
    parameters = function.get("parameters")
    out["input_schema"] = (
        {"type": "object", "properties": {}}
        if parameters is None
        # Copied so the upstream body never aliases the caller's request.
        else copy.deepcopy(_as_object(parameters, f"{where}.function.parameters"))
    )
    return out


def _tool_choice(value: Any) -> JSON | None:
    if value is None:
        return None
    if isinstance(value, str) and value in _TOOL_CHOICE_TYPE:
        return {"type": _TOOL_CHOICE_TYPE[value]}
    if isinstance(value, dict) and value.get("type") == "function":
        function = _as_object(value.get("function"), "tool_choice.function")
        return {"type": "tool", "name": _as_string(function.get("name"), "tool_choice.function.name")}
    raise RequestError(
        "`tool_choice` must be none, auto, required or {type: function, function: {name}} "
        "for Anthropic models.",
        param="tool_choice",
    )


def _stop_fields(body: JSON) -> JSON:
    stop = body.get("stop")
    if stop is None:
        return {}
    if isinstance(stop, str):
        return {"stop_sequences": [stop]}
    sequences = [_as_string(s, f"stop[{i}]") for i, s in enumerate(_as_array(stop, "stop"))]
    return {"stop_sequences": sequences} if sequences else {}


def _sampling_fields(body: JSON) -> JSON:
    temperature = body.get("temperature")
    top_p = body.get("top_p")
    top_p = None if top_p is None else _as_number(top_p, "top_p")
    if temperature is not None:
        return {"temperature": min(max(_as_number(temperature, "temperature"), 0.0), 1.0)}
    return {} if top_p is None else {"top_p": top_p}


def _metadata_fields(body: JSON) -> JSON:
    for name in ("user", "safety_identifier"):
        value = body.get(name)
        if value is not None and _as_string(value, name):
            return {"metadata": {"user_id": value}}
    return {}


# --------------------------------------------------------------------------- response


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
        "finish_reason": _finish_reason(resp.get("stop_reason")),
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
        "usage": _chat_usage(usage if isinstance(usage, dict) else {}),
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
            self.tool_calls.append(_chat_tool_call(block, where))
        # redacted_thinking and server-tool blocks have no OpenAI counterpart.

    def content(self) -> str | None:
        if not self.texts and self.tool_calls:
            return None
        return "".join(self.texts)


def _chat_tool_call(block: JSON, where: str) -> JSON:
    tool_input = block.get("input")
    return {
        "id": _as_string(block.get("id"), f"{where}.id", _UPSTREAM),
        "type": "function",
        "function": {
            "name": _as_string(block.get("name"), f"{where}.name", _UPSTREAM),
            "arguments": _encode_arguments({} if tool_input is None else tool_input),
        },
    }


def _finish_reason(stop_reason: Any) -> str:
    return FINISH_REASON_BY_STOP_REASON.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _chat_usage(usage: Mapping[str, Any]) -> JSON:
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


# --------------------------------------------------------------------------- stream


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
        chunk = self._chunk({}, _finish_reason(stop_reason))
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
        usage_chunk["usage"] = _chat_usage(self._usage)
        return [usage_chunk]


def _stream_error(data: JSON) -> StreamInterrupted:
    error = data.get("error")
    error = error if isinstance(error, dict) else {}
    message = error.get("message") or "no message"
    return StreamInterrupted(f"The Anthropic stream failed ({error.get('type') or 'error'}): {message}")
