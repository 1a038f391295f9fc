"""OpenAI Chat Completions → Anthropic Messages (the answers come back through :mod:`.response_to_chat`).

Used by the ``anthropic`` provider: the canonical (OpenAI-shaped) request becomes an Anthropic
``POST /v1/messages`` body; the upstream's Message or its stream events become an OpenAI
``chat.completion`` or ``chat.completion.chunk`` (:mod:`.response_to_chat`, :mod:`.stream_to_chat`).
Pure functions, no I/O.

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
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from interlace.core.errors import (
    InterlaceError,
    RequestError,
)
from interlace.protocols.anthropic._validation import (
    _as_array,
    _as_int,
    _as_number,
    _as_object,
    _as_string,
    _block_type,
    _body,
    _kind,
    _text_blocks,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["DEFAULT_MAX_TOKENS", "chat_request_to_messages", "decode_arguments"]

JSON = dict[str, Any]
ErrorClass = type[InterlaceError]

#: ``max_tokens`` sent upstream when the client set neither ``max_tokens`` nor ``max_completion_tokens``.
DEFAULT_MAX_TOKENS: Final = 4096

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
        "input": decode_arguments(function.get("arguments"), f"{where}.function.arguments"),
    }


def decode_arguments(arguments: Any, where: str, error: ErrorClass = RequestError) -> JSON:
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
