"""Anthropic ⇄ OpenAI translation: golden transcripts, wire-shape checks, round trips and errors.

Each file under ``tests/golden/anthropic/`` is one case: ``direction`` (which translation),
``options`` (its keyword arguments), ``input`` and ``expected``. Stream inputs/outputs are lists of
OpenAI chunks or of Anthropic ``{"event", "data"}`` server-sent events.

Goldens are checked twice: against the translation, and against the installed ``openai`` and
``anthropic`` SDKs' wire types (so they are real wire shapes), and streamed goldens are also run
through the SDKs' own stream accumulators and compared with the non-streaming translation.
"""

from __future__ import annotations

import collections.abc
import copy
import functools
import json
import types
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, Required, Union, get_args, get_origin, get_type_hints

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
)
from anthropic.types.shared import ErrorResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)
from pydantic import BaseModel, TypeAdapter, ValidationError
from typing_extensions import is_typeddict

from interlace.core.errors import (
    InterlaceError,
    RequestError,
    StreamInterrupted,
    UpstreamProtocolError,
)
from interlace.protocols.anthropic import (
    DEFAULT_MAX_TOKENS,
    ChatChunksToMessagesStream,
    MessagesStreamToChatChunks,
    chat_request_to_messages,
    chat_response_to_messages,
    messages_request_to_chat,
    messages_response_to_chat,
)

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden" / "anthropic"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))
UPSTREAM = "claude-sonnet-4-5-20250929"
#: Accepted by anthropic-version 2023-06-01 but gone from the 2.x SDK types (API version 2026-10-21).
LEGACY_SAMPLING = frozenset({"temperature", "top_p", "top_k"})

STREAM_EVENT = TypeAdapter(RawMessageStreamEvent)
HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def golden_cases(direction: str) -> list[Any]:
    return [pytest.param(load(p), id=p.stem) for p in GOLDEN_FILES if load(p)["direction"] == direction]


# --------------------------------------------------------------------------- running a case


def feed_anthropic_events(events: list[dict[str, Any]], **options: Any) -> tuple[list[dict[str, Any]], bool]:
    translator = MessagesStreamToChatChunks(**options)
    chunks = [chunk for event in events for chunk in translator.feed(event["event"], event["data"])]
    return chunks, translator.finished


def feed_chat_chunks(chunks: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    translator = ChatChunksToMessagesStream(**options)
    events = [event for chunk in chunks for event in translator.feed(chunk)]
    events += translator.finish()
    return [{"event": name, "data": data} for name, data in events]


def run(case: dict[str, Any]) -> Any:
    direction, options, given_input = case["direction"], case["options"], copy.deepcopy(case["input"])
    if direction == "chat_request_to_messages":
        return chat_request_to_messages(given_input, **options)
    if direction == "messages_response_to_chat":
        return messages_response_to_chat(given_input, **options)
    if direction == "messages_request_to_chat":
        return messages_request_to_chat(given_input, **options)
    if direction == "chat_response_to_messages":
        return chat_response_to_messages(given_input, **options)
    if direction == "messages_stream_to_chat_chunks":
        chunks, finished = feed_anthropic_events(given_input, **options)
        assert finished
        return chunks
    if direction == "chat_chunks_to_messages_stream":
        return feed_chat_chunks(given_input, **options)
    raise AssertionError(f"unknown direction {direction}")


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_golden(path: Path) -> None:
    case = load(path)
    before = copy.deepcopy(case["input"])
    result = run(case)
    assert json.loads(json.dumps(result)) == case["expected"]
    assert case["input"] == before  # run() works on a copy, but the translators must not need one either


def test_every_direction_and_required_case_has_goldens() -> None:
    directions = {load(p)["direction"] for p in GOLDEN_FILES}
    assert directions == {
        "chat_request_to_messages",
        "messages_response_to_chat",
        "messages_stream_to_chat_chunks",
        "messages_request_to_chat",
        "chat_response_to_messages",
        "chat_chunks_to_messages_stream",
    }
    stop_reasons = {
        load(p)["input"]["stop_reason"]
        for p in GOLDEN_FILES
        if load(p)["direction"] == "messages_response_to_chat"
    }
    assert {"end_turn", "stop_sequence", "max_tokens", "tool_use", "refusal"} <= stop_reasons


# --------------------------------------------------------------------------- wire shapes (SDK types)


@functools.cache
def _hints(typed_dict: type) -> dict[str, Any]:
    return get_type_hints(typed_dict, include_extras=True)


def _typeddict_problems(value: Any, tp: type, path: str, extra: frozenset[str]) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected an object for {tp.__name__}"]
    hints = _hints(tp)
    problems = [
        f"{path}.{key}: not a field of {tp.__name__}"
        for key in value
        if key not in hints and key not in extra
    ]
    for key, hint in hints.items():
        # With postponed annotations typing cannot see Required[] markers, hence both checks.
        required = get_origin(hint) is Required or (
            key in getattr(tp, "__required_keys__", ()) and get_origin(hint) is not NotRequired
        )
        if key in value:
            problems += _problems(value[key], hint, f"{path}.{key}")
        elif required:
            problems.append(f"{path}.{key}: required by {tp.__name__}")
    return problems


def _union_problems(value: Any, arms: tuple[Any, ...], path: str) -> list[str]:
    results = [_problems(value, arm, path) for arm in arms]
    return [] if any(not r for r in results) else min(results, key=len)


def _container_problems(value: Any, tp: Any, path: str) -> list[str] | None:
    origin = get_origin(tp)
    if origin in (list, collections.abc.Iterable, collections.abc.Sequence):
        if not isinstance(value, list):
            return [f"{path}: expected an array"]
        (item,) = get_args(tp)
        return [p for i, v in enumerate(value) for p in _problems(v, item, f"{path}[{i}]")]
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, dict):
            return [f"{path}: expected an object"]
        return [p for k, v in value.items() for p in _problems(v, get_args(tp)[1], f"{path}.{k}")]
    return None


