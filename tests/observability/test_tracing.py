"""OpenTelemetry tracing over real sockets: a gateway with an in-memory exporter before real upstreams.

Each request must give one SERVER span (``POST /v1/chat/completions``) and one CLIENT span per
upstream attempt (``chat echo``) as its child, with the GenAI attributes; the client's
``traceparent`` is continued, and each attempt's own context reaches the upstream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanKind, StatusCode
from tests.support.gateway import GatewayServer

from interlace.config import parse_config
from interlace.gateway.app import build_app
from interlace.gateway.middleware.tracing import TracingMiddleware
from interlace.observability.spans import AttemptSpan, RequestTrace
from interlace.testing import Fault, UpstreamServer
from interlace.testing.faults import RecordedRequest

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
HELLO = [{"role": "user", "content": "hello world"}]


@dataclass
class Traced:
    gateway: GatewayServer
    openai: UpstreamServer
    anthropic: UpstreamServer
    exporter: InMemorySpanExporter

    def chat(self, model: str, headers: dict[str, str] | None = None, **extra: object) -> httpx.Response:
        body = {"model": model, "messages": HELLO, **extra}
        url = f"{self.gateway.url}/v1/chat/completions"
        return httpx.post(url, json=body, headers=headers, timeout=15)

    def spans(self, servers: int = 1) -> list[ReadableSpan]:
        """The finished spans, once ``servers`` server spans ended (they end after the response)."""
        deadline = time.monotonic() + 5
        while True:
            spans = list(self.exporter.get_finished_spans())
            if sum(s.kind is SpanKind.SERVER for s in spans) >= servers or time.monotonic() > deadline:
                return spans


def _deployment(provider: str, model: str, base_url: str) -> str:
    return (
        f"      - provider: {provider}\n"
        f'        model: "{model}"\n'
        f"        base_url: {base_url}\n"
        f"        api_key: ${{UPSTREAM_KEY}}\n"
    )


def _config(openai_url: str, anthropic_url: str, state: Path) -> str:
    v1 = f"{openai_url}/v1"
    return (
        f"state:\n  dir: {state}\n"
        "models:\n"
        f"  gpt:\n    deployments:\n{_deployment('openai', 'echo', v1)}"
        f"  claude:\n    deployments:\n{_deployment('anthropic', 'echo', anthropic_url)}"
        "  pair:\n    retry: {base_delay: 0}\n    deployments:\n"
        f"{_deployment('openai', 'echo', v1)}{_deployment('openai', 'echo', v1)}"
        "  primary:\n    retry: {max_attempts: 1}\n    fallbacks: [gpt]\n    deployments:\n"
        f"{_deployment('openai', 'fault:status=503', v1)}"
        f"  paced:\n    deployments:\n{_deployment('openai', 'fault:chunk_interval_ms=40', v1)}"
        f"  slow:\n    deployments:\n{_deployment('openai', 'fault:latency_ms=3000', v1)}"
    )


@pytest.fixture(scope="module")
def module_traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    exporter = InMemorySpanExporter()
    with UpstreamServer("openai") as openai_upstream, UpstreamServer("anthropic") as anthropic_upstream:
        yaml = _config(openai_upstream.url, anthropic_upstream.url, tmp_path_factory.mktemp("state"))
        config = parse_config(yaml, filename="traced.yaml", environ={"UPSTREAM_KEY": "sk-upstream"})
        with GatewayServer(config, span_exporter=exporter) as gateway:
            yield Traced(gateway, openai_upstream, anthropic_upstream, exporter)


@pytest.fixture
def traced(module_traced: Traced) -> Traced:
    module_traced.exporter.clear()
    module_traced.openai.reset()
    module_traced.anthropic.reset()
    return module_traced


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _ended(span: ReadableSpan) -> tuple[int, int]:
    assert span.start_time is not None
    assert span.end_time is not None
    return span.start_time, span.end_time


def _one(spans: list[ReadableSpan], kind: SpanKind) -> ReadableSpan:
    found = [s for s in spans if s.kind is kind]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def _clients(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    """The attempts' spans, in attempt order."""
    return sorted(
        (s for s in spans if s.kind is SpanKind.CLIENT), key=lambda s: _attrs(s)["interlace.attempt"]
    )


def _hex(value: int, digits: int) -> str:
    return format(value, f"0{digits}x")


