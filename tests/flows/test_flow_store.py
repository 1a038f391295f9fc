"""The flow tables on SQLite and Postgres: the webhook inbox (accept once, lease without overlap,
ack, nack, expiry), the event-log sink (append once per message) and the flow state reports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.databases import state_database

from interlace.flows.connectors.event_log.config import EventLogSinkConfig
from interlace.flows.connectors.event_log.sink import EventLogSink, read_events
from interlace.flows.connectors.webhook.inbox import Inbox
from interlace.flows.message import Message
from interlace.flows.metrics import FlowStats
from interlace.flows.services import FlowServices
from interlace.flows.state import FlowStateStore
from interlace.store.database import Database


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async for db in state_database(request.param, tmp_path):
        yield db


async def accept(inbox: Inbox, flow: str, event_id: str) -> bool:
    return await inbox.accept(
        flow, event_id, {"e": event_id}, headers={}, key=None, principal="p", tenant=None
    )


async def test_the_inbox_accepts_once_and_leases_without_overlap(database: Database) -> None:
    inbox = Inbox(database)
    assert await accept(inbox, "f", "e1")
    assert not await accept(inbox, "f", "e1")
    assert await accept(inbox, "other", "e1")  # ids are per flow
    for n in range(2, 7):
        await accept(inbox, "f", f"e{n}")
    first, second = await asyncio.gather(
        inbox.lease("f", "a", limit=4, seconds=30), inbox.lease("f", "b", limit=4, seconds=30)
    )
    ids_a, ids_b = {e.event_id for e in first}, {e.event_id for e in second}
    assert ids_a.isdisjoint(ids_b)
    assert ids_a | ids_b == {f"e{n}" for n in range(1, 7)}
    assert all(e.attempts == 1 for e in first + second)
    await inbox.ack(first[0].row, "b")  # not b's lease: nothing happens
    assert await inbox.pending("f") == 6
    await inbox.ack(first[0].row, "a")
    await inbox.nack(first[1].row, "a")
    [again] = await inbox.lease("f", "c", limit=10, seconds=30)
    assert again.event_id == first[1].event_id
    assert again.attempts == 2
    assert await inbox.pending("f") == 5


async def test_an_expired_lease_is_handed_out_again_and_renewal_keeps_it(database: Database) -> None:
    inbox = Inbox(database)
    await accept(inbox, "f", "x")
    await accept(inbox, "f", "y")
    leased = await inbox.lease("f", "a", limit=2, seconds=0.3)
    await inbox.renew([leased[1].row], "a", seconds=30)
    await asyncio.sleep(0.4)
    [taken] = await inbox.lease("f", "b", limit=10, seconds=30)
    assert taken.event_id == leased[0].event_id


async def test_event_log_sink_and_flow_state(database: Database) -> None:
    sink = EventLogSink(EventLogSinkConfig(type="event_log"), FlowServices(flow="f", database=database))
    message = Message(id="m1", payload={"a": [1, "é"]}, key="k", headers={"traceparent": "00-x"}, source="s")
    await sink.write([message])
    await sink.write([message])
    [event] = await read_events(database, "f")
    assert event["payload"] == {"a": [1, "é"]}
    assert event["key"] == "k"
    state = FlowStateStore(database)
    stats = FlowStats(received=3, acked=2)
    await state.report("f", "proc-1", "running", stats)
    stats.acked = 3
    await state.report("f", "proc-1", "stopped", stats)
    [row] = await state.read()
    assert row["status"] == "stopped"
    assert row["stats"]["acked"] == 3
