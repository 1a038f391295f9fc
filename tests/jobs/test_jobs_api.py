"""``/v1/jobs`` end to end, on SQLite and on Postgres: a real gateway with its in-process worker,
real HTTP, webhooks received on 127.0.0.1 and verified by the independent ``standardwebhooks``."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks import Webhook
from tests.conftest import GatewayFactory
from tests.jobs.helpers import Receiver, wait_for

CONFIG = """
models:
  echo:
    deployments:
      - provider: fake
        model: echo
  slow:
    deployments:
      - provider: fake
        model: echo
        options: {{latency_ms: 30000}}
  limited:
    retry: {{max_attempts: 1}}
    breaker: {{enabled: false}}
    deployments:
      - provider: fake
        model: echo
        options: {{fault: rate_limit}}
  loading:
    deployments:
      - provider: fake
        model: echo
        options: {{fault: not_ready, fault_first: 4}}
state:
  database_url: "{url}"
jobs:
  worker: {{poll_interval: 0.05, concurrency: 4}}
  max_attempts: 2
  backoff: {{initial: 0.05, maximum: 0.1}}
  webhooks:
    allow: [127.0.0.1]
    retry_schedule: [0.1, 0.1, 0.1]
"""

CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hello jobs"}]}


@pytest.fixture
def client(make_gateway: GatewayFactory, state_url: str) -> Iterator[httpx.Client]:
    gateway = make_gateway(CONFIG.format(url=state_url))
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        yield client


def finished(client: httpx.Client, job_id: str) -> dict[str, Any] | None:
    job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
    return job if job["status"] not in {"queued", "running"} else None


def test_a_chat_job_is_accepted_run_and_its_signed_webhook_verifies(
    client: httpx.Client, receiver: Receiver
) -> None:
    receiver.statuses = [500]  # the first delivery fails: retried with the same webhook-id
    answer = client.post(
        "/v1/jobs",
        json={"operation": "chat", "request": CHAT, "callback_url": receiver.url, "metadata": {"ref": "a1"}},
    )
    assert answer.status_code == 202
    job = answer.json()
    assert answer.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert job["operation"] == "chat"
    assert job["metadata"] == {"ref": "a1"}
    done = wait_for(lambda: finished(client, job["id"]))
    assert done["status"] == "succeeded"
    assert done["attempts"] == 1
    assert done["result"]["choices"][0]["message"]["content"] == "echo: hello jobs"
    log = wait_for(lambda: _delivered(client, job["id"]))
    assert [a["status_code"] for a in log["attempts"]] == [500, 204]
    secret = client.get("/v1/webhooks/secret").json()["secret"]
    assert secret.startswith("whsec_")
    assert len(receiver.deliveries) == 2
    ids = {d.headers["webhook-id"] for d in receiver.deliveries}
    assert ids == {log["id"]}
    for delivery in receiver.deliveries:
        payload = Webhook(secret).verify(delivery.body, delivery.headers)
        assert payload["type"] == "job.succeeded"
        assert payload["data"]["id"] == job["id"]
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(secret).verify(delivery.body.replace(b"hello", b"HELLO"), delivery.headers)
    again = client.post(f"/v1/jobs/{job['id']}/deliveries/redeliver").json()
    assert [a["manual"] for a in again["data"][0]["attempts"]] == [False, False, True]
    assert receiver.deliveries[-1].headers["webhook-id"] == log["id"]


def _delivered(client: httpx.Client, job_id: str) -> dict[str, Any] | None:
    data = client.get(f"/v1/jobs/{job_id}/deliveries").json()["data"]
    return data[0] if data and data[0]["status"] == "delivered" else None


def test_embeddings_and_listing_with_filters_and_pages(client: httpx.Client) -> None:
    ids = []
    for text in ("a", "b", "c"):
        answer = client.post(
            "/v1/jobs", json={"operation": "embeddings", "request": {"model": "echo", "input": text}}
        )
        ids.append(answer.json()["id"])
    for job_id in ids:
        done = wait_for(functools.partial(finished, client, job_id))
        assert done["status"] == "succeeded"
        assert done["result"]["object"] == "list"
        assert len(done["result"]["data"][0]["embedding"]) > 0
    first = client.get("/v1/jobs", params={"limit": 2, "operation": "embeddings"}).json()
    assert first["has_more"] is True
    assert len(first["data"]) == 2
    rest = client.get("/v1/jobs", params={"limit": 2, "after": first["last_id"]}).json()
    assert [j["id"] for j in first["data"] + rest["data"]] == list(reversed(ids))
    assert client.get("/v1/jobs", params={"status": "failed"}).json()["data"] == []
    assert client.get("/v1/jobs", params={"status": "nope"}).json()["error"]["param"] == "status"


def test_an_idempotency_key_returns_the_same_job_and_refuses_another_body(client: httpx.Client) -> None:
    body = {"operation": "chat", "request": CHAT}
    first = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "order-42"})
    second = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "order-42"})
    assert first.status_code == second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    other = {"operation": "chat", "request": {**CHAT, "temperature": 0.5}}
    conflict = client.post("/v1/jobs", json=other, headers={"Idempotency-Key": "order-42"})
    assert conflict.status_code == 422
    assert conflict.json()["error"]["code"] == "idempotency_key_reused"
    wait_for(lambda: finished(client, first.json()["id"]))
    assert len(client.get("/v1/jobs").json()["data"]) == 1  # executed once


def test_retryable_failures_end_in_dead_letters_with_the_reason(client: httpx.Client) -> None:
    request = {"model": "limited", "messages": [{"role": "user", "content": "x"}]}
    job = client.post("/v1/jobs", json={"operation": "chat", "request": request}).json()
    done = wait_for(lambda: finished(client, job["id"]))
    assert done["status"] == "dead"
    assert done["attempts"] == 2
    # the second attempt finds the deployment cooling down after the first 429's Retry-After
    assert done["error"]["code"] in {"rate_limit_exceeded", "deployments_unavailable"}
    assert done["error"]["status"] in {429, 502, 503}
    assert done["error"]["dead_letter_reason"] == "attempts exhausted"


def test_a_job_for_an_unknown_model_fails_without_retries(client: httpx.Client) -> None:
    request = {"model": "nope", "messages": [{"role": "user", "content": "x"}]}
    job = client.post("/v1/jobs", json={"operation": "chat", "request": request}).json()
    done = wait_for(lambda: finished(client, job["id"]))
    assert done["status"] == "failed"
    assert done["attempts"] == 1
    assert done["error"]["code"] == "model_not_found"


def test_cancel_a_running_job_then_a_finished_one_conflicts(client: httpx.Client) -> None:
    request = {"model": "slow", "messages": [{"role": "user", "content": "x"}]}
    job = client.post("/v1/jobs", json={"operation": "chat", "request": request}).json()
    wait_for(lambda: client.get(f"/v1/jobs/{job['id']}").json()["status"] == "running")
    cancelled = client.delete(f"/v1/jobs/{job['id']}")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert client.delete(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"  # idempotent
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"
    quick = client.post("/v1/jobs", json={"operation": "chat", "request": CHAT}).json()
    wait_for(lambda: finished(client, quick["id"]))
    conflict = client.delete(f"/v1/jobs/{quick['id']}")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "conflict"


BAD = [
    ({"operation": "chat", "request": {**CHAT, "stream": True}}, "request.stream"),
    ({"operation": "chat", "request": {"model": "echo"}}, "request.messages"),
    ({"operation": "painting", "request": CHAT}, "operation"),
    ({"operation": "chat", "request": CHAT, "priority": 1000}, "priority"),
    ({"operation": "chat", "request": CHAT, "callback_url": "http://10.1.2.3/x"}, "callback_url"),
    ({"operation": "chat", "request": CHAT, "callback_url": "http://169.254.169.254/"}, "callback_url"),
    ({"operation": "chat", "request": CHAT, "callback_url": "ftp://example.com/"}, "callback_url"),
    ({"operation": "chat", "request": CHAT, "callback_url": "http://[::1]:1/"}, "callback_url"),
]


def test_bad_submissions_are_400s_naming_the_field(client: httpx.Client) -> None:
    for body, param in BAD:
        answer = client.post(
            "/v1/jobs", content=orjson.dumps(body), headers={"content-type": "application/json"}
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"] == param
    assert client.get("/v1/jobs").json()["data"] == []  # nothing was queued


def test_an_unknown_job_is_a_404(client: httpx.Client) -> None:
    for answer in (client.get("/v1/jobs/job_nope"), client.delete("/v1/jobs/job_nope")):
        assert answer.status_code == 404
        assert answer.json()["error"]["param"] == "job_id"


def test_a_job_waits_for_a_model_that_is_still_loading_without_spending_attempts(
    client: httpx.Client,
) -> None:
    # the model answers "not ready" 4 times, more than jobs.max_attempts (2): the job still succeeds
    body = {"operation": "chat", "request": {**CHAT, "model": "loading"}}
    submitted = client.post("/v1/jobs", json=body)
    assert submitted.status_code == 202, submitted.text
    job = wait_for(functools.partial(finished, client, submitted.json()["id"]), timeout=30)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1
    assert job["result"]["choices"][0]["message"]["content"] == "echo: hello jobs"
