"""The admin key API and virtual keys end to end: a real gateway on 127.0.0.1, the official SDKs."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import httpx
import openai
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from tests.conftest import GatewayFactory, fake_models_yaml
from tests.support.gateway import GatewayServer
from tests.support.observe import Records, scrape

from interlace.store.driver_pool import DriverPool

MASTER = "master-s3cret"
ADMIN = "admin-s3cret"
CHAT = [{"role": "user", "content": "hello"}]


@pytest.fixture
def gateway(make_gateway: GatewayFactory) -> GatewayServer:
    yaml = (
        fake_models_yaml(echo={}, other={})
        + "auth:\n  master_key: ${MASTER}\n  admin_key: ${ADMIN}\n  key_cache: {refresh_interval: 0.2}\n"
    )
    return make_gateway(yaml, env={"MASTER": MASTER, "ADMIN": ADMIN})


def admin(gateway: GatewayServer, credential: str = ADMIN) -> httpx.Client:
    return httpx.Client(base_url=f"{gateway.url}/admin/v1", headers={"authorization": f"Bearer {credential}"})


def create(gateway: GatewayServer, **body: Any) -> dict[str, Any]:
    with admin(gateway) as client:
        reply = client.post("/keys", json={"name": "app", "tenant": "acme", **body})
    assert reply.status_code == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


def test_a_virtual_key_through_the_openai_sdk_from_creation_to_revocation(gateway: GatewayServer) -> None:
    created = create(gateway, team="search", models=["echo"], endpoints=["chat"], limits={"rpm": 100})
    key = created["key"]
    assert key.startswith(created["id"] + "_")
    assert created["tenant"] == "acme"
    assert created["limits"]["rpm"] == 100
    records = Records()
    gateway.runtime.observers.add(records)

    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)
    answer = client.chat.completions.create(model="echo", messages=CHAT)  # type: ignore[arg-type]
    assert answer.choices[0].message.content
    record = records.wait(1)[0]
    assert (record.api_key_id, record.tenant, record.status) == (created["id"], "acme", 200)

    with pytest.raises(openai.PermissionDeniedError, match="may not use model 'other'"):
        client.chat.completions.create(model="other", messages=CHAT)  # type: ignore[arg-type]
    with pytest.raises(openai.PermissionDeniedError, match="embeddings"):
        client.embeddings.create(model="echo", input="x")

    # the Anthropic SDK sends the key as x-api-key
    claude = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    assert claude.messages.create(model="echo", max_tokens=5, messages=CHAT).content  # type: ignore[arg-type]

    with admin(gateway) as api:
        listed = api.get("/keys", params={"tenant": "acme"}).json()["data"]
        assert [k["id"] for k in listed] == [created["id"]]
        assert "key" not in listed[0]
        assert all("hash" not in name for name in listed[0])
        assert key.rsplit("_", 1)[-1] not in str(listed)
        assert api.get(f"/keys/{created['id']}").json()["status"] == "active"
        revoked = api.delete(f"/keys/{created['id']}")
        assert revoked.status_code == 200
        assert revoked.json()["status"] == "revoked"
        assert api.get("/keys").json()["data"] == []
        assert [k["id"] for k in api.get("/keys?include_revoked=true").json()["data"]] == [created["id"]]

    with pytest.raises(openai.AuthenticationError, match="revoked"):  # at once on this instance
        client.chat.completions.create(model="echo", messages=CHAT)  # type: ignore[arg-type]
    with pytest.raises(anthropic.AuthenticationError, match="revoked"):
        claude.messages.create(model="echo", max_tokens=5, messages=CHAT)  # type: ignore[arg-type]


def test_rotation_with_a_grace_period(gateway: GatewayServer) -> None:
    created = create(gateway)
    with admin(gateway) as api:
        rotated = api.post(f"/keys/{created['id']}/rotate", json={"grace": "1h"})
        assert rotated.status_code == 200, rotated.text
        fresh = rotated.json()
        assert fresh["id"] == created["id"]
        assert fresh["key"] != created["key"]
        assert fresh["previous_secret_valid_until"] is not None
        for key in (created["key"], fresh["key"]):
            assert httpx.get(
                f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {key}"}
            ).is_success
        again = api.post(f"/keys/{created['id']}/rotate")  # no body: no grace
        assert again.status_code == 200
    for key, ok in ((created["key"], False), (fresh["key"], False), (again.json()["key"], True)):
        reply = httpx.get(f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {key}"})
        assert reply.is_success is ok


def test_only_the_operator_manages_keys(gateway: GatewayServer) -> None:
    tenant_key = create(gateway)["key"]
    assert httpx.get(f"{gateway.url}/admin/v1/keys").status_code == 401
    with admin(gateway, tenant_key) as api:
        denied = api.get("/keys")
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "permission_denied"
        assert api.post("/keys", json={"name": "mine", "tenant": "other"}).status_code == 403
    with admin(gateway, MASTER) as api:
        assert api.get("/keys").status_code == 200
    # the admin key opens the admin API only
    reply = httpx.get(f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {ADMIN}"})
    assert reply.status_code == 401
    assert "/admin/" in reply.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "x"}, "tenant"),
        ({"name": "x", "tenant": "acme", "limits": {"rpm": -1}}, "limits.rpm"),
        ({"name": "x", "tenant": "acme", "endpoints": ["nope"]}, "endpoints"),
        ({"name": "x", "tenant": "acme", "colour": "red"}, "colour"),
        ({"name": "", "tenant": "acme"}, "name"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(
    gateway: GatewayServer, body: dict[str, Any], param: str
) -> None:
    with admin(gateway) as api:
        reply = api.post("/keys", json=body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"


def test_other_admin_errors(gateway: GatewayServer) -> None:
    with admin(gateway) as api:
        assert api.post("/keys", content=b"{not json").json()["error"]["code"] == "invalid_json"
        assert api.get("/keys?include_revoked=maybe").json()["error"]["param"] == "include_revoked"
        missing = api.get("/keys/ik_0000000000000000")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "key_not_found"
        assert api.post("/keys/ik_0000000000000000/rotate", json={"grace": "later"}).status_code == 400


def test_rejected_requests_are_recorded_and_counted(gateway: GatewayServer) -> None:
    records = Records()
    gateway.runtime.observers.add(records)
    unknown = "ik_0123456789abcdef_" + "x" * 43
    reply = httpx.post(
        f"{gateway.url}/v1/chat/completions", headers={"authorization": f"Bearer {unknown}"}, json={}
    )
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == "Bearer"
    assert reply.json()["error"]["code"] == "unknown_api_key"
    assert "x" * 43 not in reply.text
    httpx.post(f"{gateway.url}/v1/embeddings", json={})
    first, second = records.wait(2)[:2]
    assert (first.status, first.error_code, first.operation) == (401, "unknown_api_key", "chat")
    assert first.request_id == reply.headers["x-request-id"]
    assert first.decisions == ["authn: rejected (unknown_api_key)"]
    assert (second.error_code, second.operation) == ("missing_api_key", "embeddings")
    page = scrape(gateway.url)
    assert page.value("interlace_errors_total", operation="chat", code="unknown_api_key") == 1
    assert page.value("interlace_errors_total", operation="embeddings", code="missing_api_key") == 1


def test_keys_keep_working_while_the_database_is_down(gateway: GatewayServer) -> None:
    key = create(gateway)["key"]
    database = gateway.runtime.database
    healthy = database._engine, database._pool
    broken = "sqlite+aiosqlite:////nonexistent-dir/interlace.db"
    # every query now fails to connect, through SQLAlchemy or through the driver
    database._engine, database._pool = create_async_engine(broken), DriverPool(broken)
    try:
        deadline = time.monotonic() + 30
        ready = httpx.get(f"{gateway.url}/readyz").json()
        while ready.get("details", {}).get("api_keys", {}).get("error") is None:
            assert time.monotonic() < deadline, f"the key cache never noticed: {ready}"
            time.sleep(0.1)
            ready = httpx.get(f"{gateway.url}/readyz").json()
        assert ready["checks"]["database"] is False
        assert ready["checks"]["api_keys"] is True  # serving the last snapshot

        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)
        assert client.chat.completions.create(model="echo", messages=CHAT).choices  # type: ignore[arg-type]
        stranger = openai.OpenAI(
            base_url=f"{gateway.url}/v1", api_key="ik_0123456789abcdef_" + "y" * 43, max_retries=0
        )
        with pytest.raises(openai.AuthenticationError, match="Unknown API key"):
            stranger.models.list()
        with admin(gateway) as api:
            unavailable = api.post("/keys", json={"name": "x", "tenant": "acme"})
        assert unavailable.status_code == 503
        assert unavailable.json()["error"]["code"] == "database_unavailable"
    finally:
        database._engine, database._pool = healthy
