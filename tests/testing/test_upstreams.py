"""The fake upstreams, proved with the official SDKs (normal paths) and raw aiohttp (every fault kind)."""

from __future__ import annotations

import asyncio
import base64
import gc
import itertools
import signal
import struct
import subprocess
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any

import aiohttp
import anthropic
import openai
import orjson
import pytest

from interlace.testing import (
    AnthropicUpstream,
    Fault,
    FaultDirectiveError,
    FaultScript,
    OpenAIUpstream,
    UpstreamServer,
    parse_fault_directive,
)
from interlace.testing.echo import embedding_vector
from interlace.testing.server import main

if TYPE_CHECKING:
    from collections.abc import Iterator

USER = [{"role": "user", "content": "hello   there world"}]
WEATHER = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


@pytest.fixture(scope="module")
def openai_module() -> Iterator[UpstreamServer]:
    with UpstreamServer("openai") as server:
        yield server


@pytest.fixture(scope="module")
def anthropic_module() -> Iterator[UpstreamServer]:
    with UpstreamServer("anthropic") as server:
        yield server


@pytest.fixture(scope="module")
def v2_module() -> Iterator[UpstreamServer]:
    with UpstreamServer("inference_v2") as server:
        yield server


@pytest.fixture
def oai(openai_module: UpstreamServer) -> UpstreamServer:
    openai_module.reset()
    return openai_module


@pytest.fixture
def ant(anthropic_module: UpstreamServer) -> UpstreamServer:
    anthropic_module.reset()
    return anthropic_module


@pytest.fixture
def v2(v2_module: UpstreamServer) -> UpstreamServer:
    v2_module.reset()
    return v2_module


def sdk(server: UpstreamServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-test", max_retries=0)


def claude(server: UpstreamServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test", max_retries=0)


async def post(url: str, body: dict[str, Any], **headers: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


async def sse_frames(url: str, body: dict[str, Any], **headers: str) -> list[bytes]:
    """The non-empty lines of an SSE response, read to its end."""
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as response:
        return [line.strip() async for line in response.content if line.strip()]


async def lines_until_cut(response: aiohttp.ClientResponse) -> list[bytes]:
    """The lines a stream delivered before the connection was cut (asserting that it was)."""
    lines: list[bytes] = []
    try:
        async for line in response.content:
            lines.append(line)  # noqa: PERF401 - keep what arrived before the cut
    except aiohttp.ClientPayloadError:
        return lines
    pytest.fail(f"the stream ended normally after {lines!r}")


# --- the fault model ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "fault"),
    [
        ("fault:status=429,retry_after=2", Fault(kind="status", status=429, retry_after=2.0)),
        ("fault:code=context_length_exceeded", Fault(kind="status", code="context_length_exceeded")),
        ("fault:cut_stream=3", Fault(kind="cut_stream", chunks=3)),
        ("fault:slow_headers=5", Fault(kind="slow_headers", seconds=5.0)),
        ("fault:stall_stream=2,seconds=30", Fault(kind="stall_stream", chunks=2, seconds=30.0)),
        ("fault:malformed", Fault(kind="malformed")),
        ("fault:malformed=text", Fault(kind="malformed", body="text")),
        ("fault:refuse", Fault(kind="refuse")),
        ("fault:latency_ms=50", Fault(latency_ms=50)),
        (
            "fault:error_after_first_chunk,chunk_interval_ms=5",
            Fault(kind="error_after_first_chunk", chunk_interval_ms=5),
        ),
    ],
)
def test_directives_parse(model: str, fault: Fault) -> None:
    assert parse_fault_directive(model) == fault


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("fault:", "it is empty"),
        ("fault:explode", "unknown item 'explode'"),
        ("fault:status=abc", "'status' needs a whole number"),
        ("fault:cut_stream", "'cut_stream' needs a value"),
        ("fault:refuse=1", "'refuse' takes no value"),
        ("fault:refuse,cut_stream=2", "two kinds"),
        ("fault:stall_stream=2", "needs seconds"),
        ("fault:refuse,retry_after=1", "'retry_after' does not apply"),
        ("fault:status=200", "400-599"),
        ("fault:slow_headers=1,seconds=2", "given twice"),
    ],
)
def test_bad_directives_say_why(model: str, message: str) -> None:
    with pytest.raises(FaultDirectiveError, match=message):
        parse_fault_directive(model)