def _scalar_problems(value: Any, tp: type, path: str) -> list[str]:
    if issubclass(tp, BaseModel):
        try:
            tp.model_validate(value)
        except ValidationError as exc:
            return [f"{path}: {exc.error_count()} errors as {tp.__name__}"]
        return []
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, tp)
    return [] if ok else [f"{path}: expected {tp.__name__}, got {type(value).__name__}"]


def _special_problems(value: Any, tp: Any, path: str) -> list[str] | None:
    origin = get_origin(tp)
    if tp is Any or tp is object:
        return []
    if tp is type(None):
        return [] if value is None else [f"{path}: expected null"]
    if origin is Literal:
        return [] if value in get_args(tp) else [f"{path}: {value!r} is not one of {get_args(tp)}"]
    if origin in (Union, types.UnionType):
        return _union_problems(value, get_args(tp), path)
    return None


def _problems(value: Any, tp: Any, path: str = "$", extra: frozenset[str] = frozenset()) -> list[str]:
    """Where ``value`` (decoded JSON) does not fit the SDK type ``tp`` (TypedDicts: no unknown keys)."""
    if get_origin(tp) in (Annotated, Required, NotRequired):
        return _problems(value, get_args(tp)[0], path, extra)
    if is_typeddict(tp):
        return _typeddict_problems(value, tp, path, extra)
    for check in (_special_problems, _container_problems):
        found = check(value, tp, path)
        if found is not None:
            return found
    if isinstance(tp, type):
        return _scalar_problems(value, tp, path)
    return [f"{path}: cannot check {tp!r}"]


def assert_openai_request(body: dict[str, Any]) -> None:
    params = CompletionCreateParamsStreaming if body.get("stream") else CompletionCreateParamsNonStreaming
    assert _problems(body, params) == []


def assert_anthropic_request(body: dict[str, Any]) -> None:
    params = MessageCreateParamsStreaming if body.get("stream") else MessageCreateParamsNonStreaming
    assert _problems(body, params, extra=LEGACY_SAMPLING) == []


def assert_openai_response(body: dict[str, Any]) -> None:
    ChatCompletion.model_validate(body)


def assert_anthropic_response(body: dict[str, Any]) -> None:
    Message.model_validate(body)


def assert_openai_chunks(chunks: list[dict[str, Any]]) -> None:
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)


def assert_anthropic_events(events: list[dict[str, Any]]) -> None:
    for event in events:
        assert event["data"]["type"] == event["event"]
        if event["event"] != "ping":
            STREAM_EVENT.validate_python(event["data"])


WireCheck = Callable[[Any], None]
WIRE_CHECKS: dict[str, tuple[WireCheck, WireCheck]] = {
    "chat_request_to_messages": (assert_openai_request, assert_anthropic_request),
    "messages_response_to_chat": (assert_anthropic_response, assert_openai_response),
    "messages_stream_to_chat_chunks": (assert_anthropic_events, assert_openai_chunks),
    "messages_request_to_chat": (assert_anthropic_request, assert_openai_request),
    "chat_response_to_messages": (assert_openai_response, assert_anthropic_response),
    "chat_chunks_to_messages_stream": (assert_openai_chunks, assert_anthropic_events),
}


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_golden_is_real_wire_data(path: Path) -> None:
    case = load(path)
    check_input, check_expected = WIRE_CHECKS[case["direction"]]
    check_input(case["input"])
    check_expected(case["expected"])


def test_wire_checker_rejects_invented_fields() -> None:
    assert _problems(
        {"model": "m", "max_tokens": 1, "messages": [], "stop": ["x"]}, MessageCreateParamsNonStreaming
    )
    assert _problems(
        {
            "model": "m",
            "max_tokens": 1,
            "messages": [{"role": "user", "content": [{"type": "txt", "text": "a"}]}],
        },
        MessageCreateParamsNonStreaming,
    )
    assert not _problems(
        {
            "model": "m",
            "max_tokens": 1,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}],
        },
        MessageCreateParamsNonStreaming,
    )


