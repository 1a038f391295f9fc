"""Tracing configuration and export: ``telemetry:`` in interlace.yaml, OTLP/HTTP to a collector, sampling.

The collector is a real HTTP server on 127.0.0.1 that decodes what the OTLP exporter posts.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.support.gateway import GatewayServer

from interlace.config import parse_config
from interlace.config.schema import TelemetryConfig
from interlace.core.errors import ConfigError
from interlace.observability.tracing import Tracing, traces_endpoint
from interlace.routing.context import RouteContext
from interlace.runtime import build_routes
from interlace.testing import UpstreamServer

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@dataclass
class Export:
    path: str
    headers: dict[str, str]
    spans: list[dict[str, Any]]
    service: str


@dataclass
class Collector:
    url: str
    exports: list[Export] = field(default_factory=list)


@pytest.fixture
def collector() -> Iterator[Collector]:
    """An OTLP/HTTP trace collector on 127.0.0.1 that keeps every export, decoded."""
    exports: list[Export] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                spans = [
                    {
                        "name": s.name,
                        "kind": s.kind,
                        "trace_id": s.trace_id.hex(),
                        "parent": s.parent_span_id.hex(),
                    }
                    for scope in resource_spans.scope_spans
                    for s in scope.spans
                ]
                headers = {k.lower(): v for k, v in self.headers.items()}
                exports.append(Export(self.path, headers, spans, resource["service.name"]))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Collector(f"http://127.0.0.1:{server.server_address[1]}", exports)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_telemetry_is_configured_in_interlace_yaml() -> None:
    yaml = (
        "telemetry:\n"
        "  otlp_endpoint: http://collector:4318\n"
        "  service_name: gateway-eu\n"
        "  sample_ratio: 0.25\n"
        "  headers: {authorization: 'Bearer ${OTLP_TOKEN}'}\n"
    )
    telemetry = parse_config(yaml, environ={"OTLP_TOKEN": "t0ken"}).telemetry
    assert telemetry == TelemetryConfig(
        otlp_endpoint="http://collector:4318",
        service_name="gateway-eu",
        sample_ratio=0.25,
        headers={"authorization": "Bearer t0ken"},
    )
    assert parse_config("").telemetry.otlp_endpoint is None
    with pytest.raises(ConfigError, match=r"test.yaml:2: .*otlp_endpoint.*http://"):
        parse_config("telemetry:\n  otlp_endpoint: collector:4318\n", filename="test.yaml")
    with pytest.raises(ConfigError, match="sample_ratio"):
        parse_config("telemetry:\n  sample_ratio: 2\n")


def test_the_traces_path_is_added_to_a_bare_endpoint() -> None:
    assert traces_endpoint("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_endpoint("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_endpoint("https://otel.example/custom/traces") == "https://otel.example/custom/traces"


def test_without_an_endpoint_tracing_is_disabled() -> None:
    assert not Tracing.from_config(TelemetryConfig()).enabled
    assert not Tracing.disabled().enabled
    with pytest.raises(RuntimeError, match="disabled"):
        Tracing.disabled().start_request("GET", {}, {})
    assert Tracing.from_config(TelemetryConfig(), span_exporter=InMemorySpanExporter()).enabled


def test_a_configured_gateway_exports_its_spans_over_otlp(collector: Collector, tmp_path: Path) -> None:
    with UpstreamServer("openai") as upstream:
        yaml = (
            f"state:\n  dir: {tmp_path}\n"
            f"telemetry:\n  otlp_endpoint: {collector.url}\n  service_name: edge\n"
            "  headers: {authorization: 'Bearer ${OTLP_TOKEN}'}\n"
            "models:\n  gpt:\n    deployments:\n"
            f"      - {{provider: openai, model: echo, base_url: '{upstream.url}/v1'}}\n"
        )
        config = parse_config(yaml, environ={"OTLP_TOKEN": "t0ken"})
        with GatewayServer(config) as gateway:
            body = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
            headers = {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}
            reply = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=15)
            assert reply.status_code == 200
        # stopping the gateway flushed the batch processor
    assert collector.exports
    export = collector.exports[0]
    assert export.path == "/v1/traces"
    assert export.headers["authorization"] == "Bearer t0ken"
    assert export.headers["content-type"] == "application/x-protobuf"
    assert export.service == "edge"
    spans = [s for e in collector.exports for s in e.spans]
    assert sorted(s["name"] for s in spans) == ["POST /v1/chat/completions", "chat echo"]
    assert {s["trace_id"] for s in spans} == {TRACE}


def _no_local_models(model: str) -> Any:
    raise AssertionError(model)


async def test_sampling_follows_the_caller_and_always_propagates() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing.from_config(TelemetryConfig(sample_ratio=0.0), span_exporter=exporter)
    config = parse_config(
        "models:\n  gpt:\n    deployments:\n      - {provider: openai, model: echo, base_url: 'http://127.0.0.1:9/v1'}\n"
    )
    route = build_routes(config, rng=random.Random(0), encoders=_no_local_models)["gpt"]

    unsampled = tracing.start_request("POST", {}, {})
    attempt = unsampled.attempt(route, route.deployments[0], RouteContext(operation="chat"), stream=False)
    _, trace_id, _, flags = attempt.headers["traceparent"].split("-")
    assert flags == "02"  # not sampled (0x02: a random trace id), yet propagated
    assert trace_id == unsampled.trace_id
    attempt.succeeded({}, elapsed=0.0, stream=False)
    unsampled.end({})
    assert not exporter.get_finished_spans()

    sampled = tracing.start_request("POST", {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}, {})
    assert sampled.trace_id == TRACE
    attempt = sampled.attempt(route, route.deployments[0], RouteContext(operation="chat"), stream=False)
    assert attempt.headers["traceparent"].startswith(f"00-{TRACE}-")
    assert attempt.headers["traceparent"].endswith("-01")
    attempt.succeeded({}, elapsed=0.0, stream=False)
    sampled.end({})
    assert len(exporter.get_finished_spans()) == 2
    await tracing.aclose()