def test_plain_model_names_are_not_directives() -> None:
    assert parse_fault_directive("echo") is None
    assert Fault().http_status == 500
    assert Fault(kind="status", code="content_filter").http_status == 400


def test_script_is_fifo_with_counts() -> None:
    script = FaultScript()
    script.push(Fault(kind="refuse"), times=2)
    script.push(Fault(kind="malformed"))
    assert len(script) == 3
    assert [f.kind if f else None for f in (script.pop(), script.pop(), script.pop(), script.pop())] == [
        "refuse",
        "refuse",
        "malformed",
        None,
    ]
    with pytest.raises(ValueError, match="times"):
        script.push(Fault(), times=0)


# --- OpenAI with the official SDK -----------------------------------------------------------------


def test_openai_chat_echo_usage_and_recording(oai: UpstreamServer) -> None:
    with sdk(oai) as client:
        answer = client.chat.completions.create(model="echo", messages=USER, n=2)
    assert [c.message.content for c in answer.choices] == ["echo: hello there world"] * 2
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (
        3,
        8,
        11,
    )
    assert answer.usage.prompt_tokens_details is not None
    assert answer.usage.prompt_tokens_details.cached_tokens == 0
    (seen,) = oai.requests
    assert (seen.method, seen.path, seen.headers["authorization"]) == (
        "POST",
        "/v1/chat/completions",
        "Bearer sk-test",
    )
    assert seen.body == {"model": "echo", "messages": USER, "n": 2}


def test_openai_stream_with_usage(oai: UpstreamServer) -> None:
    with sdk(oai) as client:
        chunks = list(
            client.chat.completions.create(
                model="echo", messages=USER, stream=True, stream_options={"include_usage": True}
            )
        )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hello there world"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4


def test_openai_max_tokens_stop_json_and_logprobs(oai: UpstreamServer) -> None:
    with sdk(oai) as client:
        cut = client.chat.completions.create(model="echo", messages=USER, max_tokens=2)
        stopped = client.chat.completions.create(model="echo", messages=USER, stop=[" world", "zzz"])
        as_json = client.chat.completions.create(
            model="echo", messages=USER, response_format={"type": "json_object"}
        )
        scored = client.chat.completions.create(model="echo", messages=USER, logprobs=True, top_logprobs=2)
    assert (cut.choices[0].message.content, cut.choices[0].finish_reason) == ("echo: hello", "length")
    assert (stopped.choices[0].message.content, stopped.choices[0].finish_reason) == (
        "echo: hello there",
        "stop",
    )
    assert orjson.loads(as_json.choices[0].message.content or "") == {"echo": "hello there world"}
    logprobs = scored.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.content is not None
    assert [t.token for t in logprobs.content] == ["echo:", " hello", " there", " world"]
    assert all(len(t.top_logprobs) == 2 for t in logprobs.content)


