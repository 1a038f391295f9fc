"""The built-in steps: map, filter, route, dedupe (memory and Redis), mask/unmask, and the AI steps
through a real runtime (fake models: chat and embeddings; the gate, the recorder and tracing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis
from tests.conftest import fake_models_yaml
from tests.support.quotas import REDIS_URL, delete_prefix, new_prefix, require_redis

from interlace.config import parse_config
from interlace.config.flows import FlowConfig
from interlace.core.errors import ConfigError, MessageRejected
from interlace.core.principal import Principal
from interlace.flows.build import build_flow
from interlace.flows.engine import SINK_ATTRIBUTE
from interlace.flows.message import Message
from interlace.flows.services import FlowServices
from interlace.flows.steps.ai import ChatStep, EmbedStep, FunctionStep
from interlace.flows.steps.batch import BatchStep
from interlace.flows.steps.config import (
    BatchStepConfig,
    ChatStepConfig,
    DedupeStepConfig,
    EmbedStepConfig,
    FilterStepConfig,
    FunctionStepConfig,
    MapStepConfig,
    MaskStepConfig,
    RouteCase,
    RouteStepConfig,
    UnmaskStepConfig,
)
from interlace.flows.steps.dedupe import DedupeStep
from interlace.flows.steps.mask import MaskStep, UnmaskStep
from interlace.flows.steps.transform import FilterStep, MapStep, RouteStep
from interlace.flows.testing import MemorySink, MemorySource
from interlace.functions.runner import FunctionRunner
from interlace.gateway.recording import Recorder
from interlace.observability.record import RequestRecord
from interlace.runtime import Runtime

SERVICES = FlowServices(flow="t")


def msg(payload: Any, *, ident: str = "m0", key: str | None = None, **headers: str) -> Message:
    return Message(id=ident, payload=payload, key=key, headers=dict(headers), source="test")


async def test_map_builds_a_new_payload_or_writes_into_a_field() -> None:
    step = MapStep(MapStepConfig(type="map", expression='{"total": price * qty, "who": customer.name}'))
    [out] = await step.process(msg({"price": 2, "qty": 3, "customer": {"name": "Ann"}}))
    assert out.payload == {"total": 6, "who": "Ann"}
    assert out.id == "m0"
    into = MapStep(MapStepConfig(type="map", expression="$uppercase(name)", into="loud"))
    [out] = await into.process(msg({"name": "ann"}))
    assert out.payload == {"name": "ann", "loud": "ANN"}


async def test_filter_keeps_what_its_cel_expression_accepts() -> None:
    step = FilterStep(FilterStepConfig(type="filter", expression="payload.amount > 100 && key == 'eu'"))
    assert len(await step.process(msg({"amount": 150}, key="eu"))) == 1
    assert await step.process(msg({"amount": 50}, key="eu")) == []
    with pytest.raises(MessageRejected, match="amount"):
        await step.process(msg({"other": 1}, key="eu"))


async def test_a_filter_that_is_not_boolean_rejects_the_message() -> None:
    step = FilterStep(FilterStepConfig(type="filter", expression="payload.amount"))
    with pytest.raises(MessageRejected, match="not a bool"):
        await step.process(msg({"amount": 3}))


async def test_route_picks_the_first_matching_case_then_the_default() -> None:
    config = RouteStepConfig(
        type="route",
        cases=[
            RouteCase(when="payload.priority == 'high'", sink="urgent"),
            RouteCase(when="payload.priority in ['high', 'medium']", sink="soon"),
        ],
        default="later",
    )
    step = RouteStep(config)
    picks = []
    for priority in ("high", "medium", "low"):
        [out] = await step.process(msg({"priority": priority}))
        picks.append(out.attributes[SINK_ATTRIBUTE])
    assert picks == ["urgent", "soon", "later"]
    no_default = RouteStep(config.model_copy(update={"default": None}))
    [out] = await no_default.process(msg({"priority": "low"}))
    assert SINK_ATTRIBUTE not in out.attributes  # the flow's default sink


async def test_dedupe_in_memory_records_keys_only_when_confirmed() -> None:
    step = DedupeStep(DedupeStepConfig(type="dedupe", key="payload.order"), SERVICES)
    first = await step.process(msg({"order": 7}, ident="a"))
    assert len(first) == 1
    assert len(await step.process(msg({"order": 7}, ident="b"))) == 1  # not confirmed yet: passes
    await step.confirmed(first)
    assert await step.process(msg({"order": 7}, ident="c")) == []
    assert len(await step.process(msg({"order": 8}, ident="d"))) == 1


async def test_dedupe_forgets_keys_after_its_window() -> None:
    step = DedupeStep(DedupeStepConfig(type="dedupe", key="id", window=0.001), SERVICES)
    out = await step.process(msg({}, ident="a"))
    await step.confirmed(out)
    await asyncio.sleep(0.01)
    assert len(await step.process(msg({}, ident="a"))) == 1


@pytest.fixture
async def redis_services() -> AsyncIterator[FlowServices]:
    require_redis()
    prefix = new_prefix()
    client = Redis.from_url(REDIS_URL)
    try:
        yield FlowServices(flow="t", redis=client, redis_prefix=prefix)
    finally:
        await client.aclose()
        delete_prefix(prefix)


async def test_dedupe_in_redis_is_shared_by_every_process_of_the_flow(redis_services: FlowServices) -> None:
    config = DedupeStepConfig(type="dedupe", key="payload.order", store="redis", window=60)
    one, other = DedupeStep(config, redis_services), DedupeStep(config, redis_services)
    out = await one.process(msg({"order": "x1"}))
    assert await other.process(msg({"order": "x1"})) != []
    await one.confirmed(out)
    assert await other.process(msg({"order": "x1"}, ident="m1")) == []
    assert redis_services.redis is not None
    ttl = await redis_services.redis.pttl(f"{redis_services.redis_prefix}:flow:t:dedupe:x1")
    assert 0 < ttl <= 60_000


async def test_dedupe_with_redis_needs_a_redis_section() -> None:
    with pytest.raises(ConfigError, match="needs Redis"):
        DedupeStep(DedupeStepConfig(type="dedupe", store="redis"), SERVICES)


async def test_mask_replaces_personal_data_and_unmask_restores_it() -> None:
    mask = MaskStep(MaskStepConfig(type="mask", fields=["text"], reversible=True))
    text = "Write to ann.lee@example.com or call +1 415 555 0100 about order 42"
    [masked] = await mask.process(msg({"text": text, "email_copy": "ann.lee@example.com"}))
    assert "ann.lee@example.com" not in masked.payload["text"]
    assert "<EMAIL_ADDRESS_1>" in masked.payload["text"]
    assert "order 42" in masked.payload["text"]
    assert masked.payload["email_copy"] == "ann.lee@example.com"  # not a masked field
    [restored] = await UnmaskStep(UnmaskStepConfig(type="unmask")).process(masked)
    assert restored.payload["text"] == text
    irreversible = MaskStep(MaskStepConfig(type="mask"))
    [gone] = await irreversible.process(msg({"a": {"b": ["ann.lee@example.com"]}}))
    assert gone.payload == {"a": {"b": ["<EMAIL_ADDRESS_1>"]}}
    assert await UnmaskStep(UnmaskStepConfig(type="unmask")).process(gone) == [gone]


# --- AI steps through a real runtime (fake models) ---

FUNCTIONS = """
functions:
  - name: vectorise
    kind: embed
    model: fake
    field: text
    input_schema: {type: object, required: [text], properties: {text: {type: string}}}