# --------------------------------------------------------------------------- streams vs the SDK accumulators


def accumulate_anthropic(events: list[dict[str, Any]]) -> dict[str, Any]:
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for event in events:
        if event["event"] == "ping":
            continue
        parsed = STREAM_EVENT.validate_python(event["data"])
        snapshot = accumulate_event(event=parsed, current_snapshot=snapshot, json_bufs=json_bufs)
    assert snapshot is not None
    return snapshot.model_dump(exclude_none=True)


def accumulate_openai(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    # The snapshot, not get_final_completion(): that one refuses finish_reason "length".
    return state.current_completion_snapshot.model_dump(exclude_none=True)


def openai_summary(completion: dict[str, Any]) -> dict[str, Any]:
    choice = completion["choices"][0]
    message = choice["message"]
    return {
        "content": message.get("content") or None,
        "tool_calls": [
            (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in message.get("tool_calls") or []
        ],
        "finish_reason": choice["finish_reason"],
        "usage": {k: v for k, v in (completion.get("usage") or {}).items() if k.endswith("tokens")},
    }


def anthropic_summary(message: dict[str, Any]) -> dict[str, Any]:
    usage = message["usage"]
    return {
        "content": [
            {k: block[k] for k in ("type", "text", "id", "name", "input") if k in block}
            for block in message["content"]
        ],
        "stop_reason": message["stop_reason"],
        "stop_sequence": message.get("stop_sequence"),
        "usage": {
            k: usage.get(k) or 0
            for k in (
                "input_tokens",
                "output_tokens",
                "cache_read_input_tokens",
                "cache_creation_input_tokens",
            )
        },
    }


@pytest.mark.parametrize("case", golden_cases("messages_stream_to_chat_chunks"))
def test_anthropic_stream_agrees_with_the_non_streaming_translation(case: dict[str, Any]) -> None:
    """The upstream stream, accumulated by the Anthropic SDK and translated whole, reads like our chunks."""
    message = accumulate_anthropic(case["input"])
    whole = messages_response_to_chat(message, model="m", created=0)
    streamed = accumulate_openai(case["expected"])
    expected = openai_summary(whole)
    if not case["options"]["include_usage"]:
        expected["usage"] = {}
    assert openai_summary(streamed) == expected


@pytest.mark.parametrize("case", golden_cases("chat_chunks_to_messages_stream"))
def test_chat_stream_agrees_with_the_non_streaming_translation(case: dict[str, Any]) -> None:
    """The canonical stream, accumulated by the OpenAI SDK and translated whole, reads like our events."""
    completion = accumulate_openai(case["input"])
    whole = chat_response_to_messages(completion, model="m")
    assert anthropic_summary(accumulate_anthropic(case["expected"])) == anthropic_summary(whole)


# --------------------------------------------------------------------------- round trips (hypothesis)

NAMES = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_-]{0,30}", fullmatch=True)
CALL_IDS = st.from_regex(r"call_[A-Za-z0-9]{8,24}", fullmatch=True)
TEXT = st.text(min_size=1, max_size=40).filter(lambda s: s.strip())
JSON_SCALARS = st.none() | st.booleans() | st.integers(-(10**9), 10**9) | st.text(max_size=12)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
ARGUMENTS = st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=4)


