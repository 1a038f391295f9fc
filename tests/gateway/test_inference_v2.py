"""Open Inference Protocol v2 passthrough to a real KServe/Triton-style model server."""

from __future__ import annotations

import httpx
from tests.support.stack import Stack

INFER = {
    "id": "req-1",
    "inputs": [
        {"name": "a", "shape": [3], "datatype": "FP32", "data": [1, 2, 3.5]},
        {"name": "b", "shape": [2], "datatype": "INT32", "data": [10, 20]},
    ],
}


def test_infer_passes_through_with_the_model_mapped(stack: Stack) -> None:
    reply = httpx.post(f"{stack.gateway.url}/v2/models/scorer/infer", json=INFER)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["id"] == "req-1"
    assert body["model_name"] == "scorer"
    assert body["outputs"][0]["data"] == [6.5, 30.0]
    sent = stack.inference.requests[-1]
    assert sent.path == "/v2/models/sum/infer"
    assert sent.body == INFER


def test_versioned_infer_and_metadata(stack: Stack) -> None:
    reply = httpx.post(f"{stack.gateway.url}/v2/models/scorer/versions/1/infer", json=INFER)
    assert reply.status_code == 200, reply.text
    assert stack.inference.requests[-1].path == "/v2/models/sum/versions/1/infer"
    meta = httpx.get(f"{stack.gateway.url}/v2/models/scorer")
    assert meta.status_code == 200
    assert meta.json()["name"] == "scorer"
    assert meta.json()["outputs"][0]["name"] == "OUTPUT0"


def test_errors_use_the_oip_shape(stack: Stack) -> None:
    missing = httpx.post(f"{stack.gateway.url}/v2/models/nope/infer", json=INFER)
    assert missing.status_code == 404
    assert "scorer" in missing.json()["error"]
    bad = httpx.post(f"{stack.gateway.url}/v2/models/scorer/infer", json={"inputs": [{"name": "a"}]})
    assert bad.status_code == 400
    assert "inputs[0].shape" in bad.json()["error"]
    wrong_type = httpx.post(
        f"{stack.gateway.url}/v2/models/scorer/infer",
        json={"inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": ["x"]}]},
    )
    assert wrong_type.status_code == 400
    assert "datatype" in wrong_type.json()["error"]


def test_chat_model_does_not_serve_inference(stack: Stack) -> None:
    reply = httpx.post(f"{stack.gateway.url}/v2/models/gpt/infer", json=INFER)
    assert reply.status_code == 400
    assert "Open Inference Protocol" in reply.json()["error"]