"""


class _Records:
    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def observe(self, record: RequestRecord) -> None:
        self.records.append(record)


@pytest.fixture
async def ai(tmp_path: Path) -> AsyncIterator[tuple[FlowServices, _Records, InMemorySpanExporter]]:
    config = parse_config(fake_models_yaml(fake={}) + FUNCTIONS + f"state: {{dir: '{tmp_path}'}}\n")
    exporter = InMemorySpanExporter()
    runtime = Runtime(config, span_exporter=exporter)
    records = _Records()
    runtime.observers.add(records)
    await runtime.start()
    try:
        principal = Principal(kind="key", id="flow:t", tenant="acme")
        yield (
            FlowServices(
                flow="t",
                principal=principal,
                router=runtime.router,
                gate=runtime.gate,
                functions=FunctionRunner.from_config(config.functions, runtime.router, runtime.gate),
                recorder=Recorder(runtime.observers, runtime.router.routes),
                database=runtime.database,
                tracing=runtime.tracing,
            ),
            records,
            exporter,
        )
    finally:
        await runtime.stop()


async def test_chat_step_answers_into_a_field_as_the_flows_principal(ai: Any) -> None:
    services, records, _ = ai
    step = ChatStep(ChatStepConfig(type="chat", model="fake", prompt="Summarise: {{ text }}"), services)
    [out] = await step.process(msg({"text": "the parcel is late"}))
    assert out.payload == {"text": "the parcel is late", "answer": "echo: Summarise: the parcel is late"}
    [record] = records.records
    assert record.tenant == "acme"
    assert record.status == 200
    assert record.served_model == "fake"
    assert record.request_id == "flow-t-m0"
    assert record.usage.total_tokens > 0


async def test_embed_step_and_a_batch_of_embeddings_in_one_call(ai: Any) -> None:
    services, records, _ = ai
    [out] = await EmbedStep(EmbedStepConfig(type="embed", model="fake", field="text"), services).process(
        msg({"text": "hello"})
    )
    assert isinstance(out.payload["embedding"], list)
    assert len(out.payload["embedding"]) > 0
    batch = BatchStep(
        BatchStepConfig(
            type="batch", size=3, window=1, step=EmbedStepConfig(type="embed", model="fake", field="text")
        ),
        services,
    )
    outputs = await batch.process_batch([msg({"text": t}, ident=t) for t in ("a", "b", "hello")])
    assert [o[0].id for o in outputs] == ["a", "b", "hello"]
    assert outputs[2][0].payload["embedding"] == out.payload["embedding"]
    assert len(records.records) == 2  # one request for the whole batch


async def test_an_embed_step_without_its_field_rejects_the_message(ai: Any) -> None:
    services, _, _ = ai
    with pytest.raises(MessageRejected, match="no text field 'text'"):
        await EmbedStep(EmbedStepConfig(type="embed", model="fake", field="text"), services).process(msg({}))


async def test_function_step_runs_the_function_and_keeps_the_payload(ai: Any) -> None:
    services, records, _ = ai
    step = FunctionStep(
        FunctionStepConfig(type="function", function="vectorise", input='{"text": body}', into="fn"), services
    )
    [out] = await step.process(msg({"body": "some text"}))
    assert out.payload["body"] == "some text"
    assert len(out.payload["fn"]["embedding"]) > 0
    assert records.records[-1].tenant == "acme"


async def test_an_unknown_function_fails_when_the_flow_is_built(ai: Any) -> None:
    services, _, _ = ai
    with pytest.raises(Exception, match="nope"):
        FunctionStep(FunctionStepConfig(type="function", function="nope"), services)


async def test_the_ai_call_is_a_child_of_the_messages_trace_and_the_sink_gets_the_flow_span(ai: Any) -> None:
    services, _, exporter = ai
    producer_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{producer_trace}-00f067aa0ba902b7-01"
    flow = FlowConfig.model_validate(
        {
            "source": {"type": "webhook"},
            "steps": [{"type": "chat", "model": "fake", "prompt": "{{ text }}"}],
            "sink": {"type": "files", "path": "unused.jsonl"},
        }
    )
    engine = build_flow("t", flow, services)
    sink = MemorySink()
    engine.source = MemorySource([msg({"text": "hi"}, traceparent=traceparent)])
    engine.sinks = {"default": sink}
    await engine.run()
    [written] = sink.written
    assert written.headers["traceparent"].split("-")[1] == producer_trace
    spans = exporter.get_finished_spans()
    assert {format(s.context.trace_id, "032x") for s in spans} == {producer_trace}
    names = [s.name for s in spans]
    assert "flow t" in names
    assert len(spans) >= 2