async def test_openai_tool_calls_plain_and_streamed(oai: UpstreamServer) -> None:
    messages = [{"role": "user", "content": 'please call get_weather {"city": "Paris"} now'}]
    async with openai.AsyncOpenAI(base_url=f"{oai.url}/v1", api_key="k", max_retries=0) as client:
        answer = await client.chat.completions.create(model="echo", messages=messages, tools=WEATHER)
        stream = await client.chat.completions.create(
            model="echo", messages=messages, tools=WEATHER, stream=True
        )
        chunks = [chunk async for chunk in stream]
    (call,) = answer.choices[0].message.tool_calls or []
    assert answer.choices[0].finish_reason == "tool_calls"
    assert call.type == "function"
    assert (call.function.name, orjson.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert deltas[0].id is not None
    assert deltas[0].function is not None
    assert deltas[0].function.name == "get_weather"
    assert "".join(d.function.arguments or "" for d in deltas if d.function) == call.function.arguments
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_openai_embeddings_float_and_base64(oai: UpstreamServer) -> None:
    with sdk(oai) as client:
        decoded = client.embeddings.create(model="embed", input=["alpha", "beta"])  # the SDK asks for base64
        floats = client.embeddings.create(model="embed", input="alpha", encoding_format="float", dimensions=4)
    assert oai.requests[0].body["encoding_format"] == "base64"
    assert decoded.data[0].embedding == embedding_vector("alpha", 8)
    assert decoded.data[1].embedding != decoded.data[0].embedding
    assert floats.data[0].embedding == embedding_vector("alpha", 4)
    assert abs(sum(v * v for v in floats.data[0].embedding) - 1) < 1e-5
    assert decoded.usage.prompt_tokens == 2


async def test_openai_base64_is_little_endian_float32(oai: UpstreamServer) -> None:
    status, _, raw = await post(
        f"{oai.url}/v1/embeddings", {"model": "e", "input": "alpha", "encoding_format": "base64"}
    )
    assert status == 200
    packed = base64.b64decode(orjson.loads(raw)["data"][0]["embedding"])
    assert list(struct.unpack("<8f", packed)) == embedding_vector("alpha", 8)


def test_openai_models_and_rejections(oai: UpstreamServer) -> None:
    with sdk(oai) as client:
        assert [m.id for m in client.models.list()] == ["echo"]
        with pytest.raises(openai.BadRequestError, match="preceeding message"):
            client.chat.completions.create(
                model="echo", messages=[{"role": "tool", "tool_call_id": "x", "content": "1"}]
            )
        with pytest.raises(openai.BadRequestError, match="stream_options"):
            client.chat.completions.create(
                model="echo", messages=USER, stream_options={"include_usage": True}
            )
        with pytest.raises(openai.BadRequestError, match="Invalid fault directive"):
            client.chat.completions.create(model="fault:nonsense", messages=USER)


def test_openai_api_key_is_checked() -> None:
    with UpstreamServer(OpenAIUpstream(api_key="right")) as server, sdk(server) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model="echo", messages=USER)
        assert caught.value.code == "invalid_api_key"


async def test_azure_paths(oai: UpstreamServer) -> None:
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=oai.url, api_key="azure-key", api_version="2024-10-21", max_retries=0
    ) as client:
        answer = await client.chat.completions.create(model="my-deployment", messages=USER)
        stream = await client.chat.completions.create(model="my-deployment", messages=USER, stream=True)
        chunks = [chunk async for chunk in stream]
        vectors = await client.embeddings.create(model="my-embedder", input="alpha")
    assert answer.choices[0].message.content == "echo: hello there world"
    assert chunks[0].choices == []  # Azure opens with prompt filter results
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hello there world"
    assert vectors.data[0].embedding == embedding_vector("alpha", 8)
    first = oai.requests[0]
    assert first.path == "/openai/deployments/my-deployment/chat/completions"
    assert (first.query["api-version"], first.headers["api-key"]) == ("2024-10-21", "azure-key")
    status, _, raw = await post(f"{oai.url}/openai/deployments/d/chat/completions", {"messages": USER})
    assert status == 400
    assert orjson.loads(raw)["error"]["code"] == "MissingApiVersionParameter"


# --- Anthropic with the official SDK --------------------------------------------------------------


def test_anthropic_message(ant: UpstreamServer) -> None:
    with claude(ant) as client:
        message = client.messages.create(model="echo", max_tokens=64, system="be brief", messages=USER)
        cut = client.messages.create(model="echo", max_tokens=2, messages=USER)
        stopped = client.messages.create(model="echo", max_tokens=64, messages=USER, stop_sequences=["there"])
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: hello there world"
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == (
        "end_turn",
        5,
        4,
    )
    assert (message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens) == (0, 0)
    assert cut.stop_reason == "max_tokens"
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "there")
    assert ant.requests[0].headers["anthropic-version"]


async def test_anthropic_stream_event_sequence(ant: UpstreamServer) -> None:
    body = {"model": "echo", "max_tokens": 64, "messages": USER, "stream": True}
    lines = await sse_frames(
        f"{ant.url}/v1/messages", body, **{"x-api-key": "k", "anthropic-version": "2023-06-01"}
    )
    events = [line.removeprefix(b"event: ").decode() for line in lines if line.startswith(b"event: ")]
    assert events == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    with claude(ant) as client, client.messages.stream(model="echo", max_tokens=64, messages=USER) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "text"
    assert final.content[0].text == "echo: hello there world"
    assert (final.stop_reason, final.usage.input_tokens, final.usage.output_tokens) == ("end_turn", 3, 4)


