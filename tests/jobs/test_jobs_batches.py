"""The OpenAI Files and Batch APIs, through the official ``openai`` SDK, unchanged: 1,000 requests
against a rate-limited fake upstream, every line accounted for in the output or the error file."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import orjson
import pytest
from tests.conftest import GatewayFactory
from tests.jobs.helpers import wait_for

CONFIG = """
models:
  echo:
    retry: {{max_attempts: 1}}
    breaker: {{enabled: false}}
    deployments:
      - provider: fake
        model: echo
        options: {{fault: rate_limit, fault_every: 250}}   # a 429 with Retry-After: 1, cooling it down
state:
  database_url: "{url}"
jobs:
  worker: {{poll_interval: 0.05, concurrency: 32}}
  max_attempts: 10
  backoff: {{initial: 0.05, maximum: 2}}
"""


@pytest.fixture
def gateway_url(make_gateway: GatewayFactory, state_url: str) -> str:
    return make_gateway(CONFIG.format(url=state_url)).url


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="unused", max_retries=0) as client:
        yield client


def _lines(count: int, *, bad_model_every: int = 0) -> bytes:
    rows = []
    for index in range(count):
        model = "missing" if bad_model_every and index % bad_model_every == 0 else "echo"
        body = {"model": model, "messages": [{"role": "user", "content": f"line {index}"}]}
        rows.append(
            {"custom_id": f"req-{index}", "method": "POST", "url": "/v1/chat/completions", "body": body}
        )
    return b"\n".join(orjson.dumps(row) for row in rows) + b"\n"


def test_a_batch_of_1000_requests_completes_with_every_line_accounted_for(
    make_gateway: GatewayFactory, postgres_url: str
) -> None:
    # on Postgres, the scale-out store (the same code runs on SQLite in the smaller tests below)
    gateway = make_gateway(CONFIG.format(url=postgres_url))
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0) as client:
        _run_1000(client)


def _run_1000(client: openai.OpenAI) -> None:
    uploaded = client.files.create(
        file=("requests.jsonl", _lines(1000, bad_model_every=100)), purpose="batch"
    )
    assert uploaded.purpose == "batch"
    assert uploaded.bytes > 0
    assert client.files.retrieve(uploaded.id).filename == "requests.jsonl"
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"run": "t"},
    )
    assert batch.status == "in_progress"
    assert batch.request_counts is not None
    assert batch.request_counts.total == 1000

    def finished() -> openai.types.Batch | None:
        found = client.batches.retrieve(batch.id)
        return found if found.status == "completed" else None

    done = wait_for(finished, timeout=240, interval=0.25)
    counts = done.request_counts
    assert counts is not None
    assert counts.total == 1000
    assert counts.completed + counts.failed == 1000
    assert counts.failed == 10  # the ten lines for a model that does not exist
    assert done.output_file_id is not None
    assert done.error_file_id is not None
    output = [orjson.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
    errors = [orjson.loads(line) for line in client.files.content(done.error_file_id).text.splitlines()]
    assert len(output) == counts.completed
    assert len(errors) == counts.failed
    ids = [row["custom_id"] for row in output + errors]
    assert sorted(ids) == sorted(f"req-{i}" for i in range(1000))  # each line exactly once
    for row in output:
        index = row["custom_id"].removeprefix("req-")
        assert row["response"]["status_code"] == 200
        assert row["response"]["body"]["choices"][0]["message"]["content"] == f"echo: line {index}"
    for row in errors:
        assert row["response"]["status_code"] == 404
        assert row["response"]["body"]["error"]["code"] == "model_not_found"
    assert [b.id for b in client.batches.list(limit=5).data] == [batch.id]


def test_rate_limited_lines_wait_and_retry_and_none_is_lost(
    make_gateway: GatewayFactory, state_url: str
) -> None:
    config = CONFIG.format(url=state_url).replace("fault_every: 250", "fault_every: 10")
    gateway = make_gateway(config)
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0) as client:
        uploaded = client.files.create(file=("small.jsonl", _lines(20)), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )

        def completed() -> openai.types.Batch | None:
            found = client.batches.retrieve(batch.id)
            return found if found.status == "completed" else None

        done = wait_for(completed, timeout=60)
    assert done.request_counts is not None
    assert done.request_counts.completed == 20
    jobs = httpx.get(f"{gateway.url}/v1/jobs", params={"batch_id": batch.id, "limit": 100}).json()["data"]
    assert len(jobs) == 20
    assert all(j["status"] == "succeeded" for j in jobs)
    assert any(j["attempts"] > 1 for j in jobs)  # every 10th upstream call answers 429


def test_cancel_a_batch_accounts_for_the_lines_that_never_ran(
    make_gateway: GatewayFactory, state_url: str
) -> None:
    # no worker: nothing runs, so every line is cancelled
    config = CONFIG.format(url=state_url).replace(
        "poll_interval: 0.05", "enabled: false, poll_interval: 0.05"
    )
    gateway = make_gateway(config)
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0) as client:
        uploaded = client.files.create(file=("five.jsonl", _lines(5)), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        cancelled = client.batches.cancel(batch.id)
        assert cancelled.status == "cancelled"
        assert cancelled.output_file_id is None
        assert cancelled.error_file_id is not None
        errors = [orjson.loads(x) for x in client.files.content(cancelled.error_file_id).text.splitlines()]
        assert [e["custom_id"] for e in errors] == [f"req-{i}" for i in range(5)]
        assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}
        with pytest.raises(openai.ConflictError):
            client.batches.cancel(batch.id)


def test_a_bad_batch_file_is_refused_naming_its_line(client: openai.OpenAI) -> None:
    bad = (
        _lines(3)
        + b'{"custom_id": "x", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "echo"}}\n'
    )
    with pytest.raises(openai.BadRequestError) as raised:
        client.files.create(file=("bad.jsonl", bad), purpose="batch")
    assert "line 4" in raised.value.message
    assert "messages" in raised.value.message
    with pytest.raises(openai.BadRequestError, match="not valid JSON"):
        client.files.create(file=("bad.jsonl", b"{nope\n"), purpose="batch")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_missing")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(
            input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h"
        )
