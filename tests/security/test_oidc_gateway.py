"""End to end: the official openai SDK sends a bearer JWT from a real issuer to a real gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from tests.conftest import GatewayFactory, fake_models_yaml
from tests.support.gateway import GatewayServer

from interlace.testing.oidc_issuer import OidcIssuer

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcIssuer]:
    with OidcIssuer(path="/realms/acme") as issuer:
        yield issuer


@pytest.fixture
def gateway(make_gateway: GatewayFactory, idp: OidcIssuer) -> GatewayServer:
    yaml = fake_models_yaml(echo={}, other={}) + (
        "auth:\n"
        "  oidc:\n"
        "    issuers:\n"
        f"      - issuer: {idp.issuer}\n"
        "        audience: interlace\n"
        "        claims: {tenant_claim: org_id}\n"
    )
    return make_gateway(yaml)


def client(gateway: GatewayServer, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0)


def test_a_jwt_calls_the_gateway_through_the_openai_sdk(gateway: GatewayServer, idp: OidcIssuer) -> None:
    token = idp.token(sub="alice", org_id="acme")
    answer = client(gateway, token).chat.completions.create(model="echo", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content
    ready = httpx.get(f"{gateway.url}/readyz").json()
    assert ready["details"]["oidc"][idp.issuer]["keys"] == 1


def test_token_scopes_reach_the_gate(gateway: GatewayServer, idp: OidcIssuer) -> None:
    token = idp.token(sub="alice", org_id="acme", scope="openid interlace:chat interlace:model:echo")
    scoped = client(gateway, token)
    assert scoped.chat.completions.create(model="echo", messages=MESSAGES).choices  # type: ignore[arg-type]
    with pytest.raises(openai.PermissionDeniedError) as caught:
        scoped.chat.completions.create(model="other", messages=MESSAGES)  # type: ignore[arg-type]
    assert f"jwt:{idp.issuer}#alice" in caught.value.message
    with pytest.raises(openai.PermissionDeniedError):
        scoped.embeddings.create(model="echo", input="x")


def test_refused_tokens_are_401_with_the_reason(gateway: GatewayServer, idp: OidcIssuer) -> None:
    now = int(time.time())
    cases = {
        "token_expired": idp.token(org_id="acme", exp=now - 3600, iat=now - 7200),
        "invalid_audience": idp.token(org_id="acme", aud="someone-else"),
        "untrusted_issuer": idp.token(org_id="acme", iss="https://evil.example.com"),
        "invalid_token": idp.token(),  # no org_id claim and no default tenant
    }
    for code, token in cases.items():
        with pytest.raises(openai.AuthenticationError) as caught:
            client(gateway, token).chat.completions.create(model="echo", messages=MESSAGES)  # type: ignore[arg-type]
        assert caught.value.status_code == 401
        assert caught.value.code == code, caught.value.message
        assert caught.value.response.headers["www-authenticate"] == "Bearer"