def test_anthropic_tool_use_plain_and_streamed(ant: UpstreamServer) -> None:
    tools = [{"name": "get_weather", "description": "weather", "input_schema": {"type": "object"}}]
    messages = [{"role": "user", "content": 'call get_weather {"city": "Oslo"}'}]
    with claude(ant) as client:
        message = client.messages.create(model="echo", max_tokens=64, messages=messages, tools=tools)
        with client.messages.stream(model="echo", max_tokens=64, messages=messages, tools=tools) as stream:
            final = stream.get_final_message()
        block = message.content[0]
        assert block.type == "tool_use"
        answer = [
            *messages,
            {"role": "assistant", "content": [block.model_dump(exclude_none=True)]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "sunny"}],
            },
        ]
        reply = client.messages.create(model="echo", max_tokens=64, messages=answer, tools=tools)
    assert (message.stop_reason, block.name, block.input) == ("tool_use", "get_weather", {"city": "Oslo"})
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == {"city": "Oslo"}
    assert reply.content[0].type == "text"
    assert reply.content[0].text == "echo: sunny"


async def test_anthropic_headers_and_rejections(ant: UpstreamServer) -> None:
    url = f"{ant.url}/v1/messages"
    body = {"model": "echo", "max_tokens": 8, "messages": USER}
    status, _, raw = await post(url, body, **{"anthropic-version": "2023-06-01"})
    assert status == 401
    assert orjson.loads(raw)["error"] == {
        "type": "authentication_error",
        "message": "x-api-key header is required",
    }
    status, _, raw = await post(url, body, **{"x-api-key": "k"})
    assert (status, orjson.loads(raw)["type"]) == (400, "error")
    with claude(ant) as client:
        with pytest.raises(anthropic.BadRequestError, match="top-level `system`"):
            client.messages.create(model="echo", max_tokens=8, messages=[{"role": "system", "content": "x"}])
        result = {"type": "tool_result", "tool_use_id": "toolu_x", "content": "1"}
        with pytest.raises(anthropic.BadRequestError, match="tool_use_id"):
            client.messages.create(
                model="echo", max_tokens=8, messages=[{"role": "user", "content": [result]}]
            )
        with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
            list(
                client.messages.create(
                    model="fault:error_after_first_chunk", max_tokens=8, messages=USER, stream=True
                )
            )


# --- Open Inference Protocol v2 -------------------------------------------------------------------


async def test_inference_v2(v2: UpstreamServer) -> None:
    async with aiohttp.ClientSession(v2.url) as http:
        async with http.get("/v2/health/ready") as ready:
            assert (ready.status, await ready.read()) == (200, b"")
        async with http.get("/v2/models/sum") as meta:
            assert (await meta.json())["outputs"][0]["name"] == "OUTPUT0"
        async with http.get("/v2/models/nope/ready") as missing:
            assert missing.status == 404
            assert "unknown model" in (await missing.json())["error"]
        tensors = {
            "id": "r1",
            "inputs": [
                {"name": "a", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4.5]]},
                {"name": "b", "shape": [1], "datatype": "INT64", "data": [7]},
            ],
        }
        async with http.post("/v2/models/sum/versions/1/infer", json=tensors) as result:
            answer = await result.json()
        assert answer["id"] == "r1"
        assert answer["outputs"] == [
            {"name": "OUTPUT0", "datatype": "FP32", "shape": [2], "data": [10.5, 7.0]}
        ]
        bad = {"inputs": [{"name": "a", "shape": [3], "datatype": "FP32", "data": [1]}]}
        async with http.post("/v2/models/sum/infer", json=bad) as malformed:
            assert malformed.status == 400
            assert "3" in (await malformed.json())["error"]
        async with http.post("/v2/models/fault:status=503/infer", json=tensors) as faulted:
            assert faulted.status == 503
            assert set(await faulted.json()) == {"error"}


# --- every fault kind on the wire -----------------------------------------------------------------


