"""Bad input gets a clear OpenAI-style error with the right status, never a 500 or a stack trace."""

from __future__ import annotations

import httpx
import pytest
from tests.conftest import GatewayFactory, fake_models_yaml


@pytest.fixture
def gateway_url(make_gateway: GatewayFactory) -> str:
    yaml = fake_models_yaml(
        echo={}, limited={"fault": "rate_limit"}, broken={"fault": "server_error"}, slow={"fault": "timeout"}
    )
    yaml += "server:\n  max_body_bytes: 2048\n"
    return make_gateway(yaml).url


def _error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str)
    assert "Traceback" not in error["message"]
    return error


def test_malformed_json_is_400(gateway_url: str) -> None:
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        content=b'{"model": "echo",',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert _error(r)["code"] == "invalid_json"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "echo", "messages": []}, "messages"),
        ({"model": "echo", "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"model": "echo", "messages": [{"role": "user", "content": "hi"}], "temperature": 7}, "temperature"),
        ({"model": "echo", "messages": [{"role": "user", "content": "hi"}], "n": 0}, "n"),
        ({"model": "echo", "messages": [{"role": "tool", "content": "x"}]}, "messages[0]"),
        (
            {"model": "echo", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages[0].content[0]",
        ),
    ],
)
def test_schema_violation_names_the_field(gateway_url: str, body: dict[str, object], param: str) -> None:
    r = httpx.post(f"{gateway_url}/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text
    error = _error(r)
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"


def test_unknown_model_is_404_listing_available(gateway_url: str) -> None:
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 404
    error = _error(r)
    assert error["code"] == "model_not_found"
    assert "echo" in str(error["message"])
    assert "gpt-9" in str(error["message"])


def test_upstream_429_passes_retry_after(gateway_url: str) -> None:
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "limited", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"
    assert _error(r)["type"] == "rate_limit_error"


def test_upstream_5xx_is_502(gateway_url: str) -> None:
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "broken", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 502
    assert _error(r)["type"] == "upstream_error"


def test_upstream_timeout_is_504(gateway_url: str) -> None:
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "slow", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 504


def test_body_over_the_limit_is_413(gateway_url: str) -> None:
    big = "x" * 4096
    r = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "echo", "messages": [{"role": "user", "content": big}]},
    )
    assert r.status_code == 413
    assert "max_body_bytes" in str(_error(r)["message"])


def test_chunked_body_over_the_limit_is_413(gateway_url: str) -> None:
    def chunks():  # no content-length: the limit is enforced while reading
        for _ in range(10):
            yield b"x" * 512

    r = httpx.post(f"{gateway_url}/v1/chat/completions", content=chunks())
    assert r.status_code == 413


def test_unknown_route_and_wrong_method(gateway_url: str) -> None:
    r = httpx.get(f"{gateway_url}/v1/nothing")
    assert r.status_code == 404
    _error(r)
    r = httpx.get(f"{gateway_url}/v1/chat/completions")
    assert r.status_code == 405
    _error(r)


def test_operation_the_model_does_not_serve(gateway_url: str) -> None:
    r = httpx.post(f"{gateway_url}/v1/classify", json={"model": "echo", "input": "x", "labels": ["a"]})
    assert r.status_code == 400
    assert _error(r)["param"] == "model"


def test_body_that_is_not_an_object(gateway_url: str) -> None:
    r = httpx.post(f"{gateway_url}/v1/embeddings", json=["model", "echo"])
    assert r.status_code == 400
    assert _error(r)["code"] == "invalid_json"
