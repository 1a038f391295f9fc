"""The webhook source end to end: a real gateway accepts events (202 once durable, authenticated,
idempotent by event id) into the inbox; flow processes lease them, ack deletes, nack and expired
leases hand them out again, two processes never hold one event at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import GatewayFactory
from tests.support.gateway import GatewayServer

from interlace.flows.connectors.webhook.config import WebhookSourceConfig
from interlace.flows.connectors.webhook.inbox import Inbox
from interlace.flows.connectors.webhook.source import WebhookDelivery, WebhookSource
from interlace.flows.engine import FlowEngine
from interlace.flows.services import FlowServices
from interlace.flows.testing import MemorySink
from interlace.store.database import Database

MASTER = "sk-master-flows-test-0123456789"
CONFIG = """
auth: {master_key: "${MASTER}"}
flows:
  tickets:
    source: {type: webhook, key_field: customer}
    sink: {type: files, path: out.jsonl}
    principal: {tenant: acme}
  other:
    source: {type: files, dir: somewhere}
    sink: {type: files, path: out.jsonl}
"""


@pytest.fixture
def gateway(make_gateway: GatewayFactory) -> GatewayServer:
    return make_gateway(CONFIG, env={"MASTER": MASTER})


@pytest.fixture
async def database(gateway: GatewayServer) -> AsyncIterator[Database]:
    db = Database(gateway.runtime.database.url)  # the gateway's state database, opened by this process
    await db.start()
    try:
        yield db
    finally:
        await db.aclose()


def post(
    gateway: GatewayServer, flow: str, body: Any, token: str | None = MASTER, **headers: str
) -> httpx.Response:
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.post(f"{gateway.url}/v1/flows/{flow}/events", json=body, headers=headers, timeout=10)


def source(database: Database, **options: Any) -> WebhookSource:
    config = WebhookSourceConfig(type="webhook", poll_interval=0.02, key_field="customer", **options)
    return WebhookSource(config, FlowServices(flow="tickets", database=database))


async def take(source: WebhookSource, count: int, *, max_in_flight: int = 50) -> list[WebhookDelivery]:
    iterator = source.deliveries(max_in_flight=max_in_flight)
    got = [await asyncio.wait_for(anext(iterator), 10) for _ in range(count)]
    await iterator.aclose()  # type: ignore[attr-defined]
    return got


async def test_events_are_accepted_with_202_once_and_flow_to_the_sink(
    gateway: GatewayServer, database: Database
) -> None:
    answers = [
        post(gateway, "tickets", {"customer": "c1", "text": f"ticket {n}"}, **{"idempotency-key": f"e{n}"})
        for n in range(5)
    ]
    assert [a.status_code for a in answers] == [202] * 5
    assert answers[0].json() == {"object": "flow.event", "id": "e0", "flow": "tickets", "duplicate": False}
    again = post(gateway, "tickets", {"customer": "c1", "text": "ticket 0"}, **{"idempotency-key": "e0"})
    assert again.status_code == 202
    assert again.json()["duplicate"] is True
    by_body_id = post(gateway, "tickets", {"id": "from-body", "customer": "c2"})
    assert by_body_id.json()["id"] == "from-body"
    traced = post(
        gateway,
        "tickets",
        {"customer": "c3"},
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )
    assert await Inbox(database).pending("tickets") == 7

    sink = MemorySink()
    stop = asyncio.Event()
    engine = FlowEngine(
        "tickets", source(database), [], {"default": sink}, dead_letter=MemorySink(), max_in_flight=4
    )
    running = asyncio.create_task(engine.run(stop))
    while len(sink.written) < 7:
        await asyncio.sleep(0.02)
    stop.set()
    await running
    ids = [m.id for m in sink.written]
    assert sorted(ids) == sorted(["e0", "e1", "e2", "e3", "e4", "from-body", traced.json()["id"]])
    assert {m.key for m in sink.written} == {"c1", "c2", "c3"}
    [with_trace] = [m for m in sink.written if m.key == "c3"]
    assert with_trace.headers["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert await Inbox(database).pending("tickets") == 0  # acked: deleted


def test_the_endpoint_refuses_what_it_must(gateway: GatewayServer) -> None:
    assert post(gateway, "tickets", {"a": 1}, token=None).status_code == 401
    missing = post(gateway, "nope", {"a": 1})
    assert missing.status_code == 404
    assert "tickets" in missing.json()["error"]["message"]
    assert post(gateway, "other", {"a": 1}).status_code == 404  # not a webhook flow
    bad = httpx.post(
        f"{gateway.url}/v1/flows/tickets/events",
        content=b"[1, 2",
        headers={"authorization": f"Bearer {MASTER}", "content-type": "application/json"},
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_json"
    admin = {"authorization": f"Bearer {MASTER}"}
    chat_only = httpx.post(
        f"{gateway.url}/admin/v1/keys",
        json={"name": "c", "tenant": "acme", "endpoints": ["chat"]},
        headers=admin,
    ).json()["key"]
    denied = post(gateway, "tickets", {"a": 1}, token=chat_only)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "endpoint_not_allowed"
    stranger = httpx.post(
        f"{gateway.url}/admin/v1/keys", json={"name": "s", "tenant": "globex"}, headers=admin
    ).json()["key"]
    assert post(gateway, "tickets", {"a": 1}, token=stranger).json()["error"]["code"] == "tenant_not_allowed"
    tenant_key = httpx.post(
        f"{gateway.url}/admin/v1/keys",
        json={"name": "t", "tenant": "acme", "endpoints": ["flows"]},
        headers=admin,
    ).json()["key"]
    assert post(gateway, "tickets", {"a": 1}, token=tenant_key).status_code == 202


async def test_leases_share_the_inbox_and_nacked_or_expired_events_come_back(
    gateway: GatewayServer, database: Database
) -> None:
    for n in range(6):
        assert post(gateway, "tickets", {"n": n}, **{"idempotency-key": f"l{n}"}).status_code == 202
    one, two = source(database, lease=30), source(database, lease=30)
    first = await take(one, 3, max_in_flight=3)
    second = await take(two, 3, max_in_flight=3)
    assert {d.message.id for d in first}.isdisjoint({d.message.id for d in second})
    assert not first[0].redelivered
    await first[0].nack()
    for delivery in first[1:] + second:
        await delivery.ack()
    [back] = await take(two, 1)
    assert back.message.id == first[0].message.id
    assert back.redelivered
    # a process that dies holding an event: its lease expires, another process gets it
    short = source(database, lease=0.2)
    await back.nack()
    [held] = await take(short, 1)
    [recovered] = await take(two, 1)
    assert recovered.message.id == held.message.id
    assert recovered.redelivered
    await recovered.ack()
    assert await Inbox(database).pending("tickets") == 0


async def test_the_source_holds_no_more_than_max_in_flight(
    gateway: GatewayServer, database: Database, tmp_path: Path
) -> None:
    for n in range(5):
        post(gateway, "tickets", {"n": n}, **{"idempotency-key": f"b{n}"})
    webhook = source(database)
    iterator = webhook.deliveries(max_in_flight=2)
    a = await anext(iterator)
    b = await anext(iterator)
    third = asyncio.ensure_future(anext(iterator))
    await asyncio.sleep(0.2)
    assert not third.done()  # two unacknowledged: nothing more is leased
    await a.ack()
    c = await asyncio.wait_for(third, 5)
    assert c.message.id not in {a.message.id, b.message.id}
    await iterator.aclose()  # type: ignore[attr-defined]
    await webhook.aclose()  # frees what it leased and never handed out
