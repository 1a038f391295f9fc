"""Rate limits through the real app: per key, per tenant and per model; 429s, headers, settle, refund."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.observe import Records
from tests.support.quotas import client, running

from interlace.config import parse_config
from interlace.core.principal import Limits, Principal
from interlace.gateway.app import build_app
from interlace.runtime import Runtime
from interlace.security.keys.spec import KeyLimits, KeySpec

YAML = """
quotas: {default_output_tokens: 50}
models:
  echo:
    deployments: [{provider: fake, model: echo}]
  capped:
    limits: {rpm: 2}
    deployments: [{provider: fake, model: echo}]
  flaky:
    retry: {max_attempts: 1}
    breaker: {enabled: false}
    deployments: [{provider: fake, model: echo, options: {fault: server_error}}]
tenants:
  acme:
    limits: {tpm: 100}
"""

HELLO = [{"role": "user", "content": "hello world"}]  # ~3 tokens estimated; the fake bills 2 + 3


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with running(YAML, tmp_path) as runtime:
        yield runtime


def key(ident: str, tenant: str | None = "t", **limits: Any) -> Principal:
    return Principal(kind="key", id=ident, tenant=tenant, limits=Limits(**limits))


async def chat(http: httpx.AsyncClient, model: str = "echo", **extra: Any) -> httpx.Response:
    return await http.post("/v1/chat/completions", json={"model": model, "messages": HELLO, **extra})


async def settled(runtime: Runtime) -> None:
    """Wait for the settlements the finished requests started (they run after the answer)."""
    await runtime.gate.aclose()


async def test_a_key_gets_exactly_its_rpm_then_an_openai_429(runtime: Runtime) -> None:
    async with client(runtime, key("ik_a", rpm=3)) as http:
        answers = [await chat(http) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["x-ratelimit-limit-requests"] == "3"
    assert answers[0].headers["x-ratelimit-reset-requests"].endswith("s")
    refused = answers[3]
    error = refused.json()["error"]
    assert error["type"] == "requests"
    assert error["code"] == "rate_limit_exceeded"
    assert "key 'ik_a'" in error["message"]
    assert "requests per minute (RPM): limit 3" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-limit-requests"] == "3"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"


async def test_tokens_are_reserved_pessimistically_and_settled_to_real_usage(runtime: Runtime) -> None:
    async with client(runtime, key("ik_b", tenant="acme")) as http:
        first = await chat(http)
        assert first.status_code == 200
        # reserved: 3 estimated prompt tokens + 50 default output tokens
        assert first.headers["x-ratelimit-limit-tokens"] == "100"
        assert first.headers["x-ratelimit-remaining-tokens"] == "47"
        assert "x-ratelimit-limit-requests" not in first.headers  # no request limit applies
        assert first.json()["usage"]["total_tokens"] == 5
        await settled(runtime)
        second = await chat(http, max_tokens=10)  # 5 really used, 13 reserved now
        assert second.headers["x-ratelimit-remaining-tokens"] == str(100 - 5 - 13)
        await settled(runtime)
        too_large = await chat(http, max_tokens=200)
    assert too_large.status_code == 429
    error = too_large.json()["error"]
    assert error["type"] == "tokens"
    assert "Request too large for tenant 'acme' on tokens per minute (TPM): limit 100" in error["message"]
    assert "retry-after" not in too_large.headers  # waiting would not help


async def test_a_model_limit_counts_every_caller(runtime: Runtime) -> None:
    async with client(runtime, key("ik_c")) as one, client(runtime, key("ik_d")) as two:
        assert (await chat(one, "capped")).status_code == 200
        assert (await chat(two, "capped")).status_code == 200
        refused = await chat(one, "capped")
        assert (await chat(two, "echo")).status_code == 200  # other models are not limited
    assert refused.status_code == 429
    assert "model 'capped'" in refused.json()["error"]["message"]


async def test_a_request_that_failed_before_any_output_is_refunded(runtime: Runtime) -> None:
    async with client(runtime, key("ik_e", rpm=1)) as http:
        assert (await chat(http, "flaky")).status_code == 502
        await settled(runtime)
        assert (await chat(http, "flaky")).status_code == 502  # not 429: the first was refunded
        await settled(runtime)
        assert (await chat(http, "echo")).status_code == 200


async def test_streams_carry_the_headers_and_settle_to_their_usage(runtime: Runtime) -> None:
    body = {"model": "echo", "messages": HELLO, "stream": True, "max_tokens": 20}
    async with client(runtime, key("ik_f", tenant="acme")) as http:
        async with http.stream("POST", "/v1/chat/completions", json=body) as answer:
            assert answer.status_code == 200
            assert answer.headers["x-ratelimit-remaining-tokens"] == str(100 - 23)
            assert (await answer.aread()).endswith(b"data: [DONE]\n\n")
        await settled(runtime)
        again = await chat(http, max_tokens=20)
    assert again.headers["x-ratelimit-remaining-tokens"] == str(100 - 5 - 23)


async def test_anthropic_clients_get_their_own_error_shape(runtime: Runtime) -> None:
    body = {"model": "echo", "max_tokens": 10, "messages": HELLO}
    async with client(runtime, key("ik_g", rpm=1)) as http:
        assert (await http.post("/v1/messages", json=body)).status_code == 200
        refused = await http.post("/v1/messages", json=body)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert "retry-after" in refused.headers


async def test_refusals_are_recorded_and_counted(runtime: Runtime) -> None:
    records = Records()
    runtime.observers.add(records)
    async with client(runtime, key("ik_h", rpm=1)) as http:
        await chat(http)
        await chat(http)
        metrics = (await http.get("/metrics")).text
    refused = records.wait(2)[1]
    assert refused.status == 429
    assert "rate_limits:refused key requests 1/min" in refused.decisions
    assert 'interlace_quota_rejections_total{kind="requests",scope="key"} 1.0' in metrics


async def test_the_gate_runs_the_quotas_last(runtime: Runtime) -> None:
    names = [p.name for p in runtime.gate.policies]
    assert (names[0], names[-2], names[-1]) == ("scopes", "rate_limits", "budgets")


async def test_a_virtual_keys_own_limits_are_enforced(tmp_path: Path) -> None:
    config = parse_config(
        "auth: {master_key: '${MASTER}'}\n" + YAML, filename="test.yaml", environ={"MASTER": "sk-master-1"}
    )
    config = config.model_copy(update={"state": config.state.model_copy(update={"dir": str(tmp_path)})})
    runtime = Runtime(config, config_source="test")
    await runtime.start()
    try:
        issued = await runtime.keys.create(KeySpec(name="ci", tenant="t", limits=KeyLimits(rpm=2)))
        assert runtime.key_cache is not None
        await runtime.key_cache.refresh()
        transport = httpx.ASGITransport(app=build_app(runtime))
        headers = {"authorization": f"Bearer {issued.token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers) as http:
            statuses = [(await chat(http)).status_code for _ in range(3)]
            refused = await chat(http)
    finally:
        await runtime.stop()
    assert statuses == [200, 200, 429]
    assert f"key '{issued.key.id}'" in refused.json()["error"]["message"]