async def test_status_faults_carry_retry_after_and_protocol_shapes(
    oai: UpstreamServer, ant: UpstreamServer
) -> None:
    url = f"{oai.url}/v1/chat/completions"
    status, headers, raw = await post(url, {"model": "fault:status=429,retry_after=2", "messages": USER})
    assert (status, headers["Retry-After"], orjson.loads(raw)["error"]["code"]) == (
        429,
        "2",
        "rate_limit_exceeded",
    )
    status, _, raw = await post(url, {"model": "fault:code=context_length_exceeded", "messages": USER})
    assert (status, orjson.loads(raw)["error"]["param"]) == (400, "messages")
    status, _, raw = await post(url, {"model": "fault:code=content_filter", "messages": USER})
    assert (status, orjson.loads(raw)["error"]["code"]) == (400, "content_filter")
    ant.script.push(Fault(kind="status", status=529))
    status, _, raw = await post(
        f"{ant.url}/v1/messages",
        {"model": "echo", "max_tokens": 8, "messages": USER},
        **{"x-api-key": "k", "anthropic-version": "2023-06-01"},
    )
    assert (status, orjson.loads(raw)["error"]["type"]) == (529, "overloaded_error")


async def test_refuse_drops_the_connection(oai: UpstreamServer) -> None:
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(f"{oai.url}/v1/chat/completions", {"model": "fault:refuse", "messages": USER})
    assert oai.requests[0].fault.kind == "refuse"
    assert oai.disconnects == 0  # our own drop is not a client disconnect


async def test_slow_headers_and_latency_delay_the_response(oai: UpstreamServer) -> None:
    started = time.monotonic()
    status, _, _ = await post(
        f"{oai.url}/v1/chat/completions", {"model": "fault:slow_headers=0.3", "messages": USER}
    )
    assert status == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await post(f"{oai.url}/v1/embeddings", {"model": "fault:latency_ms=100", "input": "a"})
    assert time.monotonic() - started >= 0.1


async def test_malformed_bodies(oai: UpstreamServer) -> None:
    url = f"{oai.url}/v1/chat/completions"
    status, _, raw = await post(url, {"model": "fault:malformed", "messages": USER})
    assert status == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)
    status, headers, raw = await post(url, {"model": "fault:malformed=text", "messages": USER})
    assert (status, headers["Content-Type"], raw.startswith(b"<html>")) == (200, "text/html", True)
    frames = await sse_frames(url, {"model": "fault:malformed", "messages": USER, "stream": True})
    assert len(frames) == 1
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(frames[0].removeprefix(b"data: "))


async def test_cut_stream_ends_without_done(oai: UpstreamServer, ant: UpstreamServer) -> None:
    body = {"model": "fault:cut_stream=3", "messages": USER, "stream": True}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{oai.url}/v1/chat/completions", json=body) as response:
            assert response.status == 200
            lines = [line for line in await lines_until_cut(response) if line.strip()]
        assert len(lines) == 3
        assert all(line.startswith(b"data: {") for line in lines)
        body = {"model": "fault:cut_stream=99", "max_tokens": 8, "messages": USER, "stream": True}
        headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
        async with http.post(f"{ant.url}/v1/messages", json=body, headers=headers) as response:
            lines = await lines_until_cut(response)
        assert b"event: message_delta\n" in lines
        assert b"event: message_stop\n" not in lines
        body = {"model": "fault:cut_stream=0", "messages": USER}  # a plain response loses half its body
        async with http.post(f"{oai.url}/v1/chat/completions", json=body) as response:
            assert response.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()


async def test_stall_stream_really_stalls_then_resumes(oai: UpstreamServer) -> None:
    body = {"model": "fault:stall_stream=2,seconds=0.4", "messages": USER, "stream": True}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{oai.url}/v1/chat/completions", json=body) as response,
    ):
        arrivals = [(time.monotonic(), line.strip()) async for line in response.content if line.strip()]
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(arrivals)]
    assert gaps[1] >= 0.35
    assert max(gaps[:1] + gaps[2:]) < 0.3
    assert arrivals[-1][1] == b"data: [DONE]"


