"""/openapi.json describes every route the gateway serves, and real answers match its schemas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.routing import Route
from tests.conftest import GatewayFactory, fake_models_yaml

from interlace.config import parse_config
from interlace.gateway.app import build_app
from interlace.gateway.openapi import build_openapi
from interlace.runtime import Runtime

AUTH_YAML = """
auth:
  master_key: ${MASTER}
observability:
  metrics: {enabled: true}
"""


def _served(yaml: str, env: dict[str, str]) -> set[tuple[str, str]]:
    app = build_app(Runtime(parse_config(yaml, environ=env)))
    served = set()
    for route in app.routes:
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD":
                served.add((method.lower(), route.path.replace("{model:path}", "{model}")))
    return served


def test_every_served_route_is_described_with_errors_and_the_bearer_scheme(tmp_path: Any) -> None:
    yaml = fake_models_yaml(echo={}) + f"state:\n  dir: {tmp_path}\n" + AUTH_YAML
    served = _served(yaml, {"MASTER": "sk-master-0123456789"})
    document = build_openapi(authenticated=True, metrics=True)
    described = {(m, p) for p, item in document["paths"].items() for m in item}
    undocumented = {
        ("post", "/v1/flows/{name}/events"),  # flows: documented with the flows feature
        ("get", "/openapi.json"),
        ("post", "/v1/functions/{name}"),  # each function is described at its literal path
        ("post", "/v1/functions/{name}/versions/{version}"),
        ("get", "/v1/functions/{name}"),
        ("get", "/v1/functions"),  # described once a function is configured
        ("get", "/v2/models/{model}/ready"),
        ("post", "/v2/models/{model}/versions/{version}/infer"),
        ("get", "/v2/models/{model}/versions/{version}"),
    }
    assert served - undocumented <= described, sorted(served - undocumented - described)
    assert document["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    assert document["security"] == [{"bearer": []}]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"400", "403", "default"} <= set(responses), (method, path)
            if path in {"/healthz", "/readyz", "/metrics"}:
                assert operation["security"] == []
                assert "401" not in responses
            else:
                assert "security" not in operation
                assert "401" in responses
    jobs = document["paths"]["/v1/jobs"]["post"]
    assert set(jobs["responses"]) >= {"202", "409", "429"}
    submission = jobs["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(document["components"]["schemas"][submission]["properties"]) >= {"operation", "request"}
    upload = document["paths"]["/v1/files"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    assert "/metrics" not in build_openapi(authenticated=False)["paths"]
    assert "securitySchemes" not in build_openapi(authenticated=False)["components"]


CONFIG = """
models:
  echo:
    deployments:
      - provider: fake
        model: echo
jobs:
  worker: {poll_interval: 0.05}
"""


@pytest.fixture
def client(make_gateway: GatewayFactory) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=make_gateway(CONFIG).url, timeout=30) as client:
        yield client


def _validator(document: dict[str, Any], component: str) -> Draft202012Validator:
    resource: Resource[Any] = DRAFT202012.create_resource(document)
    registry: Registry[Any] = Registry().with_resource("urn:openapi", resource)
    return Draft202012Validator({"$ref": f"urn:openapi#/components/schemas/{component}"}, registry=registry)


def _check(document: dict[str, Any], component: str, body: Any) -> None:
    errors = [e.message for e in _validator(document, component).iter_errors(body)]
    assert errors == [], (component, body)


def test_answers_match_the_described_schemas(client: httpx.Client) -> None:
    document = orjson.loads(client.get("/openapi.json").content)
    chat = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    job = client.post("/v1/jobs", json={"operation": "chat", "request": chat})
    assert job.status_code == 202, job.text
    _check(document, "Job", job.json())
    _check(document, "JobList", client.get("/v1/jobs").json())
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": chat}
    uploaded = client.post(
        "/v1/files", files={"file": ("in.jsonl", orjson.dumps(line))}, data={"purpose": "batch"}
    )
    assert uploaded.status_code == 200, uploaded.text
    _check(document, "File", uploaded.json())
    _check(document, "FileList", client.get("/v1/files").json())
    batch = client.post(
        "/v1/batches",
        json={"input_file_id": uploaded.json()["id"], "endpoint": "/v1/chat/completions"},
    )
    assert batch.status_code == 200, batch.text
    _check(document, "Batch", batch.json())
    _check(document, "BatchList", client.get("/v1/batches").json())
    _check(document, "WebhookSecret", client.get("/v1/webhooks/secret").json())
    _check(document, "ApiKeyList", client.get("/admin/v1/keys").json())
    _check(document, "AuditPage", client.get("/v1/audit").json())
    _check(document, "Usage", client.get("/v1/usage").json())
    note = client.post("/v1/files", files={"file": ("n.txt", b"x")}, data={"purpose": "user_data"}).json()
    _check(document, "FileDeleted", client.delete(f"/v1/files/{note['id']}").json())
    missing = client.get("/v1/jobs/job_missing")
    assert missing.status_code == 404
    _check(document, "Error", missing.json())
