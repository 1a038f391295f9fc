"""POST /v1/messages: the official anthropic SDK against the gateway, served by an OpenAI-shaped provider."""

from __future__ import annotations

import anthropic
import httpx
import pytest
from tests.conftest import GatewayFactory, fake_models_yaml
from tests.support.gateway import GatewayServer


@pytest.fixture
def gateway(make_gateway: GatewayFactory) -> GatewayServer:
    return make_gateway(
        fake_models_yaml(echo={}, cut={"fault": "cut_stream"}, limited={"fault": "rate_limit"})
    )


def test_message_round_trip(gateway: GatewayServer) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key="unused")
    message = client.messages.create(
        model="echo", max_tokens=64, system="be brief", messages=[{"role": "user", "content": "hello there"}]
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: hello there"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3


def test_streaming_event_sequence(gateway: GatewayServer) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key="unused")
    with client.messages.stream(
        model="echo", max_tokens=64, messages=[{"role": "user", "content": "one two"}]
    ) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start"
    assert events[-1] == "message_stop"
    assert "content_block_start" in events
    assert "content_block_delta" in events
    assert events.index("message_delta") < events.index("message_stop")
    assert final.content[0].type == "text"
    assert final.content[0].text == "echo: one two"
    assert final.stop_reason == "end_turn"


def test_cut_stream_ends_with_error_event(gateway: GatewayServer) -> None:
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/messages",
        json={
            "model": "cut",
            "max_tokens": 10,
            "stream": True,
            "messages": [{"role": "user", "content": "a b c d e f"}],
        },
    ) as response:
        text = response.read().decode()
    assert "event: message_stop" not in text
    assert "event: error" in text


def test_errors_are_anthropic_shaped(gateway: GatewayServer) -> None:
    reply = httpx.post(
        f"{gateway.url}/v1/messages", json={"model": "echo", "messages": [{"role": "user", "content": "x"}]}
    )
    assert reply.status_code == 400
    body = reply.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]
    client = anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="limited", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}])
