"""GET /metrics over real gateways: counts, tokens, latency, streams, confidence, live gauges, cardinality."""

from __future__ import annotations

import asyncio
import json
import math
import random
import string
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import GatewayFactory, fake_models_yaml
from tests.support.gateway import GatewayServer
from tests.support.observe import Records, Scrape, scrape

from interlace.config import parse_config
from interlace.config.schema import MetricsConfig, ObservabilityConfig
from interlace.gateway.app import build_app
from interlace.observability.labels import KNOWN_ERROR_CODES, OPERATIONS
from interlace.observability.metrics import Metrics
from interlace.runtime import Runtime
from interlace.testing import UpstreamServer


def observed(server: GatewayServer) -> Records:
    records = Records()
    server.runtime.observers.add(records)  # after the metrics: a record seen here is counted there
    return records


def chat(server: GatewayServer, text: str, model: str = "echo", **extra: object) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
    return httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30)


def stream_frames(server: GatewayServer, text: str, model: str = "echo", **extra: object) -> list[str]:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": True, **extra}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=30) as response:
        assert response.status_code == 200
        return [line for line in response.iter_lines() if line.startswith("data: {")]


def test_requests_tokens_latency_and_streams(make_gateway: GatewayFactory) -> None:
    server = make_gateway(fake_models_yaml(echo={}, other={}))
    records = observed(server)
    prompts = ["one", "one two", "one two three"]
    for text in prompts:
        assert chat(server, text).status_code == 200
    for text in ("a b c d", "e f"):
        assert stream_frames(server, text, stream_options={"include_usage": True})
    embedded = httpx.post(f"{server.url}/v1/embeddings", json={"model": "other", "input": ["x y", "z"]})
    assert embedded.status_code == 200
    assert chat(server, "hi", model="made-up-model").status_code == 404
    records.wait(7)
    page = scrape(server.url)

    chat_ok = {"model": "echo", "deployment": "echo/0", "operation": "chat", "status": "2xx"}
    assert page.value("interlace_requests_total", **chat_ok) == 5
    assert page.value("interlace_request_duration_seconds_count", **chat_ok) == 5
    assert page.value("interlace_request_duration_seconds_sum", **chat_ok) > 0
    assert page.value("interlace_requests_total", model="other", operation="embeddings", status="2xx") == 1
    unknown = {"model": "other", "deployment": "none", "operation": "chat", "status": "4xx"}
    assert page.value("interlace_requests_total", **unknown) == 1
    assert page.value("interlace_errors_total", model="other", code="model_not_found") == 1
    # the fake counts words: the prompt's, and the answer's "echo: <prompt>"
    words = [len(text.split()) for text in [*prompts, "a b c d", "e f"]]
    assert page.value("interlace_tokens_total", model="echo", type="input") == sum(words)
    assert page.value("interlace_tokens_total", model="echo", type="output") == sum(n + 1 for n in words)
    assert page.value("interlace_tokens_total", model="other", type="input") == 3
    assert page.value("interlace_tokens_total", model="echo", type="cached") == 0
    # streams: one time to first token each, and a sample of the gaps between their chunks
    assert page.value("interlace_time_to_first_token_seconds_count", model="echo", deployment="echo/0") == 2
    assert page.value("interlace_stream_chunk_gap_seconds_count", model="echo") >= 4
    assert page.value("interlace_attempts_total", model="echo", deployment="echo/0", outcome="ok") == 5
    assert page.value("interlace_retries_total") == 0
    assert page.value("interlace_confidence_count") == 0  # the fake returns no logprobs


def _mean_probability(logprobs: list[dict[str, Any]]) -> float:
    return sum(math.exp(token["logprob"]) for token in logprobs) / len(logprobs)


@pytest.fixture(scope="module")
def openai_upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer("openai") as server:
        yield server


def test_confidence_from_logprobs(make_gateway: GatewayFactory, openai_upstream: UpstreamServer) -> None:
    yaml = (
        "models:\n  gpt:\n    deployments:\n      - provider: openai\n        model: echo\n"
        f"        base_url: {openai_upstream.url}/v1\n        api_key: ${{KEY}}\n"
    )
    server = make_gateway(yaml, env={"KEY": "k"})
    records = observed(server)
    answer = chat(server, "how sure are you", model="gpt", logprobs=True).json()
    plain = _mean_probability(answer["choices"][0]["logprobs"]["content"])
    frames = stream_frames(server, "and when streaming", model="gpt", logprobs=True)
    tokens = [
        token
        for frame in frames
        for choice in json.loads(frame[6:]).get("choices") or ()
        for token in (choice.get("logprobs") or {}).get("content") or ()
    ]
    streamed = _mean_probability(tokens)
    assert chat(server, "no logprobs asked", model="gpt").status_code == 200
    first, second, third = records.wait(3)
    assert first.confidence == pytest.approx(plain)
    assert second.confidence == pytest.approx(streamed)
    assert 0 < streamed < 1
    assert third.confidence is None
    page = scrape(server.url)
    assert page.value("interlace_confidence_count", model="gpt", operation="chat") == 2
    assert page.value("interlace_confidence_sum", model="gpt", operation="chat") == pytest.approx(
        plain + streamed
    )


BREAKER = """models:
  broken:
    retry: {max_attempts: 1}
    breaker: {min_requests: 2, failure_rate: 0.5, open_for: 30}
    deployments:
      - provider: fake
        model: echo
        options: {fault: server_error}
  healthy:
    deployments:
      - provider: fake
        model: echo
"""


