"""auth.master_key: every API call needs the key (Bearer or x-api-key); probes stay open."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
from tests.conftest import GatewayFactory, fake_models_yaml
from tests.support.gateway import GatewayServer


@pytest.fixture
def gateway(make_gateway: GatewayFactory) -> GatewayServer:
    yaml = fake_models_yaml(echo={}) + "auth:\n  master_key: ${KEY}\n"
    return make_gateway(yaml, env={"KEY": "s3cret-key"})


def test_openai_sdk_with_and_without_the_key(gateway: GatewayServer) -> None:
    good = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="s3cret-key")
    assert good.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}]).choices
    bad = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_anthropic_sdk_sends_x_api_key(gateway: GatewayServer) -> None:
    good = anthropic.Anthropic(base_url=gateway.url, api_key="s3cret-key")
    assert good.messages.create(
        model="echo", max_tokens=5, messages=[{"role": "user", "content": "x"}]
    ).content
    bad = anthropic.Anthropic(base_url=gateway.url, api_key="nope", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="echo", max_tokens=5, messages=[{"role": "user", "content": "x"}])


def test_missing_key_is_401_with_a_reason(gateway: GatewayServer) -> None:
    reply = httpx.get(f"{gateway.url}/v1/models")
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in reply.json()["error"]["message"]


def test_probes_and_openapi_stay_open(gateway: GatewayServer) -> None:
    assert httpx.get(f"{gateway.url}/healthz").status_code == 200
    assert httpx.get(f"{gateway.url}/readyz").status_code == 200
    document = httpx.get(f"{gateway.url}/openapi.json").json()
    assert document["security"] == [{"bearer": []}]