async def test_error_after_first_chunk(oai: UpstreamServer) -> None:
    frames = await sse_frames(
        f"{oai.url}/v1/chat/completions",
        {"model": "fault:error_after_first_chunk", "messages": USER, "stream": True},
    )
    assert len(frames) == 2
    assert orjson.loads(frames[1].removeprefix(b"data: "))["error"]["type"] == "server_error"
    async with openai.AsyncOpenAI(base_url=f"{oai.url}/v1", api_key="k", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="fault:error_after_first_chunk", messages=USER, stream=True
        )
        with pytest.raises(openai.APIError, match="server had an error"):
            _ = [chunk async for chunk in stream]


async def test_chunk_interval_spaces_events(oai: UpstreamServer) -> None:
    started = time.monotonic()
    frames = await sse_frames(
        f"{oai.url}/v1/chat/completions",
        {"model": "fault:chunk_interval_ms=40", "messages": USER, "stream": True},
    )
    assert len(frames) == 7  # role, 4 words, finish, [DONE]
    assert time.monotonic() - started >= 6 * 0.04


async def test_script_comes_before_directives_then_normal_resumes(oai: UpstreamServer) -> None:
    oai.script.push(Fault(kind="status", status=503), times=2)
    url = f"{oai.url}/v1/chat/completions"
    statuses = [(await post(url, {"model": "fault:status=429", "messages": USER}))[0] for _ in range(3)]
    assert statuses == [503, 503, 429]
    oai.script.push(Fault(kind="refuse"))
    oai.script.clear()
    assert (await post(url, {"model": "echo", "messages": USER}))[0] == 200
    await post(f"{oai.url}/v1/models", {})  # discovery and unknown routes are never scripted
    assert [r.fault.kind for r in oai.requests] == ["status", "status", "status", "none", "none"]


async def test_disconnect_during_slow_headers_is_recorded(oai: UpstreamServer) -> None:
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=0.2)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        with pytest.raises(TimeoutError):
            await http.post(
                f"{oai.url}/v1/chat/completions", json={"model": "fault:slow_headers=30", "messages": USER}
            )
    assert await asyncio.to_thread(oai.wait_for_disconnects, 1) == 1
    assert oai.requests[0].disconnected
    assert time.monotonic() - started < 2


async def test_disconnect_mid_stream_is_recorded(ant: UpstreamServer) -> None:
    body = {"model": "fault:chunk_interval_ms=100", "max_tokens": 64, "messages": USER, "stream": True}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    async with aiohttp.ClientSession() as http:
        response = await http.post(f"{ant.url}/v1/messages", json=body, headers=headers)
        assert (await response.content.readline()).startswith(b"event: message_start")
        response.close()  # the client walks away mid-stream
    assert await asyncio.to_thread(ant.wait_for_disconnects, 1) == 1
    assert ant.requests[0].disconnected


# --- the server itself ----------------------------------------------------------------------------


async def test_stop_drops_a_stalled_stream_and_leaks_nothing() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with UpstreamServer(AnthropicUpstream()) as server, aiohttp.ClientSession() as http:
            body = {
                "model": "fault:stall_stream=1,seconds=30",
                "max_tokens": 8,
                "messages": USER,
                "stream": True,
            }
            headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
            async with http.post(f"{server.url}/v1/messages", json=body, headers=headers) as response:
                assert (await response.content.readline()).startswith(b"event: message_start")
                started = time.monotonic()
                await asyncio.to_thread(server.stop)
                assert time.monotonic() - started < 1.5
                with pytest.raises(aiohttp.ClientPayloadError):
                    await response.read()
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert server.disconnects == 0


def test_cli_rejects_a_bad_fault(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--fault", "explode", "--port", "0"])
    assert exited.value.code == 2
    assert "unknown item 'explode'" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_serves_until_interrupted() -> None:
    command = [
        sys.executable,
        "-W",
        "error",
        "-m",
        "interlace.testing.server",
        "--protocol",
        "openai",
        "--port",
        "0",
    ]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stderr is not None
            url = process.stderr.readline().split()[-1]
            with openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client:
                answer = client.chat.completions.create(model="echo", messages=USER)
            assert answer.choices[0].message.content == "echo: hello there world"
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=5) == 0
            assert process.stderr.read() == ""
        finally:
            process.kill()
