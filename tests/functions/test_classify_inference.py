"""A classify function on an Open Inference Protocol v2 model: one score per label, in label order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.support.gateway import GatewayServer

from interlace.config import parse_config
from interlace.testing import InferenceV2Upstream
from interlace.testing.exchange import Exchange
from interlace.testing.server import UpstreamServer


class LabelScorer(InferenceV2Upstream):
    """A text classifier behind KServe: scores [refund, other]; a third, wrong-sized answer on 'broken'."""

    async def _infer(self, ex: Exchange) -> None:
        (tensor,) = ex.body["inputs"]
        assert (tensor["name"], tensor["datatype"], tensor["shape"]) == ("text", "BYTES", [1])
        text = str(tensor["data"][0])
        scores = [0.9, 0.1] if "refund" in text else [0.55, 0.45]
        if "broken" in text:
            scores = [1.0]
        output = {"name": "scores", "shape": [len(scores)], "datatype": "FP32", "data": scores}
        await ex.respond({"model_name": "scorer", "outputs": [output]})


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    with UpstreamServer(LabelScorer(models=("scorer",))) as upstream:
        text = json.dumps(
            {
                "models": {
                    "scorer": {
                        "deployments": [
                            {"provider": "inference_v2", "model": "scorer", "base_url": upstream.url}
                        ]
                    }
                },
                "functions": [
                    {
                        "name": "refund_or_not",
                        "kind": "classify",
                        "model": "scorer",
                        "field": "text",
                        "labels": ["refund", "other"],
                        "confidence": {"threshold": 0.6},
                    }
                ],
            }
        )
        config = parse_config(text, filename="test.yaml")
        state = config.state.model_copy(update={"dir": str(tmp_path_factory.mktemp("state"))})
        with GatewayServer(config.model_copy(update={"state": state})) as server:
            yield server


def _call(gateway: GatewayServer, text: str) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/functions/refund_or_not", json={"text": text}, timeout=20)


def test_scores_come_back_by_label_with_the_top_one_as_confidence(gateway: GatewayServer) -> None:
    answer: dict[str, Any] = _call(gateway, "please refund me").json()
    assert answer["output"] == {
        "label": "refund",
        "scores": {"refund": pytest.approx(0.9), "other": pytest.approx(0.1)},
    }
    assert answer["confidence"] == pytest.approx(0.9)
    assert answer["needs_review"] is False
    unsure = _call(gateway, "hello").json()
    assert unsure["output"]["label"] == "refund"
    assert unsure["needs_review"] is True  # 0.55 < 0.6


def test_a_model_that_answers_the_wrong_number_of_scores_is_a_502(gateway: GatewayServer) -> None:
    reply = _call(gateway, "broken")
    assert reply.status_code == 502
    assert "1 values for 2 labels" in reply.json()["error"]["message"]