@st.composite
def tool_calls(draw: st.DrawFn, *, min_size: int = 1) -> list[dict[str, Any]]:
    ids = draw(st.lists(CALL_IDS, min_size=min_size, max_size=3, unique=True))
    return [
        {
            "id": i,
            "type": "function",
            "function": {"name": draw(NAMES), "arguments": json.dumps(draw(ARGUMENTS))},
        }
        for i in ids
    ]


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Canonical conversations whose turns alternate once tool messages join the next user turn."""
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(TEXT)})
    for _ in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": draw(TEXT)})
        if not draw(st.booleans()):
            messages.append({"role": "assistant", "content": draw(TEXT)})
            continue
        calls = draw(tool_calls())
        messages.append({"role": "assistant", "content": draw(st.none() | TEXT), "tool_calls": calls})
        messages += [
            {"role": "tool", "tool_call_id": c["id"], "content": draw(st.text(max_size=30))} for c in calls
        ]
        if draw(st.booleans()):
            messages.append({"role": "assistant", "content": draw(TEXT)})
    return messages


def normalized(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = copy.deepcopy(messages)
    for message in out:
        for call in message.get("tool_calls", []):
            call["function"]["arguments"] = json.loads(call["function"]["arguments"])
    return out


@HYPOTHESIS
@given(conversations())
def test_request_round_trip_preserves_the_conversation(messages: list[dict[str, Any]]) -> None:
    upstream = chat_request_to_messages({"model": "alias", "messages": messages}, upstream_model=UPSTREAM)
    assert_anthropic_request(upstream)
    back = messages_request_to_chat({**upstream, "model": "alias"})
    assert normalized(back["messages"]) == normalized(messages)
    assert back["max_tokens"] == DEFAULT_MAX_TOKENS


@st.composite
def chat_completions(draw: st.DrawFn) -> dict[str, Any]:
    calls = draw(st.none() | tool_calls())
    finish = draw(
        st.sampled_from(["tool_calls", "length"] if calls else ["stop", "length", "content_filter"])
    )
    content = draw(st.none() | st.text(min_size=1, max_size=60)) if calls else draw(st.text(max_size=60))
    prompt = draw(st.integers(0, 10**6))
    completion = draw(st.integers(0, 10**5))
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": "chatcmpl-" + draw(st.from_regex(r"[A-Za-z0-9]{20,30}", fullmatch=True)),
        "object": "chat.completion",
        "created": 1795772001,
        "model": "gpt-4.1",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": draw(st.integers(0, prompt))},
        },
    }


@HYPOTHESIS
@given(chat_completions())
def test_response_round_trip_preserves_text_tool_calls_and_finish_reason(completion: dict[str, Any]) -> None:
    message = chat_response_to_messages(completion, model="alias")
    assert_anthropic_response(message)
    back = messages_response_to_chat(message, model="alias", created=completion["created"])
    assert_openai_response(back)
    assert back["id"] == completion["id"]
    assert openai_summary(back) == openai_summary(completion)
    details = back["usage"]["prompt_tokens_details"]
    assert details["cached_tokens"] == completion["usage"]["prompt_tokens_details"]["cached_tokens"]


@st.composite
def chat_chunk_streams(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A canonical chunk stream and what it adds up to."""
    texts = draw(st.lists(st.text(min_size=1, max_size=20), max_size=4))
    calls = draw(st.none() | tool_calls())
    finish = draw(
        st.sampled_from(["tool_calls", "length"] if calls else ["stop", "length", "content_filter"])
    )
    base = {"id": "chatcmpl-abc", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1"}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    chunks = [chunk({"role": "assistant", "content": ""})] + [chunk({"content": t}) for t in texts]
    for index, call in enumerate(calls or []):
        head = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [head]}))
        arguments = call["function"]["arguments"]
        cuts = sorted(draw(st.lists(st.integers(0, len(arguments)), max_size=3)))
        pieces = [arguments[a:b] for a, b in zip([0, *cuts], [*cuts, len(arguments)], strict=True)]
        chunks += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]}) for p in pieces if p
        ]
    chunks.append(chunk({}, finish))
    usage = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
    chunks.append({**base, "choices": [], "usage": usage})
    expected = {
        "content": "".join(texts) or None,
        "tool_calls": [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls or []],
        "finish_reason": finish,
        "usage": usage,
    }
    return chunks, expected


def add_up(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    content = ""
    calls: dict[int, list[str]] = {}
    finish = usage = None
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            for call in delta.get("tool_calls", []):
                entry = calls.setdefault(call["index"], [call.get("id"), call["function"].get("name"), ""])
                entry[2] += call["function"].get("arguments") or ""
            finish = choice["finish_reason"] or finish
    usage = {
        k: v for k, v in (usage or {}).items() if k in ("prompt_tokens", "completion_tokens", "total_tokens")
    }
    return {
        "content": content or None,
        "tool_calls": [tuple(calls[i]) for i in sorted(calls)],
        "finish_reason": finish,
        "usage": usage,
    }


@HYPOTHESIS
@given(chat_chunk_streams())
def test_stream_round_trip_preserves_text_tool_calls_and_finish_reason(
    stream: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    chunks, expected = stream
    events = feed_chat_chunks(chunks, model="alias")
    assert_anthropic_events(events)
    back, finished = feed_anthropic_events(events, model="alias", include_usage=True, created=1)
    assert finished
    assert_openai_chunks(back)
    assert add_up(back) == expected


# --------------------------------------------------------------------------- mapping tables


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        (None, "stop"),
        ("some_future_reason", "stop"),
    ],
)
def test_stop_reason_to_finish_reason(stop_reason: str | None, finish_reason: str) -> None:
    resp: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": UPSTREAM,
        "content": [],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    assert (
        messages_response_to_chat(resp, model="m", created=0)["choices"][0]["finish_reason"] == finish_reason
    )


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_finish_reason_to_stop_reason(finish_reason: str | None, stop_reason: str) -> None:
    resp = {
        "id": "chatcmpl-1",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": finish_reason}
        ],
    }
    assert chat_response_to_messages(resp, model="m")["stop_reason"] == stop_reason


