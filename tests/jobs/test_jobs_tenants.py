"""Tenant isolation of jobs, batches and files: another tenant's id is a 404 (never a 403 that leaks
existence); a job runs as the principal who submitted it; a key not scoped to ``jobs`` is refused."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
from tests.conftest import GatewayFactory
from tests.jobs.helpers import wait_for

CONFIG = """
auth:
  master_key: ${INTERLACE_MASTER_KEY}
models:
  echo:
    deployments:
      - provider: fake
        model: echo
jobs:
  worker: {poll_interval: 0.05}
"""
MASTER = "sk-master-0123456789abcdef0123456789"
CHAT = {"model": "echo", "messages": [{"role": "user", "content": "mine"}]}


@pytest.fixture
def client(make_gateway: GatewayFactory) -> Iterator[httpx.Client]:
    gateway = make_gateway(CONFIG, env={"INTERLACE_MASTER_KEY": MASTER})
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        yield client


def _key(client: httpx.Client, tenant: str, **scopes: object) -> dict[str, str]:
    created = client.post(
        "/admin/v1/keys",
        json={"name": f"{tenant} key", "tenant": tenant, **scopes},
        headers={"authorization": f"Bearer {MASTER}"},
    )
    assert created.status_code in {200, 201}, created.text
    return {"authorization": f"Bearer {created.json()['key']}"}


def test_another_tenants_job_is_not_found(client: httpx.Client) -> None:
    acme, globex = _key(client, "acme"), _key(client, "globex")
    master = {"authorization": f"Bearer {MASTER}"}
    job = client.post("/v1/jobs", json={"operation": "chat", "request": CHAT}, headers=acme).json()
    done = wait_for(
        lambda: (j := client.get(f"/v1/jobs/{job['id']}", headers=acme).json())["status"] == "succeeded" and j
    )
    assert done["result"]["choices"][0]["message"]["content"] == "echo: mine"  # ran as acme's key
    for answer in (
        client.get(f"/v1/jobs/{job['id']}", headers=globex),
        client.delete(f"/v1/jobs/{job['id']}", headers=globex),
        client.get(f"/v1/jobs/{job['id']}/deliveries", headers=globex),
    ):
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "job_not_found"
    assert client.get("/v1/jobs", headers=globex).json()["data"] == []
    assert [j["id"] for j in client.get("/v1/jobs", headers=acme).json()["data"]] == [job["id"]]
    assert client.get(f"/v1/jobs/{job['id']}", headers=master).status_code == 200  # the operator sees all
    # the same Idempotency-Key in two tenants is two jobs
    first = client.post(
        "/v1/jobs", json={"operation": "chat", "request": CHAT}, headers={**acme, "idempotency-key": "k"}
    )
    other = client.post(
        "/v1/jobs", json={"operation": "chat", "request": CHAT}, headers={**globex, "idempotency-key": "k"}
    )
    assert first.json()["id"] != other.json()["id"]
    # files and batches likewise
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": CHAT}
    lines = orjson.dumps(line) + b"\n"
    uploaded = client.post(
        "/v1/files", files={"file": ("in.jsonl", lines)}, data={"purpose": "batch"}, headers=acme
    ).json()
    assert client.get(f"/v1/files/{uploaded['id']}", headers=globex).status_code == 404
    assert client.get(f"/v1/files/{uploaded['id']}/content", headers=globex).status_code == 404
    refused = client.post(
        "/v1/batches",
        json={
            "input_file_id": uploaded["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
        headers=globex,
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "file_not_found"
    batch = client.post(
        "/v1/batches",
        json={
            "input_file_id": uploaded["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
        headers=acme,
    ).json()
    assert client.get(f"/v1/batches/{batch['id']}", headers=globex).status_code == 404
    assert client.post(f"/v1/batches/{batch['id']}/cancel", headers=globex).status_code == 404


def test_a_key_not_scoped_to_jobs_is_refused(client: httpx.Client) -> None:
    chat_only = _key(client, "acme", endpoints=["chat"])
    answer = client.post("/v1/jobs", json={"operation": "chat", "request": CHAT}, headers=chat_only)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "endpoint_not_allowed"
    jobs_only = _key(client, "acme", endpoints=["jobs"])  # may queue jobs but not run chat through them
    answer = client.post("/v1/jobs", json={"operation": "chat", "request": CHAT}, headers=jobs_only)
    assert answer.status_code == 403
    assert answer.json()["error"]["param"] == "operation"
