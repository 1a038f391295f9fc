"""PII masking through a real gateway on 127.0.0.1: the official SDKs, a real OpenAI-shaped upstream.

The upstream's request journal shows what a deployment received: placeholders, never the values; the
client gets its values back, streamed or not, split placeholders included (the fake upstream streams
tool-call arguments 8 characters at a time).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anthropic
import httpx
import openai
import pytest
from tests.support.gateway import GatewayServer

from interlace.config import parse_config
from interlace.core.principal import Principal
from interlace.gateway.app import build_app
from interlace.gateway.identity import PRINCIPAL_SCOPE_KEY
from interlace.testing import UpstreamServer

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

EMAIL = "john.doe@example.com"
PHONE = "+44 20 7946 0958"
CARD = "4111 1111 1111 1111"
TENANT_HEADER = "x-test-tenant"

CONFIG = """
state: {{dir: '{state}'}}
models:
  gpt:
    deployments:
      - provider: openai
        model: echo
        base_url: {upstream}/v1
        api_key: ${{UPSTREAM_KEY}}
pii:
  action: mask
  endpoints:
    embeddings: {{action: block, entities: [EMAIL_ADDRESS]}}
tenants:
  bank:
    pii: {{action: block, entities: [CREDIT_CARD]}}
"""


def with_test_tenant(build: Any) -> Any:
    """``build_app`` whose app takes the caller's tenant from a test header (this gateway has no auth)."""

    def wrapped(runtime: Any) -> ASGIApp:
        inner = build(runtime)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            for name, value in scope.get("headers") or ():
                if name == TENANT_HEADER.encode():
                    scope[PRINCIPAL_SCOPE_KEY] = Principal(kind="key", id="ik_test", tenant=value.decode())
            await inner(scope, receive, send)

        return app

    return wrapped


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer("openai") as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream: UpstreamServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    yaml = CONFIG.format(state=tmp_path_factory.mktemp("state"), upstream=upstream.url)
    config = parse_config(yaml, filename="pii.yaml", environ={"UPSTREAM_KEY": "sk-upstream"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("tests.support.gateway.build_app", with_test_tenant(build_app))
        server = GatewayServer(config)
        server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _fresh_journal(upstream: UpstreamServer) -> None:
    upstream.reset()


def sent_upstream(upstream: UpstreamServer) -> str:
    """Everything the upstream received, as one JSON text."""
    return json.dumps([request.body for request in upstream.requests])


def client(gateway: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)


PROMPT = f"I am {EMAIL}, call me on {PHONE} or mail {EMAIL}"


def test_chat_round_trip_masks_upstream_and_restores_the_answer(
    gateway: GatewayServer, upstream: UpstreamServer
) -> None:
    reply = client(gateway).chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": PROMPT}]
    )
    assert reply.choices[0].message.content == f"echo: {PROMPT}"
    sent = sent_upstream(upstream)
    assert "I am <EMAIL_ADDRESS_1>, call me on <PHONE_NUMBER_1> or mail <EMAIL_ADDRESS_1>" in sent
    assert EMAIL not in sent
    assert PHONE not in sent


def test_streamed_chat_is_restored(gateway: GatewayServer, upstream: UpstreamServer) -> None:
    stream = client(gateway).chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == f"echo: {PROMPT}"
    assert EMAIL not in sent_upstream(upstream)


TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"email": {"type": "string"}}},
        },
    }
]


def test_streamed_tool_arguments_split_across_chunks_are_restored(
    gateway: GatewayServer, upstream: UpstreamServer
) -> None:
    content = f'call lookup {{"email": "{EMAIL}", "card": "{CARD}"}}'
    stream = client(gateway).chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": content}], tools=TOOLS, stream=True
    )
    pieces = [
        call.function.arguments
        for chunk in stream
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or ()
        if call.function is not None and call.function.arguments
    ]
    assert json.loads("".join(pieces)) == {"email": EMAIL, "card": CARD}
    sent = sent_upstream(upstream)
    assert EMAIL not in sent
    assert CARD not in sent
    assert "<EMAIL_ADDRESS_1>" in sent


def test_tool_arguments_are_restored(gateway: GatewayServer) -> None:
    content = f'call lookup {{"email": "{EMAIL}"}}'
    reply = client(gateway).chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": content}], tools=TOOLS
    )
    calls = reply.choices[0].message.tool_calls or []
    assert [json.loads(call.function.arguments) for call in calls] == [{"email": EMAIL}]  # type: ignore[union-attr]


def test_anthropic_messages_plain_and_streamed(gateway: GatewayServer, upstream: UpstreamServer) -> None:
    claude = anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)
    message = claude.messages.create(
        model="gpt", max_tokens=64, system=f"reply to {EMAIL}", messages=[{"role": "user", "content": PROMPT}]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == f"echo: {PROMPT}"
    with claude.messages.stream(
        model="gpt", max_tokens=64, messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        streamed = "".join(stream.text_stream)
    assert streamed == f"echo: {PROMPT}"
    sent = sent_upstream(upstream)
    assert len(upstream.requests) == 2
    assert EMAIL not in sent
    assert PHONE not in sent


def test_blocked_embeddings_answer_400_naming_the_type(
    gateway: GatewayServer, upstream: UpstreamServer
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client(gateway).embeddings.create(model="gpt", input=[f"contact {EMAIL}"])
    assert raised.value.status_code == 400
    assert raised.value.code == "pii_detected"
    assert "EMAIL_ADDRESS" in raised.value.message
    assert EMAIL not in raised.value.message
    assert upstream.requests == []


def test_a_tenant_override_blocks_what_others_may_send_masked(
    gateway: GatewayServer, upstream: UpstreamServer
) -> None:
    body = {"model": "gpt", "messages": [{"role": "user", "content": f"pay with {CARD}"}]}
    reply = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers={TENANT_HEADER: "bank"})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["code"], error["type"]) == ("pii_detected", "invalid_request_error")
    assert "CREDIT_CARD" in error["message"]
    assert CARD not in reply.text
    claude = anthropic.Anthropic(
        base_url=gateway.url, api_key="unused", max_retries=0, default_headers={TENANT_HEADER: "bank"}
    )
    with pytest.raises(anthropic.BadRequestError, match="CREDIT_CARD") as raised:
        claude.messages.create(
            model="gpt", max_tokens=16, messages=[{"role": "user", "content": f"pay {CARD}"}]
        )
    assert raised.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert upstream.requests == []
    # another tenant (and the anonymous caller) gets the global rule: masked, answered, restored
    for headers in ({TENANT_HEADER: "shop"}, {}):
        reply = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers)
        assert reply.status_code == 200
        assert reply.json()["choices"][0]["message"]["content"] == f"echo: pay with {CARD}"
    assert CARD not in sent_upstream(upstream)
