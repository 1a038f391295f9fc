"""The audit log through the gateway: every request, gate rejections and 401s included; ``GET /v1/audit``.

Requests go through the real app and runtime (in process, over ASGI); the principal of each caller is
put in the scope the way the auth middleware does it. The 401 test runs a real gateway on 127.0.0.1
with a master key and the official OpenAI SDK.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send
from tests.conftest import GatewayFactory, fake_models_yaml

from interlace.config import parse_config
from interlace.core.errors import PermissionDenied
from interlace.core.principal import Principal
from interlace.gateway.app import build_app
from interlace.gateway.identity import PRINCIPAL_SCOPE_KEY
from interlace.runtime import Runtime
from interlace.security.audit.chain import content_digest
from interlace.security.audit.store import verify
from interlace.security.gate import Call, Hold

MESSAGES = [{"role": "user", "content": "the quarterly numbers, please"}]


class DenyModel:
    """A policy that refuses one model (403) and notes what it decided."""

    name = "deny"

    async def admit(self, call: Call[Any]) -> Hold | None:
        call.ctx.decisions.append(f"deny: model={call.op.model}")
        if call.op.model == "secret":
            raise PermissionDenied("model 'secret' is closed", code="model_not_allowed", param="model")
        return None


def as_caller(app: ASGIApp) -> ASGIApp:
    """``x-test-caller: KIND:TENANT`` becomes the request's principal, as the auth middleware would."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope["headers"]:
            if name == b"x-test-caller":
                kind, _, tenant = value.decode().partition(":")
                principal = Principal(
                    kind=kind,
                    id="master" if kind == "master" else f"ik_{tenant}",
                    tenant=tenant or None,
                    team=f"team-{tenant}" if tenant else None,
                    subject=f"user-{tenant}" if tenant else None,
                )
                scope = {**scope, PRINCIPAL_SCOPE_KEY: principal}
        await app(scope, receive, send)

    return wrapped


Client = Callable[[str], httpx.AsyncClient]


async def start_runtime(tmp_path: Path, audit: str = "") -> Runtime:
    yaml = fake_models_yaml(echo={}, secret={}) + audit
    config = parse_config(yaml, filename="test.yaml", environ={"AUDIT_KEY": "k" * 32})
    config = config.model_copy(update={"state": config.state.model_copy(update={"dir": str(tmp_path)})})
    runtime = Runtime(config, config_source="test")
    runtime.gate.policies.append(DenyModel())
    await runtime.start()
    return runtime


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = await start_runtime(tmp_path, "audit:\n  hmac_key: ${AUDIT_KEY}\n")
    yield runtime
    await runtime.stop()


def clients(runtime: Runtime) -> Client:
    app = as_caller(build_app(runtime))

    def client(caller: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gateway",
            headers={"x-test-caller": caller},
        )

    return client


async def chat(client: httpx.AsyncClient, model: str = "echo") -> httpx.Response:
    async with client:
        return await client.post("/v1/chat/completions", json={"model": model, "messages": MESSAGES})


async def audit(client: httpx.AsyncClient, query: str = "") -> httpx.Response:
    async with client:
        return await client.get(f"/v1/audit{query}")


async def traffic(runtime: Runtime) -> dict[str, Any]:
    """Two answered requests of tenant a, one refused by the gate; one of tenant b; flushed."""
    client = clients(runtime)
    answer = await chat(client("key:a"))
    assert answer.status_code == 200
    assert (await chat(client("key:a"))).status_code == 200
    assert (await chat(client("key:a"), "secret")).status_code == 403
    assert (await chat(client("key:b"))).status_code == 200
    assert runtime.audit is not None
    await runtime.audit.flush()
    body: dict[str, Any] = answer.json()
    return body


async def test_a_tenant_sees_only_its_own_entries(runtime: Runtime) -> None:
    await traffic(runtime)
    client = clients(runtime)

    a = (await audit(client("key:a"))).json()
    b = (await audit(client("key:b"))).json()

    assert [(e["tenant"], e["status"]) for e in a["data"]] == [("a", 200), ("a", 200), ("a", 403)]
    assert [(e["tenant"], e["status"]) for e in b["data"]] == [("b", 200)]
    assert not a["has_more"]


async def test_a_tenant_may_not_ask_for_another(runtime: Runtime) -> None:
    await traffic(runtime)

    refused = await audit(clients(runtime)("key:a"), "?tenant=b")

    assert refused.status_code == 403
    assert refused.json()["error"]["param"] == "tenant"
    assert refused.json()["error"]["code"] == "tenant_not_allowed"


async def test_the_operator_sees_every_tenant_or_the_one_asked_for(runtime: Runtime) -> None:
    await traffic(runtime)
    client = clients(runtime)

    every = (await audit(client("master:"))).json()
    only_b = (await audit(client("master:"), "?tenant=b")).json()

    assert [e["tenant"] for e in every["data"]] == ["a", "a", "a", "b"]
    assert [e["seq"] for e in every["data"]] == [1, 2, 3, 4]
    assert [e["tenant"] for e in only_b["data"]] == ["b"]


