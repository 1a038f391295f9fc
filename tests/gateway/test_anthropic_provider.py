"""The anthropic provider against a real Anthropic Messages upstream; clients speak OpenAI or Anthropic."""

from __future__ import annotations

import anthropic
import openai
import pytest
from tests.support.stack import Stack


@pytest.fixture
def client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.gateway.url}/v1", api_key="unused", max_retries=0)


def test_openai_client_served_by_anthropic(stack: Stack, client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "be terse"}, {"role": "user", "content": "hello claude"}],
        max_tokens=50,
        stop=["never"],
    )
    assert answer.choices[0].message.content == "echo: hello claude"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 3
    sent = stack.anthropic.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-upstream"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body["system"] == "be terse"
    assert sent.body["max_tokens"] == 50
    assert sent.body["stop_sequences"] == ["never"]
    assert all(m["role"] != "system" for m in sent.body["messages"])


def test_streaming_is_translated_chunk_by_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "stream me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: stream me"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


def test_tool_round_trip_through_anthropic(stack: Stack, client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    first = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "call lookup"}],
        tools=tools,  # type: ignore[arg-type]
    )
    calls = first.choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].function.name == "lookup"
    assert first.choices[0].finish_reason == "tool_calls"
    second = client.chat.completions.create(
        model="claude",
        messages=[
            {"role": "user", "content": "call lookup"},
            {"role": "assistant", "content": None, "tool_calls": [calls[0].model_dump()]},  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": calls[0].id, "content": "42"},
        ],
        tools=tools,  # type: ignore[arg-type]
    )
    assert second.choices[0].message.content is not None
    sent = stack.anthropic.requests[-1].body["messages"]
    assert sent[1]["content"][0]["type"] == "tool_use"
    assert sent[2]["content"][0] == {"type": "tool_result", "tool_use_id": calls[0].id, "content": "42"}


def test_anthropic_client_to_anthropic_upstream(stack: Stack) -> None:
    client = anthropic.Anthropic(base_url=stack.gateway.url, api_key="unused", max_retries=0)
    message = client.messages.create(
        model="claude", max_tokens=20, system="sys", messages=[{"role": "user", "content": "both ends"}]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: both ends"
    with client.messages.stream(
        model="claude", max_tokens=20, messages=[{"role": "user", "content": "streamed"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "text"
    assert final.content[0].text == "echo: streamed"
    assert final.stop_reason == "end_turn"
