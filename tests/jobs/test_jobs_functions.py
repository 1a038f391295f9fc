"""AI functions as jobs and as batch lines: a real gateway and worker, a fake OpenAI upstream scripted
with valid and invalid answers, the official ``openai`` SDK for the batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types import Batch
from tests.conftest import GatewayFactory
from tests.jobs.helpers import wait_for

from interlace.testing import OpenAIUpstream
from interlace.testing.server import UpstreamServer

OUTPUT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["category", "urgency"],
    "properties": {
        "category": {"type": "string", "enum": ["billing", "shipping", "other"]},
        "urgency": {"type": "integer", "minimum": 1, "maximum": 5},
    },
}
VALID = {"category": "billing", "urgency": 4}
TICKET = {"ticket": {"subject": "Refund", "body": "I was charged twice"}}


def _config(url: str) -> str:
    fn = {
        "name": "triage",
        "version": "1",
        "model": "gpt",
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
        "max_repairs": 1,
    }
    deployment = [{"provider": "openai", "model": "gpt-x", "base_url": f"{url}/v1"}]
    return json.dumps(
        {
            "models": {"gpt": {"deployments": deployment, "retry": {"max_attempts": 1}}},
            "functions": [fn, {**fn, "version": "2"}],
            "jobs": {
                "worker": {"poll_interval": 0.05, "concurrency": 4},
                "max_attempts": 3,
                "backoff": {"initial": 0.05, "maximum": 0.1},
            },
        }
    )


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer("openai") as server:
        yield server


@pytest.fixture
def gateway_url(make_gateway: GatewayFactory, upstream: UpstreamServer) -> str:
    return make_gateway(_config(upstream.url)).url


@pytest.fixture
def client(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


def _script(upstream: UpstreamServer) -> Any:
    app = upstream.app
    assert isinstance(app, OpenAIUpstream)
    return app.replies


def _finished(client: httpx.Client, job_id: str) -> dict[str, Any] | None:
    job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
    return job if job["status"] not in {"queued", "running"} else None


def _submit(client: httpx.Client, request: dict[str, Any]) -> httpx.Response:
    return client.post("/v1/jobs", json={"operation": "function", "request": request})


def test_a_function_job_stores_the_function_result(client: httpx.Client, upstream: UpstreamServer) -> None:
    _script(upstream).push(json.dumps(VALID))
    accepted = _submit(client, {"name": "triage", "version": "1", "input": TICKET})
    assert accepted.status_code == 202, accepted.text
    queued = accepted.json()
    assert (queued["operation"], queued["model"]) == ("function", "gpt")
    job = wait_for(lambda: _finished(client, queued["id"]))
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["object"] == "function.result"
    assert (result["function"], result["version"], result["output"]) == ("triage", "1", VALID)
    assert result["repairs"] == 0
    assert result["usage"]["total_tokens"] > 0
    (sent,) = upstream.requests
    assert sent.body["messages"][-1]["content"] == "Subject: Refund\nBody: I was charged twice"


def test_the_latest_version_runs_when_none_is_named(client: httpx.Client, upstream: UpstreamServer) -> None:
    _script(upstream).push(json.dumps(VALID))
    accepted = _submit(client, {"name": "triage", "input": TICKET})
    assert accepted.status_code == 202, accepted.text
    job = wait_for(lambda: _finished(client, accepted.json()["id"]))
    assert job["status"] == "succeeded", job
    assert job["result"]["version"] == "2"


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        (
            {"name": "triage", "input": {"ticket": {"subject": "x", "body": "no"}}},
            "request.input.ticket.body",
        ),
        ({"name": "triage", "input": {}}, "request.input.ticket"),
        ({"name": "nope", "input": TICKET}, "request.name"),
        ({"name": "triage", "version": "9", "input": TICKET}, "request.version"),
        ({"name": "triage"}, "request.input"),
        ({"name": "triage", "input": TICKET, "model": "gpt"}, "request.model"),
    ],
)
def test_a_bad_function_job_is_a_400_naming_the_field(
    client: httpx.Client, upstream: UpstreamServer, request_body: dict[str, Any], param: str
) -> None:
    refused = _submit(client, request_body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == param
    assert client.get("/v1/jobs").json()["data"] == []
    assert upstream.requests == []


def test_an_output_that_stays_invalid_fails_the_job_without_retries(
    client: httpx.Client, upstream: UpstreamServer
) -> None:
    invalid = json.dumps({"category": "billing", "urgency": "high"})
    _script(upstream).push(invalid, times=10)
    accepted = _submit(client, {"name": "triage", "version": "1", "input": TICKET})
    job = wait_for(lambda: _finished(client, accepted.json()["id"]))
    assert job["status"] == "failed", job  # not dead letters: another attempt would fail the same way
    assert job["attempts"] == 1
    error = job["error"]
    assert error["code"] == "function_output_invalid"
    assert error["raw_output"] == invalid
    assert error["violations"] == [{"path": "/urgency", "message": "'high' is not of type 'integer'"}]
    assert len(upstream.requests) == 2  # the answer and max_repairs=1 re-ask, once


def test_a_batch_of_function_calls(gateway_url: str, upstream: UpstreamServer) -> None:
    _script(upstream).push(json.dumps(VALID), times=5)
    url = "/v1/functions/triage/versions/1"
    rows = [
        {
            "custom_id": f"t-{i}",
            "method": "POST",
            "url": url,
            "body": {"ticket": {"subject": f"s{i}", "body": "abcd"}},
        }
        for i in range(5)
    ]
    content = b"\n".join(orjson.dumps(row) for row in rows) + b"\n"
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="unused", max_retries=0) as client:
        bad = [{**rows[0], "body": {"ticket": {"subject": "s"}}}]
        with pytest.raises(openai.BadRequestError, match="line 1"):
            client.files.create(file=("bad.jsonl", orjson.dumps(bad[0])), purpose="batch")
        uploaded = client.files.create(file=("calls.jsonl", content), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id,
            endpoint=url,  # type: ignore[arg-type]  # the SDK types OpenAI's endpoints only
            completion_window="24h",
        )

        def completed() -> Batch | None:
            found = client.batches.retrieve(batch.id)
            return found if found.status == "completed" else None

        done = wait_for(completed)
        assert done.request_counts is not None
        assert (done.request_counts.completed, done.request_counts.failed) == (5, 0)
        assert done.output_file_id is not None
        output = [orjson.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    assert [line["custom_id"] for line in output] == [f"t-{i}" for i in range(5)]
    assert {line["response"]["status_code"] for line in output} == {200}
    assert all(line["response"]["body"]["output"] == VALID for line in output)
    assert sorted(r.body["messages"][-1]["content"] for r in upstream.requests) == [
        f"Subject: s{i}\nBody: abcd" for i in range(5)
    ]


MASTER = "sk-master-0123456789abcdef0123456789"


def test_a_function_job_needs_a_key_scoped_to_functions(
    make_gateway: GatewayFactory, upstream: UpstreamServer
) -> None:
    config = json.loads(_config(upstream.url))
    config["auth"] = {"master_key": "${INTERLACE_MASTER_KEY}"}
    gateway = make_gateway(json.dumps(config), env={"INTERLACE_MASTER_KEY": MASTER})
    _script(upstream).push(json.dumps(VALID))
    job = {"operation": "function", "request": {"name": "triage", "version": "1", "input": TICKET}}
    with httpx.Client(base_url=gateway.url, timeout=30) as client:

        def key(tenant: str, endpoints: list[str]) -> dict[str, str]:
            created = client.post(
                "/admin/v1/keys",
                json={"name": "k", "tenant": tenant, "endpoints": endpoints},
                headers={"authorization": f"Bearer {MASTER}"},
            )
            assert created.status_code == 201, created.text
            return {"authorization": f"Bearer {created.json()['key']}"}

        refused = client.post("/v1/jobs", json=job, headers=key("acme", ["jobs"]))
        assert refused.status_code == 403
        assert refused.json()["error"]["param"] == "operation"
        acme = key("acme", ["jobs", "functions"])
        accepted = client.post("/v1/jobs", json=job, headers=acme)
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["id"]

        def finished() -> dict[str, Any] | None:
            found: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=acme).json()
            return found if found["status"] not in {"queued", "running"} else None

        assert wait_for(finished)["result"]["output"] == VALID
        assert client.get(f"/v1/jobs/{job_id}", headers=key("globex", ["jobs"])).status_code == 404