def test_breaker_state_gauge_after_the_breaker_opens(make_gateway: GatewayFactory) -> None:
    server = make_gateway(BREAKER)
    before = scrape(server.url)
    assert before.value("interlace_breaker_state", deployment="broken/0", state="closed") == 1
    assert before.value("interlace_breaker_state", deployment="broken/0", state="open") == 0
    records = observed(server)
    replies = [chat(server, "x", model="broken") for _ in range(3)]
    assert [r.status_code for r in replies] == [502, 502, 502]
    assert replies[2].json()["error"]["code"] == "deployments_unavailable"  # open: not even tried
    records.wait(3)
    page = scrape(server.url)
    assert page.value("interlace_breaker_state", deployment="broken/0", model="broken", state="open") == 1
    assert page.value("interlace_breaker_state", deployment="broken/0", state="closed") == 0
    assert page.value("interlace_breaker_state", deployment="healthy/0", state="closed") == 1
    assert page.value("interlace_breaker_failure_rate", deployment="broken/0") == 1.0
    failed = {"model": "broken", "deployment": "broken/0", "outcome": "upstream_error"}
    assert page.value("interlace_attempts_total", **failed) == 2
    assert page.value("interlace_errors_total", model="broken", code="upstream_error") == 2
    assert page.value("interlace_rejections_total", model="broken", reason="unavailable") == 1


QUEUED = """models:
  slow:
    deployments:
      - provider: fake
        model: echo
        max_concurrency: 1
        max_queue: 2
        options: {latency_ms: 1500}
"""


def test_in_flight_and_queued_gauges(make_gateway: GatewayFactory) -> None:
    server = make_gateway(QUEUED)
    records = observed(server)
    replies: list[int] = []
    workers = [
        threading.Thread(target=lambda: replies.append(chat(server, "wait", model="slow").status_code))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 5
    while True:
        page = scrape(server.url)
        if page.value("interlace_deployment_queued", deployment="slow/0") == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert page.value("interlace_deployment_in_flight", deployment="slow/0", model="slow") == 1
    assert page.value("interlace_deployment_queued", deployment="slow/0", model="slow") == 1
    assert page.value("interlace_requests_in_flight", operation="chat") == 2
    for worker in workers:
        worker.join(timeout=10)
    assert replies == [200, 200]
    records.wait(2)
    after = scrape(server.url)
    assert after.value("interlace_deployment_in_flight", deployment="slow/0") == 0
    assert after.value("interlace_deployment_queued", deployment="slow/0") == 0
    assert after.value("interlace_requests_in_flight", operation="chat") == 0


def test_two_runtimes_keep_their_own_registries(tmp_path: Path) -> None:
    config = parse_config(fake_models_yaml(echo={}) + f"state:\n  dir: {tmp_path}\n", environ={})
    first, second = Runtime(config), Runtime(config)
    assert isinstance(first.metrics, Metrics)
    assert isinstance(second.metrics, Metrics)
    assert first.metrics.registry is not second.metrics.registry
    off = ObservabilityConfig(metrics=MetricsConfig(enabled=False))
    runtime = Runtime(config.model_copy(update={"observability": off}))
    assert runtime.metrics is None
    assert "/metrics" not in {getattr(route, "path", None) for route in build_app(runtime).routes}


def _random_text(rng: random.Random, size: int) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=size))


async def test_cardinality_stays_bounded_by_configuration(tmp_path: Path) -> None:
    """10,000 requests with random users, unknown models and request ids add no series."""
    config = parse_config(fake_models_yaml(echo={}, other={}) + f"state:\n  dir: {tmp_path}\n", environ={})
    runtime = Runtime(config)
    await runtime.start()
    rng = random.Random(7)
    users: list[str] = []
    models: list[str] = []
    try:
        app = build_app(runtime)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            gate = asyncio.Semaphore(32)

            async def one(number: int) -> int:
                user = f"user-{_random_text(rng, 12)}"
                users.append(user)
                model = rng.choice(["echo", "other", f"m-{_random_text(rng, 10)}"])
                models.append(model)
                body = {
                    "model": model,
                    "user": user,
                    "messages": [{"role": "user", "content": f"question {number}"}],
                    "stream": number % 10 == 0,
                }
                headers = {"x-request-id": f"rid-{_random_text(rng, 16)}"}
                async with gate:
                    reply = await client.post("/v1/chat/completions", json=body, headers=headers)
                return reply.status_code

            began = time.monotonic()
            first = await asyncio.gather(*(one(n) for n in range(1000)))
            early = Scrape((await client.get("/metrics")).text)
            rest = await asyncio.gather(*(one(n) for n in range(1000, 10_000)))
            page = Scrape((await client.get("/metrics")).text)
            elapsed = time.monotonic() - began
    finally:
        await runtime.stop()
    statuses = set(first) | set(rest)
    assert statuses == {200, 404}
    assert page.value("interlace_requests_total") == 10_000
    series = {(s.name, tuple(sorted(s.labels.items()))) for s in page.samples}
    assert series == {(s.name, tuple(sorted(s.labels.items()))) for s in early.samples}
    assert len(series) < 400, len(series)
    allowed = {
        "model": {"echo", "other", "none"},
        "deployment": {"echo/0", "other/0", "none", "other"},
        "operation": set(OPERATIONS),
        "status": {"2xx", "4xx", "5xx"},
        "code": set(KNOWN_ERROR_CODES) | {"other"},
        "outcome": {"ok"} | set(KNOWN_ERROR_CODES) | {"other"},
        "type": {"input", "output", "cached", "reasoning"},
        "state": {"closed", "open", "half_open"},
    }
    for sample in page.samples:
        for key, value in sample.labels.items():
            if key in allowed:
                assert value in allowed[key], (sample.name, key, value)
    assert not any(user in page.text for user in users[:100])
    assert "rid-" not in page.text
    assert not any(model in page.text for model in models[:300] if model.startswith("m-"))
    assert elapsed < 20, f"{elapsed:.1f}s"
