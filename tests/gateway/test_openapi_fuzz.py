"""schemathesis against /openapi.json: no generated input gets a 5xx from the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from tests.conftest import fake_models_yaml
from tests.support.gateway import GatewayServer

from interlace.config import parse_config


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    yaml = fake_models_yaml(echo={}, m={}) + f"state:\n  dir: {Path(tmp_path_factory.mktemp('state'))}\n"
    with GatewayServer(parse_config(yaml, environ={})) as server:
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")


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
