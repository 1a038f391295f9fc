"""Shadow traffic over real sockets: the client is served by the primary alone, the candidate is called
in the background, and both answers land side by side in the state database."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import GatewayFactory
from tests.support.gateway import GatewayServer

from interlace.config import parse_config
from interlace.core.operations import ChatRequest
from interlace.routing.context import RouteContext
from interlace.routing.shadow import Outcome, PrimaryOutcome, ShadowMirror, ShadowRecord, SideRecord
from interlace.runtime import Runtime
from interlace.store.database import Database, default_database_url
from interlace.store.shadow import ShadowRecorder, ShadowReport, ShadowSummary
from interlace.testing import Fault, UpstreamServer

HELLO = [{"role": "user", "content": "one two three four five six"}]
ANSWER = "echo: one two three four five six"


@pytest.fixture(scope="module")
def up_primary() -> Iterator[UpstreamServer]:
    with UpstreamServer("openai") as server:
        yield server


@pytest.fixture(scope="module")
def up_candidate() -> Iterator[UpstreamServer]:
    with UpstreamServer("openai") as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(up_primary: UpstreamServer, up_candidate: UpstreamServer) -> None:
    up_primary.reset()
    up_candidate.reset()


def config_yaml(
    primary: UpstreamServer,
    candidate: UpstreamServer,
    *,
    sample: float = 1.0,
    candidate_model: str = "echo",
    candidate_extra: str = "",
) -> str:
    timeouts = "{connect: 1, first_byte: 3, first_token: 3, idle: 3, total: 5}"
    return (
        "models:\n"
        "  primary:\n"
        f"    shadow: {{model: candidate, sample: {sample}}}\n"
        "    deployments:\n"
        f"      - provider: openai\n        model: echo\n        base_url: {primary.url}/v1\n"
        f"        timeouts: {timeouts}\n"
        "        price: {input: 1, output: 2}\n"
        "  candidate:\n"
        "    retry: {max_attempts: 1}\n"
        "    deployments:\n"
        f'      - provider: openai\n        model: "{candidate_model}"\n'
        f"        base_url: {candidate.url}/v1\n"
        f"        timeouts: {timeouts}\n"
        "        price: {input: 3, output: 4}\n" + candidate_extra
    )


def chat(gateway: GatewayServer, alias: str = "primary", **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions", json={"model": alias, "messages": HELLO, **extra}, timeout=10
    )


def wait_for_records(gateway: GatewayServer, count: int, timeout: float = 2.5) -> list[dict[str, Any]]:
    """Wait until the mirror stored ``count`` records, then read them back from the database."""
    mirror = gateway.runtime.shadow
    assert mirror is not None
    deadline = time.monotonic() + timeout
    while mirror.recorded + mirror.failed_records < count:
        if time.monotonic() > deadline:
            pytest.fail(f"expected {count} shadow record(s) within {timeout}s, got {mirror.recorded}")
        time.sleep(0.01)
    assert mirror.failed_records == 0
    return asyncio.run(_rows(gateway.runtime.database.url))


async def _rows(url: str) -> list[dict[str, Any]]:
    database = Database(url)
    await database.start()
    try:
        return await ShadowReport(database).rows()
    finally:
        await database.aclose()


async def _summaries(url: str, **query: Any) -> list[ShadowSummary]:
    database = Database(url)
    await database.start()
    try:
        return await ShadowReport(database).summaries(**query)
    finally:
        await database.aclose()


def test_client_is_served_by_the_primary_and_the_candidate_is_mirrored(
    make_gateway: GatewayFactory, up_primary: UpstreamServer, up_candidate: UpstreamServer
) -> None:
    gateway = make_gateway(config_yaml(up_primary, up_candidate))
    reply = chat(gateway, user="u-1")
    assert reply.status_code == 200
    assert reply.headers["x-interlace-model"] == "primary"
    assert reply.headers["x-interlace-deployment"] == "primary/0"
    assert reply.json()["choices"][0]["message"]["content"] == ANSWER

    (mirrored,) = up_candidate.wait_for_requests(1)
    assert mirrored.body["messages"] == HELLO
    assert mirrored.body["user"] == "u-1"
    assert "stream" not in mirrored.body
    assert len(up_primary.requests) == 1

    (row,) = wait_for_records(gateway, 1)
    assert (row["alias"], row["candidate"], row["stream"]) == ("primary", "candidate", False)
    assert row["request_id"] == reply.json()["id"]
    assert row["primary_text"] == row["shadow_text"] == ANSWER
    assert (row["primary_finish"], row["shadow_finish"]) == ("stop", "stop")
    assert (row["primary_deployment"], row["shadow_deployment"]) == ("primary/0", "candidate/0")
    assert row["primary_latency_ms"] > 0
    assert row["shadow_latency_ms"] > 0
    assert row["primary_error"] is None
    assert row["shadow_error"] is None
    assert row["exact_match"] is True
    assert row["similarity"] == 1.0
    usage = reply.json()["usage"]
    assert row["primary_prompt_tokens"] == usage["prompt_tokens"]
    assert row["primary_cost_usd"] == pytest.approx(
        (usage["prompt_tokens"] * 1 + usage["completion_tokens"] * 2) / 1e6
    )
    assert row["shadow_cost_usd"] == pytest.approx(
        (usage["prompt_tokens"] * 3 + usage["completion_tokens"] * 4) / 1e6
    )


def test_slow_candidate_does_not_delay_the_client(
    make_gateway: GatewayFactory, up_primary: UpstreamServer, up_candidate: UpstreamServer
) -> None:
    gateway = make_gateway(config_yaml(up_primary, up_candidate))
    up_candidate.script.push(Fault(latency_ms=1200))
    began = time.monotonic()
    reply = chat(gateway)
    client_seconds = time.monotonic() - began
    assert reply.status_code == 200
    assert client_seconds < 0.4  # the candidate takes 1.2 s
    (row,) = wait_for_records(gateway, 1)
    assert row["shadow_latency_ms"] >= 1200
    assert row["primary_latency_ms"] < 400
    assert row["shadow_text"] == ANSWER


def test_failing_candidate_records_its_error_code(
    make_gateway: GatewayFactory, up_primary: UpstreamServer, up_candidate: UpstreamServer
) -> None:
    gateway = make_gateway(config_yaml(up_primary, up_candidate, candidate_model="fault:status=503"))
    reply = chat(gateway)
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == ANSWER
    (row,) = wait_for_records(gateway, 1)
    assert row["shadow_error"] == "upstream_error"
    assert row["shadow_text"] == ""
    assert row["shadow_deployment"] == "candidate/0"
    assert row["shadow_cost_usd"] is None
    assert row["primary_error"] is None
    assert row["exact_match"] is None  # nothing to compare
    assert row["similarity"] is None


def test_required_tags_bind_the_shadow_call_too(
    make_gateway: GatewayFactory, up_primary: UpstreamServer, up_candidate: UpstreamServer
) -> None:
    yaml = config_yaml(up_primary, up_candidate, candidate_extra="        tags: {region: us}\n")
    gateway = make_gateway(yaml.replace("price: {input: 1", "tags: {region: eu}\n        price: {input: 1"))
    reply = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "primary", "messages": HELLO},
        headers={"x-interlace-tags": "region=eu"},
    )
    assert reply.status_code == 200
    (row,) = wait_for_records(gateway, 1)
    assert row["shadow_error"] == "no_matching_deployment"
    assert up_candidate.requests == []  # never mirrored outside the region the client required


def test_sample_zero_mirrors_nothing(
    make_gateway: GatewayFactory, up_primary: UpstreamServer, up_candidate: UpstreamServer
) -> None:
    gateway = make_gateway(config_yaml(up_primary, up_candidate, sample=0))
    for _ in range(5):
        assert chat(gateway).status_code == 200
    mirror = gateway.runtime.shadow
    assert mirror is not None
    assert mirror.mirrored == 0  # decided before each answer was returned
    assert up_candidate.requests == []
    assert len(up_primary.requests) == 5


def test_no_shadow_configured_builds_no_mirror(
    make_gateway: GatewayFactory, up_primary: UpstreamServer
) -> None:
    gateway = make_gateway(
        f"models:\n  m:\n    deployments:\n      - provider: openai\n        model: echo\n"
        f"        base_url: {up_primary.url}/v1\n"
    )
    assert gateway.runtime.shadow is None
    assert gateway.runtime.router.mirror is None
    assert chat(gateway, "m").status_code == 200


def test_streams_are_mirrored_after_they_completed(
    make_gateway: GatewayFactory, up_primary: UpstreamServer, up_candidate: UpstreamServer
) -> None:
    gateway = make_gateway(config_yaml(up_primary, up_candidate))
    up_primary.script.push(Fault(chunk_interval_ms=60))  # ~10 events: the stream lasts ~0.55 s
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={"model": "primary", "messages": HELLO, "stream": True},
        timeout=10,
    ) as response:
        frames = [line for line in response.iter_lines() if line.startswith("data: {")]
    received = "".join(
        (choice.get("delta") or {}).get("content") or ""
        for frame in frames
        for choice in json.loads(frame[6:])["choices"]
    )
    assert received == ANSWER
    (primary,) = up_primary.requests
    (mirrored,) = up_candidate.wait_for_requests(1)
    assert mirrored.received_at - primary.received_at >= 0.45  # after the last chunk, not at the first
    assert "stream" not in mirrored.body
    assert "stream_options" not in mirrored.body
    (row,) = wait_for_records(gateway, 1)
    assert row["stream"] is True
    assert row["primary_text"] == received
    assert row["primary_finish"] == "stop"
    assert row["primary_prompt_tokens"] == 6  # the usage chunk, even though the client did not ask for it
    assert row["primary_latency_ms"] >= 450
    assert row["exact_match"] is True


def test_report_aggregates_identical_echoes(
    make_gateway: GatewayFactory, up_primary: UpstreamServer, up_candidate: UpstreamServer
) -> None:
    gateway = make_gateway(config_yaml(up_primary, up_candidate))
    for _ in range(3):
        assert chat(gateway).status_code == 200
    rows = wait_for_records(gateway, 3)
    (summary,) = asyncio.run(_summaries(gateway.runtime.database.url))
    assert (summary.alias, summary.candidate) == ("primary", "candidate")
    assert summary.requests == summary.compared == 3
    assert summary.agreement == 1.0
    assert summary.similarity_mean == 1.0
    assert summary.primary.errors == summary.shadow.errors == 0
    assert summary.shadow.cost_usd == pytest.approx(sum(r["shadow_cost_usd"] for r in rows))
    assert summary.shadow.cost_usd > summary.primary.cost_usd > 0
    assert summary.primary.latency_p50_ms is not None
    assert asyncio.run(_summaries(gateway.runtime.database.url, model="other")) == []


def _side(
    text: str, latency_ms: float, *, error: str | None = None, cost: float | None = 0.001
) -> SideRecord:
    return SideRecord(
        deployment="x/0",
        text=text,
        finish=None if error else "stop",
        latency_ms=latency_ms,
        prompt_tokens=None,
        completion_tokens=None,
        error=error,
        cost_usd=None if error else cost,
    )


async def test_report_math_over_mixed_records(tmp_path: Path) -> None:
    database = Database(default_database_url(str(tmp_path)))
    await database.start()
    recorder, now = ShadowRecorder(database), datetime.now(UTC)
    sides = [  # (primary, shadow, exact, similarity)
        (_side("a b", 100), _side("a  b", 300), True, 1.0),
        (_side("a b", 200), _side("a c", 400), False, 1 / 3),
        (_side("a b", 300), _side("", 500, error="upstream_timeout"), None, None),
        (_side("a b", 400), _side("a b", 600), True, 1.0),
    ]
    try:
        for i, (primary, shadow, exact, similarity) in enumerate(sides):
            await recorder.record(
                ShadowRecord(
                    id=f"r{i}",
                    request_id=f"req-{i}",
                    alias="gpt",
                    candidate="next",
                    created_at=now - timedelta(minutes=10 - i),
                    stream=False,
                    exact_match=exact,
                    similarity=similarity,
                    primary=primary,
                    shadow=shadow,
                )
            )
        (summary,) = await ShadowReport(database).summaries()
        old = await ShadowReport(database).summaries(since=now - timedelta(minutes=8.5))
    finally:
        await database.aclose()
    assert summary.requests == 4
    assert summary.compared == 3
    assert summary.agreement == pytest.approx(2 / 3)
    assert summary.similarity_mean == pytest.approx((1 + 1 / 3 + 1) / 3)
    assert (summary.primary.latency_p50_ms, summary.primary.latency_p95_ms) == (200, 400)
    assert (summary.shadow.latency_p50_ms, summary.shadow.latency_p95_ms) == (400, 600)  # successes only
    assert summary.shadow.error_rate == 0.25
    assert summary.primary.error_rate == 0
    assert summary.primary.cost_usd == pytest.approx(0.004)
    assert summary.shadow.priced == 3
    assert old[0].requests == 2  # the last two: --since


class _Kept:
    """A sink that keeps records in memory (the database sink is tested above)."""

    def __init__(self) -> None:
        self.records: list[ShadowRecord] = []

    async def record(self, record: ShadowRecord) -> None:
        self.records.append(record)


async def test_saturated_mirror_drops_and_aclose_cancels(
    tmp_path: Path, up_primary: UpstreamServer, up_candidate: UpstreamServer
) -> None:
    yaml = config_yaml(up_primary, up_candidate) + f"state:\n  dir: {tmp_path}\n"
    runtime = Runtime(parse_config(yaml, filename="t.yaml", environ={}))
    await runtime.start()
    try:
        router, kept = runtime.router, _Kept()
        mirror = ShadowMirror(
            router.routes, router.attempts, rng=runtime.rng, recorder=kept, max_concurrent=1
        )
        up_candidate.script.push(Fault(latency_ms=3000))
        request = ChatRequest(model="primary", body={"model": "primary", "messages": HELLO})
        ctx = RouteContext(served_model="primary", deployment="primary/0")
        primary = PrimaryOutcome(
            request_id="r", alias="primary", ctx=ctx, stream=False, outcome=Outcome(deployment="primary/0")
        )
        assert mirror.maybe_mirror(request, primary)
        assert not mirror.maybe_mirror(request, primary)  # one call in flight already: dropped, not queued
        assert (mirror.mirrored, mirror.dropped, mirror.in_flight) == (1, 1, 1)
        shadowed = RouteContext(served_model="primary", shadow=True)
        assert not mirror.maybe_mirror(request, dataclasses.replace(primary, ctx=shadowed))
        await asyncio.to_thread(up_candidate.wait_for_requests, 1)
        await mirror.aclose()
        assert mirror.in_flight == 0
        assert kept.records == []  # cancelled at shutdown: nothing half-recorded
        assert not mirror.maybe_mirror(request, primary)  # closed
    finally:
        await runtime.stop()