def _traceparent(request: RecordedRequest) -> tuple[str, str, str, str]:
    version, trace_id, parent_id, flags = request.headers["traceparent"].split("-")
    return version, trace_id, parent_id, flags


def _is_child(span: ReadableSpan, parent: ReadableSpan) -> bool:
    return (
        span.parent is not None
        and span.parent.span_id == parent.context.span_id
        and span.context.trace_id == parent.context.trace_id
    )


def test_a_chat_is_a_server_span_with_a_genai_client_span_per_attempt(traced: Traced) -> None:
    reply = traced.chat("gpt")
    assert reply.status_code == 200
    answer = reply.json()
    spans = traced.spans()
    server, client = _one(spans, SpanKind.SERVER), _one(spans, SpanKind.CLIENT)

    assert server.name == "POST /v1/chat/completions"
    assert server.parent is None
    assert server.status.status_code is StatusCode.UNSET
    assert _attrs(server) | {"server.port": 0, "client.address": "-"} == {
        "http.request.method": "POST",
        "http.route": "/v1/chat/completions",
        "http.response.status_code": 200,
        "url.path": "/v1/chat/completions",
        "url.scheme": "http",
        "network.protocol.version": "1.1",
        "user_agent.original": reply.request.headers["user-agent"],
        "server.address": "127.0.0.1",
        "server.port": 0,
        "client.address": "-",
        "interlace.requested_model": "gpt",
        "interlace.model_alias": "gpt",
        "interlace.deployment": "gpt/0",
        "interlace.attempts": 1,
        "interlace.fallback": False,
    }
    assert server.resource.attributes["service.name"] == "interlace"

    assert client.name == "chat echo"
    assert _is_child(client, server)
    assert client.status.status_code is StatusCode.UNSET
    assert answer["usage"]["prompt_tokens"] == 2
    assert _attrs(client) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "echo",
        "gen_ai.response.model": answer["model"],
        "gen_ai.response.id": answer["id"],
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": answer["usage"]["prompt_tokens"],
        "gen_ai.usage.output_tokens": answer["usage"]["completion_tokens"],
        "server.address": "127.0.0.1",
        "server.port": traced.openai.port,
        "interlace.deployment": "gpt/0",
        "interlace.model_alias": "gpt",
        "interlace.attempt": 1,
        "interlace.fallback": False,
    }
    (server_start, server_end), (client_start, client_end) = _ended(server), _ended(client)
    assert server_start <= client_start <= client_end <= server_end

    # the upstream received the attempt's own context
    version, trace_id, parent_id, flags = _traceparent(traced.openai.requests[-1])
    assert version == "00"
    assert int(flags, 16) & 0x01  # sampled (0x02 is Trace Context level 2's "random trace id")
    assert trace_id == _hex(client.context.trace_id, 32)
    assert parent_id == _hex(client.context.span_id, 16)


def test_a_callers_traceparent_is_continued_up_to_the_upstream(traced: Traced) -> None:
    headers = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01", "tracestate": "vendor=opaque"}
    assert traced.chat("gpt", headers=headers).status_code == 200
    spans = traced.spans()
    server, client = _one(spans, SpanKind.SERVER), _one(spans, SpanKind.CLIENT)

    assert _hex(server.context.trace_id, 32) == CLIENT_TRACE
    assert server.parent is not None
    assert server.parent.is_remote
    assert _hex(server.parent.span_id, 16) == CLIENT_SPAN
    assert _is_child(client, server)

    sent = traced.openai.requests[-1]
    _, trace_id, parent_id, _ = _traceparent(sent)
    assert trace_id == CLIENT_TRACE
    assert parent_id == _hex(client.context.span_id, 16)
    assert sent.headers["tracestate"] == "vendor=opaque"


def test_an_anthropic_upstream_behind_the_messages_api(traced: Traced) -> None:
    body = {"model": "claude", "max_tokens": 64, "messages": HELLO}
    reply = httpx.post(f"{traced.gateway.url}/v1/messages", json=body, timeout=15)
    assert reply.status_code == 200
    usage = reply.json()["usage"]
    spans = traced.spans()
    server, client = _one(spans, SpanKind.SERVER), _one(spans, SpanKind.CLIENT)

    assert server.name == "POST /v1/messages"
    assert client.name == "chat echo"
    assert _is_child(client, server)
    attributes = _attrs(client)
    assert attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["gen_ai.response.model"] == "echo"
    assert attributes["gen_ai.usage.input_tokens"] == usage["input_tokens"] == 2
    assert attributes["gen_ai.usage.output_tokens"] == usage["output_tokens"]
    assert attributes["server.port"] == traced.anthropic.port
    _, trace_id, parent_id, _ = _traceparent(traced.anthropic.requests[-1])
    assert (trace_id, parent_id) == (_hex(client.context.trace_id, 32), _hex(client.context.span_id, 16))


