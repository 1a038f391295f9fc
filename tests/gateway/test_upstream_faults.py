"""Failure semantics over real sockets: every upstream misbehaviour becomes the right client answer."""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx
import openai
import pytest
from tests.support.stack import Stack

from interlace.testing import Fault

CHAT = {"messages": [{"role": "user", "content": "one two three four five six"}]}


def _post(stack: Stack, model: str, **extra: object) -> httpx.Response:
    return httpx.post(
        f"{stack.gateway.url}/v1/chat/completions", json={"model": model, **CHAT, **extra}, timeout=15
    )


def _stream_frames(stack: Stack, model: str) -> list[str]:
    with httpx.stream(
        "POST",
        f"{stack.gateway.url}/v1/chat/completions",
        json={"model": model, "stream": True, **CHAT},
        timeout=15,
    ) as response:
        assert response.status_code == 200
        return [line for line in response.iter_lines() if line]


def test_429_passes_through_with_retry_after(stack: Stack) -> None:
    reply = _post(stack, "ratelimited")
    assert reply.status_code == 429
    assert reply.headers["retry-after"] == "7"
    assert reply.json()["error"]["type"] == "rate_limit_error"


def test_5xx_is_502(stack: Stack) -> None:
    reply = _post(stack, "unavailable")
    assert reply.status_code == 502
    assert "503" in reply.json()["error"]["message"]


def test_silent_upstream_is_504_at_the_first_byte_deadline(stack: Stack) -> None:
    began = time.monotonic()
    reply = _post(stack, "slow")
    assert reply.status_code == 504
    assert time.monotonic() - began < 3
    assert "first_byte=0.5s" in reply.json()["error"]["message"]


def test_connection_refused_is_502_naming_the_deployment(stack: Stack) -> None:
    reply = _post(stack, "refused")
    assert reply.status_code == 502
    message = reply.json()["error"]["message"]
    assert "Cannot connect to deployment 'refused/0'" in message


def test_malformed_body_is_502(stack: Stack) -> None:
    reply = _post(stack, "malformed")
    assert reply.status_code == 502
    assert reply.json()["error"]["code"] == "upstream_protocol_error"


def test_context_window_error_is_a_400_with_its_code(stack: Stack) -> None:
    reply = _post(stack, "context")
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "context_length_exceeded"


def test_failover_past_a_500_and_a_refused_deployment(stack: Stack) -> None:
    for _ in range(6):
        reply = _post(stack, "failover")
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"].startswith("echo:")


def test_stream_failure_before_the_first_chunk_fails_over(stack: Stack) -> None:
    for _ in range(4):
        frames = _stream_frames(stack, "failover")
        assert frames[-1] == "data: [DONE]"


def test_cut_stream_is_never_a_clean_done(stack: Stack) -> None:
    frames = _stream_frames(stack, "cut")
    assert "data: [DONE]" not in frames
    assert "stream_interrupted" in frames[-1]
    assert any('"content"' in f for f in frames[:-1])  # what arrived was passed on


def test_cut_stream_raises_in_the_openai_sdk(stack: Stack) -> None:
    client = openai.OpenAI(base_url=f"{stack.gateway.url}/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(model="cut", stream=True, **CHAT)  # type: ignore[arg-type]
    with pytest.raises(openai.APIError, match="broke during the stream"):
        for _ in stream:
            pass


def test_stall_mid_stream_ends_at_the_idle_deadline(stack: Stack) -> None:
    began = time.monotonic()
    frames = _stream_frames(stack, "stall")
    assert time.monotonic() - began < 4
    assert "data: [DONE]" not in frames
    assert "idle=0.5s" in frames[-1]


def test_error_before_the_first_token_is_an_http_error(stack: Stack) -> None:
    # the upstream sends its role chunk, then an error event: nothing reached the client yet,
    # so the client gets a plain 502 naming the upstream's error instead of a broken stream
    reply = _post(stack, "error-mid-stream", stream=True)
    assert reply.status_code == 502
    assert "mid-stream" in reply.json()["error"]["message"]


def test_anthropic_stream_cut_before_any_token_is_an_http_error(stack: Stack) -> None:
    # message_start, content_block_start and ping arrive, then the connection drops: no token
    # reached the client, so it gets a 502 rather than an empty stream
    reply = _post(stack, "claude-cut", stream=True)
    assert reply.status_code == 502
    assert reply.json()["error"]["code"] == "stream_interrupted"


def test_stream_passes_chunks_as_they_arrive(stack: Stack) -> None:
    stack.openai.script.push(Fault(chunk_interval_ms=300), times=1)
    with httpx.stream(
        "POST",
        f"{stack.gateway.url}/v1/chat/completions",
        json={"model": "gpt", "stream": True, **CHAT},
        timeout=15,
    ) as response:
        arrivals = [time.monotonic() for line in response.iter_lines() if line.startswith("data: {")]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) >= 5
    # chunks are spread out as the upstream sent them: no buffering until the end
    assert sum(1 for gap in gaps if gap > 0.2) >= 3


async def test_client_disconnect_cancels_the_upstream_request(stack: Stack) -> None:
    stack.openai.script.push(Fault(kind="slow_headers", seconds=5), times=1)
    async with httpx.AsyncClient() as client:
        request = asyncio.create_task(
            client.post(f"{stack.gateway.url}/v1/chat/completions", json={"model": "gpt", **CHAT})
        )
        await asyncio.to_thread(stack.openai.wait_for_requests, 1, 3.0)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
    assert await asyncio.to_thread(stack.openai.wait_for_disconnects, 1, 3.0) == 1


async def test_client_disconnect_mid_stream_cancels_the_upstream_stream(stack: Stack) -> None:
    stack.openai.script.push(Fault(kind="stall_stream", chunks=2, seconds=5), times=1)
    url = f"{stack.gateway.url}/v1/chat/completions"
    async with (
        httpx.AsyncClient() as client,
        client.stream("POST", url, json={"model": "gpt", "stream": True, **CHAT}) as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                break
    assert await asyncio.to_thread(stack.openai.wait_for_disconnects, 1, 3.0) == 1
