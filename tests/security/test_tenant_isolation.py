"""A tenant's key reads only its own tenant's data: usage, and never the key API.

The real app and runtime, with virtual keys verified by the real authentication middleware.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from tests.conftest import fake_models_yaml
from tests.support.events import record

from interlace.config import parse_config
from interlace.gateway.app import build_app
from interlace.runtime import Runtime
from interlace.security.keys import KeySpec

MASTER = "m-s3cret"


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    yaml = fake_models_yaml(echo={}) + "auth:\n  master_key: ${MASTER}\n"
    config = parse_config(yaml, filename="test.yaml", environ={"MASTER": MASTER})
    config = config.model_copy(update={"state": config.state.model_copy(update={"dir": str(tmp_path)})})
    runtime = Runtime(config, config_source="test")
    await runtime.start()
    now = datetime.now(UTC).timestamp()
    for rec in (
        record(started_at=now, tenant="a", api_key_id="ka", model="echo", prompt=10),
        record(started_at=now, tenant="b", api_key_id="kb", model="echo", prompt=300),
        record(started_at=now, tenant=None, api_key_id=None, model="echo", prompt=4000),
    ):
        runtime.observers.observe(rec)
    await runtime.event_log.flush()
    yield runtime
    await runtime.stop()


async def call(runtime: Runtime, credential: str, method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=build_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return await client.request(method, path, headers={"authorization": f"Bearer {credential}"})


async def test_a_tenant_key_reads_only_its_tenant(runtime: Runtime) -> None:
    key_a = await runtime.keys.create(KeySpec(name="a", tenant="a"))
    key_b = await runtime.keys.create(KeySpec(name="b", tenant="b"))

    usage_a = (await call(runtime, key_a.token, "GET", "/v1/usage")).json()
    assert usage_a["tenant"] == "a"
    assert usage_a["total"]["prompt_tokens"] == 10
    usage_b = (await call(runtime, key_b.token, "GET", "/v1/usage?tenant=b")).json()
    assert usage_b["total"]["prompt_tokens"] == 300

    for query in ("?tenant=b", "?tenant=", "?group_by=api_key&tenant=b"):
        reply = await call(runtime, key_a.token, "GET", f"/v1/usage{query}")
        if query == "?tenant=":  # empty: the caller's own tenant
            assert reply.json()["total"]["prompt_tokens"] == 10
            continue
        assert reply.status_code == 403
        assert reply.json()["error"]["param"] == "tenant"

    for method, path in (
        ("GET", "/admin/v1/keys"),
        ("GET", "/admin/v1/keys?tenant=b"),
        ("GET", f"/admin/v1/keys/{key_b.key.id}"),
        ("GET", f"/admin/v1/keys/{key_a.key.id}"),
        ("DELETE", f"/admin/v1/keys/{key_b.key.id}"),
        ("POST", f"/admin/v1/keys/{key_b.key.id}/rotate"),
    ):
        assert (await call(runtime, key_a.token, method, path)).status_code == 403, (method, path)
    assert (await runtime.keys.require(key_b.key.id)).revoked_at is None


async def test_the_operator_reads_any_tenant(runtime: Runtime) -> None:
    own = (await call(runtime, MASTER, "GET", "/v1/usage")).json()
    assert own["tenant"] is None
    assert own["total"]["prompt_tokens"] == 4000
    other = (await call(runtime, MASTER, "GET", "/v1/usage?tenant=b")).json()
    assert (other["tenant"], other["total"]["prompt_tokens"]) == ("b", 300)
    keys = (await call(runtime, MASTER, "GET", "/admin/v1/keys")).json()
    assert keys["data"] == []