def test_a_fail_over_is_one_client_span_per_attempt(traced: Traced) -> None:
    traced.openai.script.push(Fault(kind="status", status=500))
    assert traced.chat("pair").status_code == 200
    spans = traced.spans()
    server = _one(spans, SpanKind.SERVER)
    failed, answered = _clients(spans)

    assert [_attrs(s)["interlace.attempt"] for s in (failed, answered)] == [1, 2]
    assert {_attrs(s)["interlace.deployment"] for s in (failed, answered)} == {"pair/0", "pair/1"}
    assert _is_child(failed, server)
    assert _is_child(answered, server)
    assert failed.status.status_code is StatusCode.ERROR
    assert _attrs(failed)["error.type"] == "upstream_error"
    assert "gen_ai.usage.input_tokens" not in _attrs(failed)
    assert answered.status.status_code is StatusCode.UNSET
    assert "error.type" not in _attrs(answered)
    assert _attrs(answered)["gen_ai.usage.output_tokens"] > 0
    assert _attrs(server)["interlace.attempts"] == 2
    assert _ended(failed)[1] <= _ended(answered)[0]

    # each upstream request names its own attempt as parent
    parents = [_traceparent(r)[2] for r in traced.openai.requests]
    assert parents == [_hex(failed.context.span_id, 16), _hex(answered.context.span_id, 16)]


def test_a_fallback_is_marked_on_its_attempt_and_the_server_span(traced: Traced) -> None:
    assert traced.chat("primary").status_code == 200
    spans = traced.spans()
    server = _one(spans, SpanKind.SERVER)
    first, fallback = _clients(spans)

    assert first.name == "chat fault:status=503"
    assert _attrs(first)["interlace.model_alias"] == "primary"
    assert _attrs(first)["interlace.fallback"] is False
    assert _attrs(first)["error.type"] == "upstream_error"
    assert fallback.name == "chat echo"
    assert _attrs(fallback)["interlace.model_alias"] == "gpt"
    assert _attrs(fallback)["interlace.fallback"] is True
    assert _attrs(fallback)["interlace.attempt"] == 2
    assert _attrs(server)["interlace.fallback"] is True
    assert _attrs(server)["interlace.requested_model"] == "primary"
    assert _attrs(server)["interlace.model_alias"] == "gpt"


def test_a_streams_spans_end_with_its_last_chunk(traced: Traced) -> None:
    body = {"model": "paced", "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{traced.gateway.url}/v1/chat/completions", json=body, timeout=15) as reply:
        assert reply.status_code == 200
        headers_at = time.time_ns()
        # the answer is still streaming (40 ms between chunks): no span may have ended yet
        assert not traced.exporter.get_finished_spans()
        frames = [line for line in reply.iter_lines() if line]
    assert frames[-1] == "data: [DONE]"
    spans = traced.spans()
    server, client = _one(spans, SpanKind.SERVER), _one(spans, SpanKind.CLIENT)

    assert _ended(server)[1] - headers_at >= 100_000_000  # the chunks after the headers took >= 3 x 40 ms
    assert _ended(client)[1] <= _ended(server)[1]
    assert _is_child(client, server)
    attributes = _attrs(client)
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.input_tokens"] == 2
    assert attributes["gen_ai.usage.output_tokens"] > 0
    assert 0 < attributes["gen_ai.response.time_to_first_chunk"] < 5
    assert client.status.status_code is StatusCode.UNSET


