"""Chat completions through the gateway with the official openai SDK, against the fake provider."""

from __future__ import annotations

import httpx
import openai
import pytest
from tests.conftest import GatewayFactory, fake_models_yaml
from tests.support.gateway import GatewayServer


@pytest.fixture
def gateway(make_gateway: GatewayFactory) -> GatewayServer:
    return make_gateway(fake_models_yaml(echo={}, cut={"fault": "cut_stream"}))


def test_non_streaming_has_usage(gateway: GatewayServer) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused")
    answer = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "hello there"}]
    )
    assert answer.choices[0].message.content == "echo: hello there"
    assert answer.usage is not None
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_streaming_with_usage(gateway: GatewayServer) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused")
    stream = client.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4


def test_streaming_without_usage_strips_the_usage_chunk(gateway: GatewayServer) -> None:
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={"model": "echo", "stream": True, "messages": [{"role": "user", "content": "a b"}]},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = [line for line in response.iter_lines() if line]
    assert frames[-1] == "data: [DONE]"
    assert all('"usage"' not in frame for frame in frames)


def test_cut_stream_ends_with_error_never_done(gateway: GatewayServer) -> None:
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={"model": "cut", "stream": True, "messages": [{"role": "user", "content": "a b c d e f"}]},
    ) as response:
        frames = [line for line in response.iter_lines() if line]
    assert "data: [DONE]" not in frames
    assert '"error"' in frames[-1]
    assert "stream_interrupted" in frames[-1]


def test_cut_stream_raises_in_the_sdk(gateway: GatewayServer) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model="cut", messages=[{"role": "user", "content": "a b c d e f"}], stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


async def test_async_client(gateway: GatewayServer) -> None:
    client = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="unused")
    answer = await client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}])
    assert answer.choices[0].message.content == "echo: x"
    stream = await client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "y z"}], stream=True
    )
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(pieces) == "echo: y z"
    await client.close()


def test_models_list_and_retrieve(gateway: GatewayServer) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused")
    ids = sorted(m.id for m in client.models.list())
    assert ids == ["cut", "echo"]
    assert client.models.retrieve("echo").id == "echo"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_health_and_readiness(gateway: GatewayServer) -> None:
    assert httpx.get(f"{gateway.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{gateway.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] is True