def test_finish_stop_with_tool_calls_is_tool_use() -> None:
    """Some OpenAI-compatible servers say "stop" after tool calls; Anthropic clients loop on tool_use."""
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    resp = {
        "id": "x",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "stop",
            }
        ],
    }
    message = chat_response_to_messages(resp, model="m")
    assert message["stop_reason"] == "tool_use"
    assert message["content"] == [{"type": "tool_use", "id": "call_1", "name": "f", "input": {}}]


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        ("none", None, {"type": "none"}),
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
        (None, True, None),
    ],
)
def test_tool_choice_both_ways(
    tool_choice: Any, parallel: bool | None, expected: dict[str, Any] | None
) -> None:
    body: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
            }
        ],
    }
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    upstream = chat_request_to_messages(body, upstream_model=UPSTREAM)
    assert upstream.get("tool_choice") == expected
    back = messages_request_to_chat(upstream)
    assert back.get("tool_choice") == tool_choice or (
        tool_choice is None and back.get("tool_choice") == "auto"
    )
    assert back.get("parallel_tool_calls") == (False if parallel is False and tool_choice != "none" else None)


def test_tool_choice_without_tools_is_not_sent() -> None:
    upstream = chat_request_to_messages(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tool_choice": "none"},
        upstream_model=UPSTREAM,
    )
    assert "tool_choice" not in upstream
    assert "tools" not in upstream


# --------------------------------------------------------------------------- request details


def test_forward_sampling_false_drops_temperature_and_top_p() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.3, "top_p": 0.2}
    assert "temperature" not in chat_request_to_messages(
        body, upstream_model=UPSTREAM, forward_sampling=False
    )
    with pytest.raises(RequestError) as info:
        chat_request_to_messages({**body, "top_p": "x"}, upstream_model=UPSTREAM, forward_sampling=False)
    assert info.value.param == "top_p"


def test_top_p_alone_is_forwarded() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_p": 0.2}
    assert chat_request_to_messages(body, upstream_model=UPSTREAM)["top_p"] == 0.2


def test_json_object_response_format_is_an_instruction() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_object"},
    }
    system = chat_request_to_messages(body, upstream_model=UPSTREAM)["system"]
    assert isinstance(system, str)
    assert "JSON object" in system
    text_format = {**body, "response_format": {"type": "text"}}
    assert "system" not in chat_request_to_messages(text_format, upstream_model=UPSTREAM)


def test_tool_results_go_first_in_a_user_turn() -> None:
    messages = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "user", "content": "and also"},
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
    ]
    turns = chat_request_to_messages({"model": "m", "messages": messages}, upstream_model=UPSTREAM)[
        "messages"
    ]
    assert [b["type"] for b in turns[-1]["content"]] == ["tool_result", "text"]


def test_empty_text_and_empty_assistant_turns_are_dropped() -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "  "}, {"type": "text", "text": "hello"}]},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "again"},
    ]
    turns = chat_request_to_messages({"model": "m", "messages": messages}, upstream_model=UPSTREAM)[
        "messages"
    ]
    assert turns == [
        {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "again"}]}
    ]


def test_pdf_file_part_becomes_a_document_and_back() -> None:
    part = {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
    }
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": [part, {"type": "text", "text": "summarise"}]}],
    }
    upstream = chat_request_to_messages(body, upstream_model=UPSTREAM)
    assert upstream["messages"][0]["content"][0] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        "title": "a.pdf",
    }
    assert messages_request_to_chat(upstream)["messages"][0]["content"][0] == part


def test_inbound_system_role_message_and_empty_system() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "system": [],
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "be kind"}]},
            {"role": "user", "content": "hi"},
        ],
    }
    assert messages_request_to_chat(body)["messages"] == [
        {"role": "system", "content": "be kind"},
        {"role": "user", "content": "hi"},
    ]


def test_inbound_thinking_only_assistant_turn_is_skipped() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"}]},
            {"role": "user", "content": "well?"},
        ],
    }
    assert [m["role"] for m in messages_request_to_chat(body)["messages"]] == ["user", "user"]


# --------------------------------------------------------------------------- stream details


def _start(message_id: str = "msg_1") -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": UPSTREAM,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 1},
        },
    }


def test_anthropic_stream_is_finished_only_after_message_stop() -> None:
    translator = MessagesStreamToChatChunks(model="m", include_usage=True, created=0)
    translator.feed("message_start", _start())
    translator.feed(
        "message_delta",
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
    )
    before_stop = translator.finished
    (usage_chunk,) = translator.feed("message_stop", {"type": "message_stop"})
    assert (before_stop, translator.finished) == (False, True)
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["total_tokens"] == 5


