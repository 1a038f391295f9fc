"""The embedded default: the real local model behind /v1/embeddings and /v1/classify."""

from __future__ import annotations

import array
import base64
import math
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
from tests.support.gateway import GatewayServer


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embeddings_through_the_openai_sdk(local_gateway: GatewayServer) -> None:
    client = openai.OpenAI(base_url=f"{local_gateway.url}/v1", api_key="unused")
    result = client.embeddings.create(
        model="minilm",
        input=["The cat sat on the mat.", "A kitten rested on the rug.", "Quarterly revenue grew 4%."],
    )
    vectors = [row.embedding for row in result.data]
    assert [len(v) for v in vectors] == [384, 384, 384]
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-3 for v in vectors)
    assert _cosine(vectors[0], vectors[1]) > _cosine(vectors[0], vectors[2]) + 0.2
    assert result.usage.prompt_tokens > 0
    assert result.model == "minilm"


def test_single_string_dimensions_and_base64(local_gateway: GatewayServer) -> None:
    reply = httpx.post(
        f"{local_gateway.url}/v1/embeddings",
        json={"model": "minilm", "input": "hello world", "dimensions": 64, "encoding_format": "base64"},
    )
    assert reply.status_code == 200, reply.text
    encoded = reply.json()["data"][0]["embedding"]
    floats = array.array("f", base64.b64decode(encoded))
    assert len(floats) == 64
    assert abs(math.sqrt(sum(x * x for x in floats)) - 1) < 1e-3
    # the SDK decodes base64 itself (its default wire format) and must agree with the float answer
    client = openai.OpenAI(base_url=f"{local_gateway.url}/v1", api_key="unused")
    sdk = client.embeddings.create(model="minilm", input="hello world", dimensions=64).data[0].embedding
    assert max(abs(a - b) for a, b in zip(sdk, floats, strict=True)) < 1e-6


def test_dimensions_out_of_range_names_the_field(local_gateway: GatewayServer) -> None:
    reply = httpx.post(
        f"{local_gateway.url}/v1/embeddings", json={"model": "minilm", "input": "x", "dimensions": 1000}
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "dimensions"


def test_classify_single_and_multi_label(local_gateway: GatewayServer) -> None:
    reply = httpx.post(
        f"{local_gateway.url}/v1/classify",
        json={
            "model": "minilm",
            "input": ["I was charged twice on my credit card", "My parcel has not arrived yet"],
            "labels": ["billing", "shipping", "technical issue"],
        },
    )
    assert reply.status_code == 200, reply.text
    data = reply.json()["data"]
    assert [row["label"] for row in data] == ["billing", "shipping"]
    assert abs(sum(s["score"] for s in data[0]["labels"]) - 1) < 1e-3
    multi = httpx.post(
        f"{local_gateway.url}/v1/classify",
        json={
            "model": "minilm",
            "input": "refund my payment",
            "labels": ["billing", "weather"],
            "multi_label": True,
        },
    ).json()
    scores = {s["label"]: s["score"] for s in multi["data"][0]["labels"]}
    assert all(0 <= v <= 1 for v in scores.values())
    assert scores["billing"] > scores["weather"]


def test_classify_rejects_duplicate_labels(local_gateway: GatewayServer) -> None:
    reply = httpx.post(
        f"{local_gateway.url}/v1/classify", json={"model": "minilm", "input": "x", "labels": ["a", "a"]}
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "labels"


def test_concurrent_requests_share_forward_passes(local_gateway: GatewayServer) -> None:
    encoder = next(iter(local_gateway.runtime._encoders.values()))
    before = encoder.batches_run
    texts = [f"sentence number {i} about topic {i % 5}" for i in range(24)]

    def embed(text: str) -> list[float]:
        reply = httpx.post(f"{local_gateway.url}/v1/embeddings", json={"model": "minilm", "input": text})
        return list(reply.json()["data"][0]["embedding"])

    with ThreadPoolExecutor(max_workers=24) as pool:
        vectors = list(pool.map(embed, texts))
    assert encoder.batches_run - before < len(texts)
    # each caller got its own text's vector
    alone = embed(texts[7])
    assert _cosine(alone, vectors[7]) > 0.9999


def test_chat_on_the_local_model_is_a_clear_error(local_gateway: GatewayServer) -> None:
    reply = httpx.post(
        f"{local_gateway.url}/v1/chat/completions",
        json={"model": "minilm", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert reply.status_code == 400
    assert "does not serve chat completions" in reply.json()["error"]["message"]


def test_models_lists_minilm_with_capabilities(local_gateway: GatewayServer) -> None:
    models = httpx.get(f"{local_gateway.url}/v1/models").json()["data"]
    assert [m["id"] for m in models] == ["minilm"]
    assert models[0]["capabilities"] == ["classify", "embeddings"]
    assert models[0]["ready"] is True
    assert httpx.get(f"{local_gateway.url}/readyz").json()["checks"]["local_model:all-MiniLM-L6-v2"] is True
