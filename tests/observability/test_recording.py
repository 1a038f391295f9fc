"""The record producer: exactly one RequestRecord per API request, however it ended."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import httpx
import pytest
from tests.conftest import GatewayFactory, fake_models_yaml
from tests.support.gateway import GatewayServer
from tests.support.observe import Records, Scrape, scrape
from tests.support.stack import Stack

from interlace.config.schema import Price
from interlace.core.operations import ClassifyResult, LabelScore
from interlace.gateway.after_response import accept_deferred, run_deferred
from interlace.gateway.recording import Recorder
from interlace.gateway.stream_watch import MAX_GAPS, StreamWatch
from interlace.observability.cost import cost_usd
from interlace.observability.metrics import Metrics
from interlace.observability.record import AttemptOutcome, RequestRecord, Usage

HELLO = [{"role": "user", "content": "one two three four five six seven eight"}]


def watched(server: GatewayServer) -> Records:
    records = Records()
    server.runtime.observers.add(records)
    return records


def test_every_operation_is_recorded_once(stack: Stack) -> None:
    records = watched(stack.gateway)
    url = stack.gateway.url
    infer = {"inputs": [{"name": "a", "shape": [2], "datatype": "FP32", "data": [1, 2]}]}
    assert httpx.post(f"{url}/v2/models/scorer/infer", json=infer).status_code == 200
    assert httpx.post(f"{url}/v2/models/scorer/versions/1/infer", json=infer).status_code == 200
    body = {"model": "claude", "max_tokens": 50, "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{url}/v1/messages", json=body) as streamed:
        assert streamed.status_code == 200
        streamed.read()
    assert (
        httpx.post(f"{url}/v1/chat/completions", json={"model": "gpt", "messages": HELLO}).status_code == 200
    )
    first, second, messages, plain = records.wait(4)
    time.sleep(0.2)
    assert len(records.records) == 4
    assert (first.operation, first.endpoint, first.status) == ("infer", "/v2/models/{model}/infer", 200)
    assert (first.requested_model, first.served_model, first.provider) == ("scorer", "scorer", "inference_v2")
    assert second.endpoint == "/v2/models/{model}/versions/{version}/infer"
    assert (messages.operation, messages.endpoint, messages.stream, messages.partial) == (
        "chat",
        "/v1/messages",
        True,
        False,
    )
    assert messages.usage.completion_tokens > 0
    assert not messages.usage.estimated
    assert messages.ttft_s is not None
    assert messages.ttft_s <= messages.duration_s
    assert (plain.provider, plain.upstream_model, plain.deployment) == ("openai", "echo", "gpt/0")
    assert plain.attempt_log == [AttemptOutcome("gpt", "gpt/0", "ok", plain.attempt_log[0].seconds)]
    assert plain.started_at == pytest.approx(time.time(), abs=10)


def _leave_mid_stream(server: GatewayServer) -> None:
    """Open a slow stream over a raw socket, read its first bytes, and hang up."""
    payload = (
        b'{"model":"slow","stream":true,"messages":[{"role":"user","content":"'
        + b" ".join([b"word"] * 40)
        + b'"}]}'
    )
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head + payload)
        received = b""
        while b"data: {" not in received:
            received += sock.recv(65536)


def test_a_client_leaving_mid_stream_is_recorded_partial(make_gateway: GatewayFactory) -> None:
    server = make_gateway(fake_models_yaml(slow={"chunk_interval_ms": 100}))
    records = watched(server)
    _leave_mid_stream(server)
    (record,) = records.wait(1)
    assert (record.status, record.error_code, record.stream, record.partial) == (
        499,
        "client_disconnected",
        True,
        True,
    )
    assert record.usage.estimated
    assert record.usage.prompt_tokens == 50  # 199 characters, ~4 a token
    assert record.usage.completion_tokens < 41
    page = scrape(server.url)
    assert page.value("interlace_requests_in_flight", operation="chat") == 0
    assert page.value("interlace_deployment_in_flight", deployment="slow/0") == 0
    assert page.value("interlace_errors_total", code="client_disconnected") == 1


def test_a_client_leaving_before_the_answer_is_recorded(make_gateway: GatewayFactory) -> None:
    server = make_gateway(fake_models_yaml(slow={"latency_ms": 3000}))
    records = watched(server)
    server_errors = _ListHandler()
    logging.getLogger("uvicorn.error").addHandler(server_errors)
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{server.url}/v1/chat/completions", json={"model": "slow", "messages": HELLO}, timeout=0.3
            )
        (record,) = records.wait(1)
    finally:
        logging.getLogger("uvicorn.error").removeHandler(server_errors)
    assert (record.status, record.error_code, record.stream) == (499, "client_disconnected", False)
    assert record.duration_s < 2
    # the client's leaving is not a server error: no "Exception in ASGI application" traceback
    assert [r.getMessage() for r in server_errors.records if r.levelno >= logging.ERROR] == []


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


PRICED = """models:
  primary:
    retry: {max_attempts: 1}
    fallbacks: [backup]
    deployments:
      - provider: fake
        model: echo
        options: {fault: server_error}
  backup:
    deployments:
      - provider: fake
        model: echo
        price: {input: 2.5, output: 10}