def test_anthropic_stream_error_event_raises_stream_interrupted() -> None:
    translator = MessagesStreamToChatChunks(model="m")
    translator.feed("message_start", _start())
    with pytest.raises(StreamInterrupted) as info:
        translator.feed(
            "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        )
    assert "Overloaded" in info.value.message
    assert "overloaded_error" in info.value.message


def test_anthropic_stream_unknown_events_are_ignored() -> None:
    translator = MessagesStreamToChatChunks(model="m")
    assert translator.feed("ping", {"type": "ping"}) == []
    translator.feed("message_start", _start())
    assert translator.feed("some_future_event", {"type": "some_future_event"}) == []
    delta = {"type": "citations_delta", "citation": {}}
    assert (
        translator.feed("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        == []
    )


def test_chat_stream_text_after_tool_calls_starts_a_new_block() -> None:
    translator = ChatChunksToMessagesStream(model="m", message_id="msg_x")
    call = {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    chunks = [
        {"id": "a", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "before"}}]},
        {"id": "a", "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]},
        {"id": "a", "choices": [{"index": 0, "delta": {"content": "after"}}]},
    ]
    events = [event for chunk in chunks for event in translator.feed(chunk)] + translator.finish()
    starts = [(d["index"], d["content_block"]["type"]) for name, d in events if name == "content_block_start"]
    assert starts == [(0, "text"), (1, "tool_use"), (2, "text")]
    assert [name for name, _ in events].count("content_block_stop") == 3
    assert events[0][1]["message"]["id"] == "msg_x"
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert translator.finish() == []
    assert translator.feed(chunks[0]) == []


def test_chat_stream_without_chunks_still_yields_a_complete_message() -> None:
    events = ChatChunksToMessagesStream(model="m").finish()
    assert [name for name, _ in events] == ["message_start", "message_delta", "message_stop"]
    assert events[0][1]["message"]["id"].startswith("msg_")
    assert_anthropic_events([{"event": name, "data": data} for name, data in events])


def test_chat_stream_tool_call_without_id_gets_one() -> None:
    translator = ChatChunksToMessagesStream(model="m", message_id="msg_x")
    call = {"index": 0, "function": {"name": "f", "arguments": ""}}
    events = translator.feed({"id": "a", "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
    assert events[1][1]["content_block"]["id"] == "toolu_msg_x_0"


def test_error_event_shape() -> None:
    name, data = ChatChunksToMessagesStream.error_event("Upstream timed out", error_type="timeout_error")
    assert name == "error"
    assert data == {"type": "error", "error": {"type": "timeout_error", "message": "Upstream timed out"}}
    ErrorResponse.model_validate(ChatChunksToMessagesStream.error_event("boom")[1])


# --------------------------------------------------------------------------- errors

MSG = [{"role": "user", "content": "hi"}]
CALL_BAD_JSON = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": '}}
CALL_NOT_OBJECT = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "[1, 2]"}}


def _image(url: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": "hi"}, "messages"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "messages": [*MSG, {"role": "robot", "content": "beep"}]}, "messages[1].role"),
        ({"model": "m", "messages": [{"content": "no role"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"text": "untyped"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}],
            },
            "messages[0].content[0].type",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]},
            "messages[0].content[0].text",
        ),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
        (
            {"model": "m", "messages": [*MSG, {"role": "assistant", "tool_calls": [CALL_BAD_JSON]}]},
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            {"model": "m", "messages": [*MSG, {"role": "assistant", "tool_calls": [CALL_NOT_OBJECT]}]},
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            {
                "model": "m",
                "messages": [*MSG, {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom"}]}],
            },
            "messages[1].tool_calls[0].type",
        ),
        ({"model": "m", "messages": [*MSG, {"role": "tool", "content": "r"}]}, "messages[1].tool_call_id"),
        (
            {"model": "m", "messages": _image("ftp://example.com/a.png")},
            "messages[0].content[0].image_url.url",
        ),
        (
            {"model": "m", "messages": _image("data:image/bmp;base64,Qk0=")},
            "messages[0].content[0].image_url.url",
        ),
        (
            {"model": "m", "messages": _image("data:image/png,rawbytes")},
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}],
            },
            "messages[0].content[0].file.file_data",
        ),
        ({"model": "m", "messages": MSG, "n": 2}, "n"),
        ({"model": "m", "messages": MSG, "logprobs": True}, "logprobs"),
        ({"model": "m", "messages": MSG, "top_logprobs": 3}, "top_logprobs"),
        ({"model": "m", "messages": MSG, "functions": [{"name": "f"}]}, "functions"),
        ({"model": "m", "messages": MSG, "modalities": ["text", "audio"]}, "modalities"),
        ({"model": "m", "messages": MSG, "max_tokens": "100"}, "max_tokens"),
        ({"model": "m", "messages": MSG, "max_completion_tokens": -1}, "max_completion_tokens"),
        ({"model": "m", "messages": MSG, "temperature": "hot"}, "temperature"),
        ({"model": "m", "messages": MSG, "stop": [1]}, "stop[0]"),
        (
            {"model": "m", "messages": MSG, "tools": [{"type": "custom", "custom": {"name": "x"}}]},
            "tools[0].type",
        ),
        (
            {"model": "m", "messages": MSG, "tools": [{"type": "function", "function": {}}]},
            "tools[0].function.name",
        ),
        (
            {
                "model": "m",
                "messages": MSG,
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}},
            },
            "tool_choice",
        ),
        ({"model": "m", "messages": MSG, "response_format": {"type": "xml"}}, "response_format.type"),
        (
            {"model": "m", "messages": MSG, "response_format": {"type": "json_schema"}},
            "response_format.json_schema",
        ),
        ({"model": "m", "messages": MSG, "user": 7}, "user"),
    ],
)
def test_openai_request_errors_name_the_field(body: Any, param: str) -> None:
    with pytest.raises(RequestError) as info:
        chat_request_to_messages(body, upstream_model=UPSTREAM)
    assert info.value.param == param
    assert f"`{param}`" in info.value.message or param in info.value.message


