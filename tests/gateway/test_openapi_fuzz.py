"""schemathesis against /openapi.json: no generated input gets a 5xx from the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from tests.conftest import fake_models_yaml
from tests.support.gateway import GatewayServer

from interlace.config import parse_config


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # its own state directory: the fuzzed jobs, files, batches and keys go nowhere else
    yaml = fake_models_yaml(echo={}, m={}) + f"state:\n  dir: {Path(tmp_path_factory.mktemp('state'))}\n"
    with GatewayServer(parse_config(yaml, environ={})) as server:
        yield server.url


@pytest.fixture(scope="module")
def api_schema(gateway_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{gateway_url}/openapi.json")


def _operations(schema: schemathesis.BaseSchema) -> list[schemathesis.APIOperation]:
    return [result.ok() for result in schema.get_all_operations()]


def test_schema_describes_every_public_operation(api_schema: schemathesis.BaseSchema) -> None:
    labels = {op.label for op in _operations(api_schema)}
    assert {
        "POST /v1/chat/completions",
        "POST /v1/embeddings",
        "POST /v1/messages",
        "POST /v1/classify",
        "GET /v1/models",
        "POST /v2/models/{model}/infer",
        "GET /v1/usage",
        "GET /v1/audit",
        "POST /v1/jobs",
        "GET /v1/jobs",
        "GET /v1/jobs/{job_id}",
        "DELETE /v1/jobs/{job_id}",
        "GET /v1/jobs/{job_id}/deliveries",
        "POST /v1/jobs/{job_id}/deliveries/redeliver",
        "GET /v1/webhooks/secret",
        "POST /v1/files",
        "GET /v1/files",
        "GET /v1/files/{file_id}",
        "DELETE /v1/files/{file_id}",
        "GET /v1/files/{file_id}/content",
        "POST /v1/batches",
        "GET /v1/batches",
        "GET /v1/batches/{batch_id}",
        "POST /v1/batches/{batch_id}/cancel",
        "POST /admin/v1/keys",
        "GET /admin/v1/keys",
        "GET /admin/v1/keys/{key_id}",
        "DELETE /admin/v1/keys/{key_id}",
        "POST /admin/v1/keys/{key_id}/rotate",
        "GET /metrics",
    } <= labels


def test_no_server_errors(api_schema: schemathesis.BaseSchema) -> None:
    for operation in _operations(api_schema):

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            response = case.call(timeout=10)
            case.validate_response(response, checks=[not_a_server_error])
            if response.status_code >= 400 and response.content:
                assert "error" in response.json(), response.text

        check()


def test_a_huge_key_lifetime_is_a_400(gateway_url: str) -> None:
    # found by the fuzzing: timedelta(seconds=1e20) overflowed into a 500
    body = {"name": "k", "tenant": "t", "expires_in": 1e20}
    assert httpx.post(f"{gateway_url}/admin/v1/keys", json=body).status_code == 400


def test_a_huge_rotation_grace_is_a_400(gateway_url: str) -> None:
    created = httpx.post(f"{gateway_url}/admin/v1/keys", json={"name": "k", "tenant": "t"})
    assert created.status_code == 201, created.text
    reply = httpx.post(f"{gateway_url}/admin/v1/keys/{created.json()['id']}/rotate", json={"grace": 1e20})
    assert reply.status_code == 400


def test_a_usage_window_at_year_one_is_answered(gateway_url: str) -> None:
    # found by the fuzzing: the default start, 29 days before end=0001-01-01, overflowed into a 500
    reply = httpx.get(f"{gateway_url}/v1/usage", params={"end": "0001-01-01"})
    assert reply.status_code == 200
    assert reply.json()["start"] == "0001-01-01"
