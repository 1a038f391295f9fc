"""The example flow on the embedded default: tickets POSTed to the webhook are masked, triaged by
the local classifier and written as JSON lines (loads the local model)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest
from tests.support.gateway import GatewayServer

from interlace.config import load_config
from interlace.flows.process import FlowProcess
from interlace.runtime import Runtime

EXAMPLE = Path(__file__).parents[2] / "examples" / "flows" / "tickets.yaml"

TICKETS = [
    ("C-1", "Refund", "I was charged twice for my order, please refund the payment. Mail ann@example.com"),
    ("C-2", "Where is my parcel", "The delivery is late and the tracking number shows nothing"),
    ("C-1", "Login", "I forgot my password and cannot sign in to my account, call +1 415 555 0100"),
]


@pytest.mark.slow
async def test_tickets_are_masked_triaged_and_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the example keeps its state and output under ./.interlace
    config = load_config(EXAMPLE)
    with GatewayServer(config) as gateway:
        for number, (customer, subject, body) in enumerate(TICKETS):
            answer = httpx.post(
                f"{gateway.url}/v1/flows/tickets/events",
                json={"customer": customer, "subject": subject, "body": body},
                headers={"idempotency-key": f"T-{number}"},
                timeout=10,
            )
            assert answer.status_code == 202, answer.text
    runtime = Runtime(config)
    process = FlowProcess(runtime, ["tickets"], report_interval=0.2)
    await runtime.start(wait_for_models=True)
    stop = asyncio.Event()
    out = tmp_path / ".interlace" / "flows"
    try:
        running = asyncio.create_task(process.run(stop))
        while sum(len(f.read_bytes().splitlines()) for f in out.glob("*.jsonl")) < len(TICKETS):
            assert not running.done(), running
            await asyncio.sleep(0.1)
        stop.set()
        stats = (await running)["tickets"]
    finally:
        await runtime.stop()
    rows = [orjson.loads(line) for f in sorted(out.glob("*.jsonl")) for line in f.read_bytes().splitlines()]
    by_id = {row["id"]: row["payload"] for row in rows}
    assert sorted(by_id) == ["T-0", "T-1", "T-2"]
    assert not (out / "dead_letters.jsonl").exists()
    assert by_id["T-0"]["triage"]["label"] == "billing"
    assert by_id["T-1"]["triage"]["label"] == "shipping"
    assert by_id["T-2"]["triage"]["label"] == "account"
    assert "ann@example.com" not in by_id["T-0"]["body"]
    assert "<EMAIL_ADDRESS_1>" in by_id["T-0"]["body"]
    assert "415 555 0100" not in by_id["T-2"]["body"]
    assert stats.received == 3
    assert stats.acked == 3
    assert stats.dead_letters == 0
