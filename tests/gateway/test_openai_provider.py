"""The openai provider against a real OpenAI-compatible upstream, driven by the official SDK."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from tests.support.stack import Stack


@pytest.fixture
def client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.gateway.url}/v1", api_key="unused", max_retries=0)


def test_completion_and_what_went_upstream(stack: Stack, client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": "hello world"}]
    )
    assert answer.choices[0].message.content == "echo: hello world"
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == 2
    sent = stack.openai.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-upstream"
    assert sent.body["model"] == "echo"


def test_parameters_pass_through(stack: Stack, client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="gpt",
        messages=[{"role": "user", "content": "one two three four five"}],
        n=2,
        stop=["four"],
        seed=42,
        logprobs=True,
        top_logprobs=2,
    )
    assert len(answer.choices) == 2
    assert answer.choices[0].finish_reason == "stop"
    assert "four" not in (answer.choices[0].message.content or "")
    assert answer.choices[0].logprobs is not None
    sent = stack.openai.requests[-1].body
    assert (sent["seed"], sent["n"], sent["logprobs"], sent["top_logprobs"]) == (42, 2, True, 2)


def test_tools_and_tool_choice(stack: Stack, client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    answer = client.chat.completions.create(
        model="gpt",
        messages=[{"role": "user", "content": "please call get_weather"}],
        tools=tools,  # type: ignore[arg-type]
        tool_choice="auto",
    )
    call = answer.choices[0].message.tool_calls
    assert call is not None
    assert call[0].function.name == "get_weather"
    assert answer.choices[0].finish_reason == "tool_calls"
    assert stack.openai.requests[-1].body["tool_choice"] == "auto"


def test_response_format_json(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": "hi"}], response_format={"type": "json_object"}
    )
    assert json.loads(answer.choices[0].message.content or "") == {"echo": "hi"}
    schema_answer = client.chat.completions.create(
        model="gpt",
        messages=[{"role": "user", "content": "hi"}],
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "e",
                "schema": {"type": "object", "properties": {"echo": {"type": "string"}}},
            },
        },
    )
    assert json.loads(schema_answer.choices[0].message.content or "") == {"echo": "hi"}


def test_streaming_with_usage(stack: Stack, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt",
        messages=[{"role": "user", "content": "a b c"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: a b c"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
    assert stack.openai.requests[-1].body["stream_options"] == {"include_usage": True}


def test_streaming_without_usage_asks_upstream_anyway_and_strips_it(
    stack: Stack, client: openai.OpenAI
) -> None:
    chunks = list(
        client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "x"}], stream=True)
    )
    assert all(c.usage is None for c in chunks)
    assert stack.openai.requests[-1].body["stream_options"] == {"include_usage": True}


async def test_async_streaming(stack: Stack) -> None:
    client = openai.AsyncOpenAI(base_url=f"{stack.gateway.url}/v1", api_key="unused")
    stream = await client.chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": "async works"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "echo: async works"
    await client.close()


def test_azure_paths_and_header(stack: Stack, client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="azure", messages=[{"role": "user", "content": "az"}])
    assert answer.choices[0].message.content == "echo: az"
    sent = stack.openai.requests[-1]
    assert sent.path == "/openai/deployments/echo/chat/completions"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == "sk-upstream"
    assert "authorization" not in sent.headers
    chunks = list(
        client.chat.completions.create(
            model="azure", messages=[{"role": "user", "content": "s"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: s"


def test_embeddings_float_base64_and_dimensions(stack: Stack, client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="gpt", input=["a", "b"], dimensions=16)
    assert [len(d.embedding) for d in result.data] == [16, 16]
    assert stack.openai.requests[-1].body["dimensions"] == 16
    raw = httpx.post(
        f"{stack.gateway.url}/v1/embeddings",
        json={"model": "gpt", "input": "a", "encoding_format": "base64", "dimensions": 16},
    ).json()
    assert isinstance(raw["data"][0]["embedding"], str)
    # the gateway always asks the upstream for floats and encodes base64 itself
    assert stack.openai.requests[-1].body["encoding_format"] == "float"