async def test_pages_follow_the_cursor(runtime: Runtime) -> None:
    await traffic(runtime)
    client = clients(runtime)

    first = (await audit(client("key:a"), "?limit=2")).json()
    rest = (await audit(client("key:a"), f"?limit=2&cursor={first['next_cursor']}")).json()

    assert [e["seq"] for e in first["data"]] == [1, 2]
    assert first["has_more"]
    assert [e["seq"] for e in rest["data"]] == [3]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("?limit=0", "limit"),
        ("?limit=x", "limit"),
        ("?cursor=-1", "cursor"),
        ("?since=yesterday", "since"),
        ("?since=2026-11-02&until=2026-11-01", "since"),
    ],
)
async def test_bad_queries_name_their_parameter(runtime: Runtime, query: str, param: str) -> None:
    response = await audit(clients(runtime)("key:a"), query)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


async def test_an_entry_says_who_what_where_and_what_was_decided(runtime: Runtime) -> None:
    answer = await traffic(runtime)
    entries = (await audit(clients(runtime)("key:a"))).json()["data"]
    served, refused = entries[0], entries[2]

    assert {k: served[k] for k in ("principal_kind", "principal_id", "tenant", "team", "subject")} == {
        "principal_kind": "key",
        "principal_id": "ik_a",
        "tenant": "a",
        "team": "team-a",
        "subject": "user-a",
    }
    assert served["endpoint"] == "/v1/chat/completions"
    assert (served["requested_model"], served["served_model"], served["provider"]) == ("echo", "echo", "fake")
    assert served["deployment"]
    assert served["decisions"] == ["deny: model=echo"]
    assert served["prompt_tokens"] == answer["usage"]["prompt_tokens"]
    assert served["alg"] == "hmac-sha256"
    assert (refused["status"], refused["error_code"]) == (403, "model_not_allowed")
    assert refused["decisions"] == ["deny: model=secret"]


async def test_content_is_kept_as_hashes_by_default(runtime: Runtime) -> None:
    answer = await traffic(runtime)
    entry = (await audit(clients(runtime)("key:a"))).json()["data"][0]
    text = answer["choices"][0]["message"]["content"]

    assert entry["content"] == "hash"
    assert entry["prompt_sha256"] == content_digest(MESSAGES)
    assert entry["completion_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert "quarterly" not in str(entry)


async def test_the_chain_written_by_the_gateway_verifies(runtime: Runtime) -> None:
    await traffic(runtime)

    result = await verify(runtime.database, b"k" * 32)

    assert result.ok
    assert result.head_seq == 4


async def test_full_content_and_no_content(tmp_path: Path) -> None:
    for mode, expected in (("full", True), ("none", False)):
        runtime = await start_runtime(tmp_path / mode, f"audit:\n  content: {mode}\n")
        try:
            await traffic(runtime)
            entry = (await audit(clients(runtime)("key:a"))).json()["data"][0]
        finally:
            await runtime.stop()
        assert entry["content"] == mode
        assert ("quarterly" in str(entry.get("prompt"))) is expected
        assert "prompt_sha256" not in entry
        assert entry["alg"] == "sha256"


async def test_a_disabled_audit_log_takes_nothing(tmp_path: Path) -> None:
    runtime = await start_runtime(tmp_path, "audit:\n  enabled: false\n")
    try:
        assert runtime.audit is None
        assert (await chat(clients(runtime)("key:a"))).status_code == 200
        assert (await audit(clients(runtime)("key:a"))).json()["data"] == []
    finally:
        await runtime.stop()


def test_an_authentication_failure_is_audited(make_gateway: GatewayFactory) -> None:
    yaml = fake_models_yaml(echo={}) + "auth:\n  master_key: ${MASTER}\n"
    gateway = make_gateway(yaml, env={"MASTER": "sk-master-key"})
    stranger = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-wrong", max_retries=0)
    operator = httpx.Client(base_url=gateway.url, headers={"authorization": "Bearer sk-master-key"})

    with pytest.raises(openai.AuthenticationError):
        stranger.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])
    assert gateway.runtime.audit is not None
    entries = _poll(operator, lambda data: any(e["status"] == 401 for e in data))
    operator.close()

    rejected = next(e for e in entries if e["status"] == 401)
    assert rejected["endpoint"] == "/v1/chat/completions"
    assert rejected["principal_kind"] == "anonymous"
    assert rejected["error_code"]


def _poll(client: httpx.Client, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """The audit entries once ``done`` holds (the writer flushes every 200 ms); fails after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        data: list[dict[str, Any]] = client.get("/v1/audit").json()["data"]
        if done(data) or time.monotonic() > deadline:
            return data
        time.sleep(0.05)