"""


def test_fallback_attempts_and_cost(make_gateway: GatewayFactory) -> None:
    server = make_gateway(PRICED)
    records = watched(server)
    reply = httpx.post(f"{server.url}/v1/chat/completions", json={"model": "primary", "messages": HELLO})
    assert reply.status_code == 200
    (record,) = records.wait(1)
    assert (record.requested_model, record.served_model, record.deployment) == (
        "primary",
        "backup",
        "backup/0",
    )
    assert (record.fallback, record.attempts) == (True, 2)
    assert [(a.deployment, a.outcome) for a in record.attempt_log] == [
        ("primary/0", "upstream_error"),
        ("backup/0", "ok"),
    ]
    assert record.usage == Usage(prompt_tokens=8, completion_tokens=9)
    assert record.cost_usd == cost_usd(record.usage, Price(input=2.5, output=10)) > 0
    page = scrape(server.url)
    assert page.value("interlace_fallbacks_total", model="primary") == 1
    assert page.value("interlace_retries_total", model="backup") == 1
    assert page.value("interlace_cost_usd_total", model="backup") == pytest.approx(record.cost_usd)
    assert page.value("interlace_attempts_total", deployment="primary/0", outcome="upstream_error") == 1


def test_the_gap_sample_is_bounded_and_spread() -> None:
    watch = StreamWatch(0.0)
    for gap in range(1, 1001):
        watch._gap(float(gap))
    assert len(watch.gaps) < MAX_GAPS
    assert watch.gaps[0] == 1.0
    steps = {b - a for a, b in zip(watch.gaps, watch.gaps[1:], strict=False)}
    assert len(steps) == 1  # evenly spread
    assert watch.gaps[-1] > 900  # over the whole stream


def _recorder() -> tuple[Recorder, Records]:
    records = Records()
    return Recorder(records, {}), records


def test_the_classifier_exports_its_scores() -> None:
    recorder, records = _recorder()
    scope: dict[str, Any] = {"type": "http", "headers": [], "path": "/v1/classify"}
    accept_deferred(scope)  # as the gateway's outermost middleware does
    result = ClassifyResult(
        scores=[
            [LabelScore(label="a", score=0.9), LabelScore(label="b", score=0.1)],
            [LabelScore(label="b", score=0.7), LabelScore(label="a", score=0.3)],
        ],
        model="minilm",
        prompt_tokens=12,
    )

    class _Request:
        def __init__(self, scope: dict[str, Any]) -> None:
            self.scope = scope

    with recorder.begin(_Request(scope), "classify", "/v1/classify") as rec:  # type: ignore[arg-type]
        rec.classified(result)
    # an answer is recorded once its response was written (the outermost middleware runs this)
    assert records.records == []
    run_deferred(scope)
    (record,) = records.records
    assert record.confidence == pytest.approx(0.8)
    assert record.usage.prompt_tokens == 12
    assert recorder.in_flight["classify"] == 0


def _record(**fields: Any) -> RequestRecord:
    base: dict[str, Any] = {
        "request_id": "r",
        "operation": "chat",
        "endpoint": "/v1/chat/completions",
        "started_at": 0.0,
        "duration_s": 0.1,
        "status": 200,
        "requested_model": "gpt",
        "served_model": "gpt",
        "deployment": "gpt/0",
    }
    return RequestRecord(**{**base, **fields})


def test_metrics_of_shadow_calls_rejections_recoveries_and_caches() -> None:
    metrics = Metrics(models=["gpt", "mini"], deployments=["gpt/0", "mini/0"])
    metrics.observe(_record(shadow=True, served_model="mini", cost_usd=0.5, usage=Usage(prompt_tokens=5)))
    metrics.observe(_record(status=429, error_code="rate_limit_exceeded", deployment=None))
    metrics.observe(_record(status=503, error_code="capacity_exceeded", deployment=None))
    metrics.observe(_record(stream=True, recovered=1, ttft_s=0.2, chunk_gaps_s=[0.01, 0.02]))
    metrics.observe(
        _record(usage=Usage(prompt_tokens=100, cached_tokens=60, completion_tokens=9, reasoning_tokens=4))
    )
    metrics.observe(_record(status=502, error_code="a-code-from-upstream", deployment="gpt/9"))
    scraped = Scrape(metrics.exposition().decode())
    assert scraped.value("interlace_shadow_requests_total", model="mini", status="2xx") == 1
    assert scraped.value("interlace_shadow_cost_usd_total", model="mini") == 0.5
    assert scraped.value("interlace_tokens_total", model="mini") == 0  # shadow calls count apart
    assert scraped.value("interlace_rejections_total", model="gpt", reason="rate_limited") == 1
    assert scraped.value("interlace_rejections_total", model="gpt", reason="capacity") == 1
    assert scraped.value("interlace_recovered_streams_total", model="gpt") == 1
    assert scraped.value("interlace_stream_chunk_gap_seconds_count", model="gpt") == 2
    assert scraped.value("interlace_tokens_total", model="gpt", type="cached") == 60
    assert scraped.value("interlace_tokens_total", model="gpt", type="reasoning") == 4
    assert scraped.value("interlace_prompt_cache_hits_total", model="gpt") == 1
    assert scraped.value("interlace_errors_total", code="other") == 1
    assert scraped.value("interlace_requests_total", deployment="other") == 1
    assert scraped.value("interlace_requests_total", model="gpt") == 5


def test_a_failing_record_never_breaks_the_answer(
    make_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_gateway(fake_models_yaml(echo={}))

    def broken(self: Recorder, record: RequestRecord) -> None:
        raise RuntimeError("a bug in a sink")

    monkeypatch.setattr(Recorder, "emit", broken)
    reply = httpx.post(f"{server.url}/v1/chat/completions", json={"model": "echo", "messages": HELLO})
    assert reply.status_code == 200
    body = {"model": "echo", "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body) as streamed:
        assert streamed.status_code == 200
        assert "[DONE]" in streamed.read().decode()
    deadline = time.monotonic() + 5
    while (
        scrape(server.url).value("interlace_requests_in_flight", operation="chat")
        and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    assert scrape(server.url).value("interlace_requests_in_flight", operation="chat") == 0
    assert "could not record request" in caplog.text


def test_a_recording_outside_the_gateway_is_recorded_when_it_ends() -> None:
    # a flow step's or a job's call: nobody runs deferred work for its scope
    recorder, records = _recorder()
    scope: dict[str, Any] = {"type": "http", "headers": [], "path": "/v1/embeddings"}

    class _Request:
        def __init__(self, scope: dict[str, Any]) -> None:
            self.scope = scope

    with recorder.begin(_Request(scope), "embeddings", "/v1/embeddings") as rec:  # type: ignore[arg-type]
        rec.counted(7)
    (record,) = records.records
    assert record.status == 200
    assert record.usage.prompt_tokens == 7