def test_request_body_must_be_an_object() -> None:
    with pytest.raises(RequestError) as info:
        chat_request_to_messages([], upstream_model=UPSTREAM)  # type: ignore[arg-type]
    assert info.value.param is None
    with pytest.raises(RequestError):
        messages_request_to_chat("{}")  # type: ignore[arg-type]


A = {"model": "m", "max_tokens": 10}
TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": 10, "messages": MSG}, "model"),
        ({"model": "m", "messages": MSG}, "max_tokens"),
        (A, "messages"),
        ({**A, "messages": []}, "messages"),
        ({**A, "messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({**A, "messages": [{"role": "user"}]}, "messages[0].content"),
        ({**A, "messages": [{"role": "user", "content": []}]}, "messages[0].content"),
        (
            {**A, "messages": [{"role": "user", "content": [{"text": "untyped"}]}]},
            "messages[0].content[0].type",
        ),
        ({**A, "messages": [{"role": "user", "content": [TOOL_USE]}]}, "messages[0].content[0].type"),
        (
            {
                **A,
                "messages": [{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}],
            },
            "messages[0].content[0].type",
        ),
        (
            {**A, "messages": [*MSG, {"role": "assistant", "content": [{**TOOL_USE, "input": "{}"}]}]},
            "messages[1].content[0].input",
        ),
        (
            {
                **A,
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ],
            },
            "messages[0].content[0].source.type",
        ),
        (
            {
                **A,
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "base64", "data": "x"}}],
                    }
                ],
            },
            "messages[0].content[0].source.media_type",
        ),
        (
            {
                **A,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "text", "media_type": "text/plain", "data": "hi"},
                            }
                        ],
                    }
                ],
            },
            "messages[0].content[0].source",
        ),
        (
            {
                **A,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [
                                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
                                ],
                            }
                        ],
                    }
                ],
            },
            "messages[0].content[0].content[0].type",
        ),
        (
            {**A, "messages": [{"role": "user", "content": [{"type": "tool_result", "content": "r"}]}]},
            "messages[0].content[0].tool_use_id",
        ),
        ({**A, "messages": MSG, "system": [{"type": "image", "source": {}}]}, "system[0].type"),
        ({**A, "messages": MSG, "system": 5}, "system"),
        (
            {**A, "messages": MSG, "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
            "tools[0].type",
        ),
        ({**A, "messages": MSG, "tools": [{"name": "f"}]}, "tools[0].input_schema"),
        (
            {
                **A,
                "messages": MSG,
                "tools": [{"name": "f", "input_schema": {}}],
                "tool_choice": {"type": "all"},
            },
            "tool_choice.type",
        ),
        (
            {
                **A,
                "messages": MSG,
                "tools": [{"name": "f", "input_schema": {}}],
                "tool_choice": {"type": "tool"},
            },
            "tool_choice.name",
        ),
        ({**A, "messages": MSG, "stop_sequences": "END"}, "stop_sequences"),
        ({**A, "messages": MSG, "metadata": {"user_id": 42}}, "metadata.user_id"),
        ({**A, "messages": MSG, "temperature": None, "top_p": [0.5]}, "top_p"),
    ],
)
def test_anthropic_request_errors_name_the_field(body: Any, param: str) -> None:
    with pytest.raises(RequestError) as info:
        messages_request_to_chat(body)
    assert info.value.param == param
    assert param in info.value.message


ANTHROPIC_MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": UPSTREAM,
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 1, "output_tokens": 1},
}


@pytest.mark.parametrize(
    "resp",
    [
        "not an object",
        {**ANTHROPIC_MESSAGE, "content": None},
        {**ANTHROPIC_MESSAGE, "content": [{"text": "untyped"}]},
        {**ANTHROPIC_MESSAGE, "content": [{"type": "tool_use", "name": "f", "input": {}}]},
        {**ANTHROPIC_MESSAGE, "id": None},
    ],
)
def test_malformed_anthropic_response_is_an_upstream_error(resp: Any) -> None:
    with pytest.raises(UpstreamProtocolError):
        messages_response_to_chat(resp, model="m")


CHAT_COMPLETION = {
    "id": "chatcmpl-1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
}


