"""x-request-id: accepted from the client when sane, else generated; on every response; in the record."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import GatewayFactory, fake_models_yaml
from tests.support.gateway import GatewayServer
from tests.support.observe import Records

from interlace.config import parse_config
from interlace.gateway.app import build_app
from interlace.runtime import Runtime

HELLO = {"model": "echo", "messages": [{"role": "user", "content": "hello"}]}
GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def gateway(make_gateway: GatewayFactory) -> tuple[GatewayServer, Records]:
    server = make_gateway(fake_models_yaml(echo={}))
    records = Records()
    server.runtime.observers.add(records)
    return server, records


def test_generated_when_the_client_sends_none(gateway: tuple[GatewayServer, Records]) -> None:
    server, records = gateway
    first = httpx.post(f"{server.url}/v1/chat/completions", json=HELLO)
    second = httpx.post(f"{server.url}/v1/chat/completions", json=HELLO)
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(GENERATED.fullmatch(ident) for ident in ids)
    assert ids[0] != ids[1]
    assert [r.request_id for r in records.wait(2)] == ids


def test_a_sane_client_id_is_kept(gateway: tuple[GatewayServer, Records]) -> None:
    server, records = gateway
    ident = "Req_2026.11-27." + "x" * 100
    reply = httpx.post(f"{server.url}/v1/chat/completions", json=HELLO, headers={"x-request-id": ident})
    assert reply.headers["x-request-id"] == ident
    with httpx.stream(
        "POST",
        f"{server.url}/v1/chat/completions",
        json={**HELLO, "stream": True},
        headers={"x-request-id": "stream-1"},
    ) as streamed:
        assert streamed.headers["x-request-id"] == "stream-1"
        streamed.read()
    assert [r.request_id for r in records.wait(2)] == [ident, "stream-1"]


@pytest.mark.parametrize(
    "sent",
    ["x" * 129, "two words", 'quoted"id', "semi;colon", "new\\nline", "tab\tbed", "ünïcode", ""],
)
def test_an_insane_client_id_is_replaced(gateway: tuple[GatewayServer, Records], sent: str) -> None:
    server, records = gateway
    headers = [("x-request-id", sent.encode("latin-1"))]
    reply = httpx.post(f"{server.url}/v1/chat/completions", json=HELLO, headers=headers)
    assert reply.status_code == 200
    answered = reply.headers["x-request-id"]
    assert GENERATED.fullmatch(answered)
    assert records.wait(1)[0].request_id == answered


def test_on_errors_and_unknown_paths(gateway: tuple[GatewayServer, Records]) -> None:
    server, records = gateway
    sent = {"x-request-id": "err-1"}
    missing = httpx.post(f"{server.url}/v1/chat/completions", json={**HELLO, "model": "nope"}, headers=sent)
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == "err-1"
    invalid = httpx.post(f"{server.url}/v1/chat/completions", content=b"{", headers={"x-request-id": "bad"})
    assert invalid.status_code == 400
    assert invalid.headers["x-request-id"] == "bad"
    no_route = httpx.get(f"{server.url}/no/such/path", headers={"x-request-id": "route-1"})
    assert no_route.status_code == 404
    assert no_route.headers["x-request-id"] == "route-1"
    wrong_method = httpx.get(f"{server.url}/v1/chat/completions")
    assert wrong_method.status_code == 405
    assert GENERATED.fullmatch(wrong_method.headers["x-request-id"])
    assert GENERATED.fullmatch(httpx.get(f"{server.url}/healthz").headers["x-request-id"])
    # the two API requests are recorded; unknown paths and probes are not requests of the API
    first, second = records.wait(2)
    assert (first.request_id, first.status, first.error_code) == ("err-1", 404, "model_not_found")
    assert (second.request_id, second.status, second.error_code) == ("bad", 400, "invalid_json")


def test_on_401s_of_the_authentication_middleware(make_gateway: GatewayFactory) -> None:
    yaml = fake_models_yaml(echo={}) + "auth:\n  master_key: ${KEY}\n"
    server = make_gateway(yaml, env={"KEY": "s3cret-key"})
    refused = httpx.get(f"{server.url}/v1/models", headers={"x-request-id": "anon-1"})
    assert refused.status_code == 401
    assert refused.headers["x-request-id"] == "anon-1"
    assert GENERATED.fullmatch(httpx.post(f"{server.url}/v1/messages", json={}).headers["x-request-id"])
    authorized = {"authorization": "Bearer s3cret-key"}
    assert httpx.get(f"{server.url}/nope", headers=authorized).headers["x-request-id"]


@pytest.fixture
async def in_process(tmp_path: Path) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    config = parse_config(fake_models_yaml(echo={}) + f"state:\n  dir: {tmp_path}\n", environ={})
    runtime = Runtime(config, config_source="test")
    await runtime.start()
    transport = httpx.ASGITransport(app=build_app(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield runtime, client
    await runtime.stop()


async def test_on_the_500_of_an_unhandled_error(
    in_process: tuple[Runtime, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, client = in_process
    records = Records()
    runtime.observers.add(records)

    async def broken(*args: object, **kwargs: object) -> dict[str, object]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(runtime.router, "chat", broken)
    reply = await client.post("/v1/chat/completions", json=HELLO, headers={"x-request-id": "bug-1"})
    assert reply.status_code == 500
    assert reply.headers["x-request-id"] == "bug-1"
    (record,) = records.records
    assert (record.request_id, record.status, record.error_code) == ("bug-1", 500, "internal_error")