def test_a_cut_stream_and_its_continuation_are_two_attempts(traced: Traced) -> None:
    traced.anthropic.script.push(Fault(kind="cut_stream", chunks=6))  # a few tokens, then the drop
    messages = [{"role": "user", "content": "one two three four five six seven"}]
    body = {"model": "claude", "messages": messages, "stream": True}
    with httpx.stream("POST", f"{traced.gateway.url}/v1/chat/completions", json=body, timeout=15) as reply:
        frames = [line for line in reply.iter_lines() if line]
    assert frames[-1] == "data: [DONE]"
    spans = traced.spans()
    server = _one(spans, SpanKind.SERVER)
    cut, continued = _clients(spans)

    assert _attrs(cut)["error.type"] == "stream_interrupted"
    assert cut.status.status_code is StatusCode.ERROR
    assert "error.type" not in _attrs(continued)
    assert _attrs(continued)["gen_ai.response.finish_reasons"] == ("stop",)
    assert _attrs(continued)["interlace.attempt"] == 2
    assert _is_child(cut, server)
    assert _is_child(continued, server)
    assert _ended(cut)[1] <= _ended(continued)[0]
    assert _attrs(server)["interlace.recovered"] == 1
    parents = [_traceparent(r)[2] for r in traced.anthropic.requests]
    assert parents == [_hex(cut.context.span_id, 16), _hex(continued.context.span_id, 16)]


def test_a_client_that_leaves_ends_both_spans(traced: Traced) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{traced.gateway.url}/v1/chat/completions",
            json={"model": "slow", "messages": HELLO},
            timeout=httpx.Timeout(5, read=0.3),
        )
    spans = traced.spans()
    server, client = _one(spans, SpanKind.SERVER), _one(spans, SpanKind.CLIENT)
    assert _attrs(server)["error.type"] == "client_disconnected"
    assert _attrs(server)["http.response.status_code"] == 499
    assert server.status.status_code is StatusCode.UNSET  # the caller's doing, not a server error
    assert _attrs(client)["error.type"] == "cancelled"
    assert _is_child(client, server)
    assert _ended(server)[1] - _ended(server)[0] < 2_000_000_000  # not held up by the slow upstream


def test_embeddings_are_an_embeddings_span(traced: Traced) -> None:
    body = {"model": "gpt", "input": ["one two three"]}
    assert httpx.post(f"{traced.gateway.url}/v1/embeddings", json=body, timeout=15).status_code == 200
    client = _one(traced.spans(), SpanKind.CLIENT)
    assert client.name == "embeddings echo"
    assert _attrs(client)["gen_ai.operation.name"] == "embeddings"
    assert _attrs(client)["gen_ai.usage.input_tokens"] == 3
    assert _attrs(client)["gen_ai.embeddings.dimension.count"] == 8


def test_an_unknown_model_is_a_server_span_without_attempts(traced: Traced) -> None:
    assert traced.chat("nope").status_code == 404
    spans = traced.spans()
    server = _one(spans, SpanKind.SERVER)
    assert not [s for s in spans if s.kind is SpanKind.CLIENT]
    assert _attrs(server)["http.response.status_code"] == 404
    assert server.status.status_code is StatusCode.UNSET  # a 4xx is the caller's error, not the server's


def test_without_telemetry_nothing_is_traced_or_created(
    make_gateway: Callable[..., GatewayServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[str] = []
    for cls in (sdk_trace.Span, NonRecordingSpan, RequestTrace, AttemptSpan):
        original = cls.__init__

        def counting(
            self: object, *args: object, _original: Callable[..., None] = original, **kw: object
        ) -> None:
            created.append(type(self).__name__)
            _original(self, *args, **kw)

        monkeypatch.setattr(cls, "__init__", counting)

    with UpstreamServer("openai") as upstream:
        gateway = make_gateway(
            f"models:\n  gpt:\n    deployments:\n{_deployment('openai', 'echo', f'{upstream.url}/v1')}",
            {"UPSTREAM_KEY": "sk-upstream"},
        )
        assert not gateway.runtime.tracing.enabled
        assert not [m for m in build_app(gateway.runtime).user_middleware if m.cls is TracingMiddleware]
        headers = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}
        url = f"{gateway.url}/v1/chat/completions"
        assert httpx.post(url, json={"model": "gpt", "messages": HELLO}, headers=headers).status_code == 200
        stream = httpx.post(url, json={"model": "gpt", "messages": HELLO, "stream": True}, headers=headers)
        assert stream.status_code == 200
        sent = [r.headers for r in upstream.requests]
    assert len(sent) == 2
    assert not [h for h in sent if "traceparent" in h]
    assert created == []