@pytest.mark.parametrize(
    "resp",
    [
        {**CHAT_COMPLETION, "choices": []},
        {**CHAT_COMPLETION, "choices": [{"index": 0, "finish_reason": "stop"}]},
        {
            **CHAT_COMPLETION,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": None, "tool_calls": [CALL_BAD_JSON]},
                    "finish_reason": "tool_calls",
                }
            ],
        },
        {**CHAT_COMPLETION, "choices": [{"index": 0, "message": {"role": "assistant", "content": 12}}]},
        {**CHAT_COMPLETION, "id": 5},
    ],
)
def test_malformed_chat_completion_is_an_upstream_error(resp: Any) -> None:
    with pytest.raises(UpstreamProtocolError):
        chat_response_to_messages(resp, model="m")


def test_anthropic_stream_protocol_errors() -> None:
    text_block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    with pytest.raises(UpstreamProtocolError):
        MessagesStreamToChatChunks(model="m").feed("content_block_start", text_block)
    translator = MessagesStreamToChatChunks(model="m")
    translator.feed("message_start", _start())
    translator.feed("content_block_start", text_block)
    json_delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "input_json_delta", "partial_json": "{"},
    }
    with pytest.raises(UpstreamProtocolError):
        translator.feed("content_block_delta", json_delta)
    with pytest.raises(UpstreamProtocolError):
        translator.feed("content_block_delta", "not an object")  # type: ignore[arg-type]


def test_interleaved_tool_call_deltas_are_an_upstream_error() -> None:
    translator = ChatChunksToMessagesStream(model="m")

    def call(index: int, **extra: Any) -> dict[str, Any]:
        return {"id": "a", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": index, **extra}]}}]}

    translator.feed(call(0, id="c0", function={"name": "f", "arguments": ""}))
    translator.feed(call(1, id="c1", function={"name": "g", "arguments": ""}))
    with pytest.raises(UpstreamProtocolError) as info:
        translator.feed(call(0, function={"arguments": "{}"}))
    assert "interleave" in info.value.message


# --------------------------------------------------------------------------- robustness (hypothesis)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(value, dict):
        paths += [p for k, v in value.items() for p in _paths(v, (*prefix, k))]
    elif isinstance(value, list):
        paths += [p for i, v in enumerate(value) for p in _paths(v, (*prefix, i))]
    return paths


@st.composite
def mutated(draw: st.DrawFn, direction: str) -> tuple[dict[str, Any], Any]:
    """A golden of ``direction`` with one node (anywhere in its input) replaced by arbitrary JSON."""
    case = draw(st.sampled_from([p.values[0] for p in golden_cases(direction)]))
    given_input = copy.deepcopy(case["input"])
    paths = _paths(given_input)[1:]
    if direction == "messages_stream_to_chat_chunks":  # keep the {"event", "data"} envelope intact
        paths = [p for p in paths if len(p) > 1 and p[1] == "data"]
    path = draw(st.sampled_from(paths))
    parent = given_input
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = draw(JSON_VALUES)
    return case, given_input


EXPECTED_ERRORS = {
    "chat_request_to_messages": RequestError,
    "messages_request_to_chat": RequestError,
    "messages_response_to_chat": UpstreamProtocolError,
    "chat_response_to_messages": UpstreamProtocolError,
    "messages_stream_to_chat_chunks": InterlaceError,
    "chat_chunks_to_messages_stream": UpstreamProtocolError,
}


@pytest.mark.parametrize("direction", sorted(EXPECTED_ERRORS))
@HYPOTHESIS
@given(data=st.data())
def test_malformed_input_only_raises_interlace_errors(direction: str, data: st.DataObject) -> None:
    """Whatever part of a valid input is replaced, a translator answers or raises its own error."""
    case, given_input = data.draw(mutated(direction))
    try:
        result = run({**case, "input": given_input})
    except EXPECTED_ERRORS[direction]:
        return
    except AssertionError:  # a mutated stream may legitimately never finish
        assert direction == "messages_stream_to_chat_chunks"
        return
    json.dumps(result)


@pytest.mark.parametrize(
    ("direction", "schema_path"),
    [
        ("chat_request_to_messages", ("tools", 0, "input_schema")),
        ("messages_request_to_chat", ("tools", 0, "function", "parameters")),
    ],
)
def test_outputs_do_not_alias_inputs(direction: str, schema_path: tuple[Any, ...]) -> None:
    case = next(c.values[0] for c in golden_cases(direction) if "tools" in c.values[0]["input"])
    before = copy.deepcopy(case["input"])
    given_input = case["input"]  # not run(): that one translates a copy
    if direction == "chat_request_to_messages":
        schema = chat_request_to_messages(given_input, **case["options"])
    else:
        schema = messages_request_to_chat(given_input)
    for key in schema_path:
        schema = schema[key]
    schema["properties"]["injected"] = {"type": "string"}
    assert case["input"] == before
