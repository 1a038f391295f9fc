"""AI functions over real sockets: a fake OpenAI upstream scripted with valid and invalid answers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.support.gateway import GatewayServer

from interlace.config import parse_config
from interlace.store.database import Database
from interlace.store.shadow import ShadowReport
from interlace.testing import OpenAIUpstream
from interlace.testing.server import UpstreamServer

OUTPUT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["category", "urgency", "confidence"],
    "properties": {
        "category": {"type": "string", "enum": ["billing", "shipping", "other"]},
        "urgency": {"type": "integer", "minimum": 1, "maximum": 5},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
}
VALID = {"category": "billing", "urgency": 4, "confidence": 0.91}


def _config(url: str) -> str:
    fn = {
        "name": "triage",
        "version": "1",
        "model": "gpt",
        "description": "Sort a support ticket",
        "input_schema": {
            "type": "object",
            "required": ["ticket"],
            "properties": {
                "ticket": {
                    "type": "object",
                    "required": ["subject", "body"],
                    "properties": {"subject": {"type": "string"}, "body": {"type": "string", "minLength": 3}},
                }
            },
        },
        "output_schema": OUTPUT_SCHEMA,
        "prompt": "Subject: {{ ticket.subject }}\nBody: {{ ticket.body }}",
        "examples": [
            {
                "input": {"ticket": {"subject": "Box", "body": "where is it"}},
                "output": {"category": "shipping", "urgency": 2, "confidence": 0.8},
            }
        ],
        "max_repairs": 2,
        "confidence": {"field": "confidence", "threshold": 0.5},
    }
    v2 = {**fn, "version": "2", "structured": "instructions", "max_repairs": 0}
    # confidence from logprobs; below 0.99 the call is run again on the fallback model
    scored = {
        **fn,
        "name": "scored",
        "output_schema": {
            "type": "object",
            "required": ["category"],
            "properties": {"category": {"type": "string"}},
        },
        "examples": [],
        "confidence": {"logprobs": True, "threshold": 0.99, "fallback_model": "gpt-large"},
    }
    # version 1 is live and mirrors every call to the candidate version 2 (not live while shadowed)
    shadowed = {**scored, "name": "shadowed", "confidence": {}, "shadow": {"version": "2"}}
    candidate = {**shadowed, "version": "2", "shadow": None}
    deployment = [{"provider": "openai", "model": "gpt-x", "base_url": f"{url}/v1"}]
    return json.dumps(
        {
            "models": {
                "gpt": {"deployments": deployment, "retry": {"max_attempts": 1}},
                "gpt-large": {"deployments": deployment, "retry": {"max_attempts": 1}},
            },
            "functions": [fn, v2, scored, shadowed, candidate],
        }
    )


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer("openai") as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream: UpstreamServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = parse_config(_config(upstream.url), filename="test.yaml")
    state = config.state.model_copy(update={"dir": str(tmp_path_factory.mktemp("state"))})
    with GatewayServer(config.model_copy(update={"state": state})) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(upstream: UpstreamServer) -> Iterator[None]:
    upstream.reset()
    replies(upstream).clear()
    yield
    replies(upstream).clear()


def replies(upstream: UpstreamServer) -> Any:
    app = upstream.app
    assert isinstance(app, OpenAIUpstream)
    return app.replies


TICKET = {"ticket": {"subject": "Refund", "body": "I was charged twice for my order"}}


def _call(gateway: GatewayServer, body: Any, path: str = "/v1/functions/triage/versions/1") -> httpx.Response:
    return httpx.post(f"{gateway.url}{path}", json=body, timeout=20)


def test_a_valid_answer_is_returned_as_the_validated_output(
    gateway: GatewayServer, upstream: UpstreamServer
) -> None:
    replies(upstream).push(json.dumps(VALID))
    reply = _call(gateway, TICKET)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["output"] == VALID
    assert (answer["function"], answer["version"], answer["repairs"]) == ("triage", "1", 0)
    assert answer["confidence"] == pytest.approx(0.91)
    assert answer["needs_review"] is False
    assert answer["model"] == "gpt"
    assert answer["usage"]["total_tokens"] > 0
    (sent,) = upstream.requests
    body = sent.body
    # the provider's JSON-schema mode, strict because the schema is closed and fully required
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "triage_output", "schema": OUTPUT_SCHEMA, "strict": True},
    }
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]  # instruction, one few-shot pair, the call
    assert body["messages"][-1]["content"] == "Subject: Refund\nBody: I was charged twice for my order"


def test_invalid_then_valid_is_reasked_with_the_violations(
    gateway: GatewayServer, upstream: UpstreamServer
) -> None:
    script = replies(upstream)
    script.push(json.dumps({"category": "refunds", "urgency": 9, "confidence": 0.7}))
    script.push(json.dumps(VALID))
    reply = _call(gateway, TICKET)
    assert reply.status_code == 200, reply.text
    assert reply.json()["output"] == VALID
    assert reply.json()["repairs"] == 1
    first, second = (r.body for r in upstream.requests)
    assert len(second["messages"]) == len(first["messages"]) + 2
    assert second["messages"][-2]["role"] == "assistant"
    reask = second["messages"][-1]["content"]
    assert "/category" in reask
    assert "'refunds' is not one of" in reask
    assert "/urgency" in reask
    assert "9 is greater than the maximum of 5" in reask


def test_always_invalid_stops_at_the_bound_with_a_502_carrying_raw_output_and_violations(
    gateway: GatewayServer, upstream: UpstreamServer
) -> None:
    before = _output_tokens(gateway)
    bad = '{"category": "billing", "urgency": "high"'  # truncated JSON, then a wrong type
    replies(upstream).push(bad)
    replies(upstream).push(json.dumps({"category": "billing", "urgency": "high", "confidence": 1}), times=10)
    reply = _call(gateway, TICKET)
    assert reply.status_code == 502
    error = reply.json()["error"]
    assert error["code"] == "function_output_invalid"
    assert error["type"] == "upstream_error"
    assert error["attempts"] == 3  # the first answer and max_repairs=2 re-asks
    assert error["raw_output"] == json.dumps({"category": "billing", "urgency": "high", "confidence": 1})
    assert error["violations"] == [{"path": "/urgency", "message": "'high' is not of type 'integer'"}]
    assert len(upstream.requests) == 3
    assert "not valid JSON" in upstream.requests[1].body["messages"][-1]["content"]
    assert "output" not in reply.json()
    # the tokens of all three answers are recorded (and settled) although the call failed
    # (the fake counts words: 4 in the truncated answer, 6 in each of the two others)
    assert _output_tokens(gateway) - before == 4 + 6 + 6


def test_without_repairs_an_invalid_answer_fails_at_once_and_instructions_carry_the_schema(
    gateway: GatewayServer, upstream: UpstreamServer
) -> None:
    replies(upstream).push("Sure! Here is the answer: billing")
    reply = _call(gateway, TICKET, "/v1/functions/triage")  # the latest: version 2
    assert reply.status_code == 502
    assert reply.json()["error"]["raw_output"] == "Sure! Here is the answer: billing"
    (sent,) = upstream.requests
    body = sent.body
    assert "response_format" not in body
    assert json.dumps(OUTPUT_SCHEMA, sort_keys=True) in body["messages"][0]["content"]


def test_low_confidence_is_flagged_for_review(gateway: GatewayServer, upstream: UpstreamServer) -> None:
    replies(upstream).push(json.dumps({**VALID, "confidence": 0.2}))
    answer = _call(gateway, TICKET).json()
    assert answer["confidence"] == pytest.approx(0.2)
    assert answer["needs_review"] is True


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "/ticket"),
        ({"ticket": {"subject": "x"}}, "/ticket/body"),
        ({"ticket": {"subject": "x", "body": "no"}}, "/ticket/body"),
        ({"ticket": {"subject": 7, "body": "long enough"}}, "/ticket/subject"),
    ],
)
def test_input_is_validated_first_naming_the_field(
    gateway: GatewayServer, upstream: UpstreamServer, body: dict[str, Any], param: str
) -> None:
    reply = _call(gateway, body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["param"], error["code"]) == (param, "invalid_function_input")
    assert upstream.requests == []


def test_unknown_function_and_version_are_404(gateway: GatewayServer) -> None:
    missing = _call(gateway, TICKET, "/v1/functions/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "function_not_found"
    assert "triage" in missing.json()["error"]["message"]
    version = _call(gateway, TICKET, "/v1/functions/triage/versions/9")
    assert version.status_code == 404
    assert "Versions: 1, 2" in version.json()["error"]["message"]


def test_listing_shows_every_version_with_its_schemas(gateway: GatewayServer) -> None:
    listed = httpx.get(f"{gateway.url}/v1/functions").json()["data"]
    assert [(f["name"], f["version"]) for f in listed] == [
        ("scored", "1"),
        ("shadowed", "1"),
        ("shadowed", "2"),
        ("triage", "1"),
        ("triage", "2"),
    ]
    assert listed[3]["output_schema"] == OUTPUT_SCHEMA
    assert listed[3]["input_schema"]["required"] == ["ticket"]
    one = httpx.get(f"{gateway.url}/v1/functions/triage").json()
    assert (one["version"], one["versions"]) == ("2", ["1", "2"])


def test_metrics_count_function_calls(gateway: GatewayServer, upstream: UpstreamServer) -> None:
    replies(upstream).push(json.dumps(VALID))
    assert _call(gateway, TICKET).status_code == 200
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'operation="function"' in metrics


def test_logprob_confidence_below_the_threshold_runs_on_the_fallback_model(
    gateway: GatewayServer, upstream: UpstreamServer
) -> None:
    replies(upstream).push(json.dumps({"category": "billing"}), times=2)
    reply = _call(gateway, TICKET, "/v1/functions/scored")
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    first, second = upstream.requests
    assert first.body["logprobs"] is True
    assert (first.body["model"], second.body["model"]) == ("gpt-x", "gpt-x")
    # the fake's logprobs are small negatives: a confidence just under 1, below the 0.99 bar
    assert 0.9 < answer["confidence"] < 0.99
    assert (answer["fallback"], answer["model"], answer["needs_review"]) == (True, "gpt-large", True)
    assert answer["output"] == {"category": "billing"}


async def _shadow_rows(url: str) -> list[dict[str, Any]]:
    database = Database(url)
    await database.start()
    try:
        return await ShadowReport(database).rows()
    finally:
        await database.aclose()


def test_a_shadowed_version_serves_and_its_candidate_runs_in_the_background(
    gateway: GatewayServer, upstream: UpstreamServer
) -> None:
    replies(upstream).push(json.dumps({"category": "billing"}))
    replies(upstream).push(json.dumps({"category": "shipping"}))
    reply = _call(gateway, TICKET, "/v1/functions/shadowed")
    assert reply.status_code == 200, reply.text
    assert (reply.json()["version"], reply.json()["output"]) == ("1", {"category": "billing"})
    deadline = time.monotonic() + 10
    rows: list[dict[str, Any]] = []
    while not rows and time.monotonic() < deadline:  # the shadow run is written off the request path
        rows = [
            r for r in asyncio.run(_shadow_rows(gateway.runtime.database.url)) if r["alias"] == "shadowed@1"
        ]
        time.sleep(0.05)
    (row,) = rows
    assert row["candidate"] == "shadowed@2"
    assert row["exact_match"] is False
    assert json.loads(row["primary_text"]) == {"category": "billing"}
    assert json.loads(row["shadow_text"]) == {"category": "shipping"}
    assert len(upstream.requests) == 2


def _output_tokens(gateway: GatewayServer) -> float:
    for line in httpx.get(f"{gateway.url}/metrics").text.splitlines():
        if line.startswith('interlace_tokens_total{model="gpt",type="output"}'):
            return float(line.split()[-1])
    return 0.0
