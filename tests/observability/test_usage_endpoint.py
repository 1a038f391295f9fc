"""``GET /v1/usage``: tenant-scoped usage from the read model, through the real app and runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send
from tests.conftest import fake_models_yaml
from tests.support.events import record

from interlace.config import parse_config
from interlace.core.principal import Principal
from interlace.gateway.app import build_app
from interlace.gateway.identity import PRINCIPAL_SCOPE_KEY
from interlace.runtime import Runtime

TODAY = datetime.now(UTC).date()


def as_tenant(app: ASGIApp, tenant: str | None) -> ASGIApp:
    """What the auth middleware does for a key of ``tenant``: put its principal in the scope."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if tenant is not None:
            principal = Principal(kind="key", id=f"ik_{tenant}", tenant=tenant)
            scope = {**scope, PRINCIPAL_SCOPE_KEY: principal}
        await app(scope, receive, send)

    return wrapped


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    config = parse_config(fake_models_yaml(echo={}), filename="test.yaml", environ={})
    config = config.model_copy(update={"state": config.state.model_copy(update={"dir": str(tmp_path)})})
    runtime = Runtime(config, config_source="test")
    await runtime.start()
    now = datetime.now(UTC).timestamp()
    for rec in (
        record(started_at=now, tenant="a", api_key_id="ka", model="echo", prompt=10, cost_usd=0.001),
        record(started_at=now, tenant="a", api_key_id="ka", model="big", prompt=20, cost_usd=0.002),
        record(started_at=now - 86_400, tenant="a", api_key_id="ka2", model="echo", prompt=1, status=500),
        record(started_at=now, tenant="b", api_key_id="kb", model="echo", prompt=300, cost_usd=0.3),
        record(started_at=now, tenant=None, api_key_id=None, model="echo", prompt=4000, cost_usd=4.0),
    ):
        runtime.observers.observe(rec)
    await runtime.event_log.flush()
    yield runtime
    await runtime.stop()


async def get(runtime: Runtime, tenant: str | None, query: str = "") -> httpx.Response:
    transport = httpx.ASGITransport(app=as_tenant(build_app(runtime), tenant))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return await client.get(f"/v1/usage{query}")


def keyed(body: dict[str, Any], key: str) -> dict[Any, tuple[int, int, float]]:
    return {row[key]: (row["requests"], row["prompt_tokens"], row["cost_usd"]) for row in body["data"]}


async def test_each_tenant_sees_only_its_own_usage(runtime: Runtime) -> None:
    a = (await get(runtime, "a", "?group_by=model")).json()
    assert keyed(a, "model") == {"big": (1, 20, 0.002), "echo": (2, 11, 0.001)}
    assert a["tenant"] == "a"
    assert a["total"]["requests"] == 3
    assert a["total"]["errors"] == 1
    assert a["total"]["cost_usd"] == 0.003

    b = (await get(runtime, "b", "?group_by=api_key")).json()
    assert keyed(b, "api_key_id") == {"kb": (1, 300, 0.3)}

    default = (await get(runtime, None)).json()  # the single default tenant: requests without a tenant
    assert default["tenant"] is None
    assert keyed(default, "day") == {TODAY.isoformat(): (1, 4000, 4.0)}

    assert (await get(runtime, "c")).json()["data"] == []


async def test_the_window_and_grouping(runtime: Runtime) -> None:
    yesterday = TODAY - timedelta(days=1)
    body = (await get(runtime, "a", f"?start={yesterday}&end={yesterday}")).json()
    assert keyed(body, "day") == {yesterday.isoformat(): (1, 1, 0.0)}
    assert (body["start"], body["end"], body["group_by"]) == (yesterday.isoformat(),) * 2 + ("day",)

    body = (await get(runtime, "a")).json()  # default: the last 30 days to today
    assert body["start"] == (TODAY - timedelta(days=29)).isoformat()
    assert [row["day"] for row in body["data"]] == [yesterday.isoformat(), TODAY.isoformat()]
    assert set(body["data"][0]) >= {
        "requests", "errors", "partial", "estimated", "prompt_tokens", "completion_tokens",
        "cached_tokens", "reasoning_tokens", "total_tokens", "cost_usd", "shadow_requests",
        "shadow_cost_usd",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("?start=2026-13-01", "start"),
        ("?end=yesterday", "end"),
        ("?start=2026-12-05&end=2026-12-01", "start"),
        ("?start=1990-01-01&end=2026-01-01", "start"),
        ("?group_by=tenant", "group_by"),
    ],
)
async def test_bad_parameters_answer_400_naming_them(runtime: Runtime, query: str, param: str) -> None:
    response = await get(runtime, "a", query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param
    assert param in error["message"]


async def test_requests_that_share_a_client_request_id_are_each_counted(runtime: Runtime) -> None:
    """A client reusing its ``x-request-id`` (a retry, a fixed header) is billed for every request."""
    transport = httpx.ASGITransport(app=as_tenant(build_app(runtime), "d"))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        for _ in range(3):
            reply = await client.post(
                "/v1/chat/completions",
                json={"model": "echo", "messages": [{"role": "user", "content": "hi"}]},
                headers={"x-request-id": "client-fixed-id"},
            )
            assert reply.status_code == 200
            assert reply.headers["x-request-id"] == "client-fixed-id"
    await runtime.event_log.flush()
    body = (await get(runtime, "d")).json()
    assert body["total"]["requests"] == 3
