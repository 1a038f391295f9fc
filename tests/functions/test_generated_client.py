"""A client generated from the served ``/openapi.json`` calls a function and gets a typed object back."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.gateway import GatewayServer

from interlace.config import parse_config
from interlace.testing import OpenAIUpstream
from interlace.testing.server import UpstreamServer

OUTPUT = {
    "type": "object",
    "required": ["summary", "sentiment", "tags"],
    "properties": {
        "summary": {"type": "string"},
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}},
    },
    "$defs": {"Tag": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
}
INPUT = {
    "type": "object",
    "required": ["text"],
    "properties": {"text": {"type": "string"}, "language": {"type": "string", "default": "en"}},
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayServer, UpstreamServer]]:
    with UpstreamServer("openai") as upstream:
        text = json.dumps(
            {
                "models": {
                    "gpt": {
                        "deployments": [
                            {"provider": "openai", "model": "m", "base_url": f"{upstream.url}/v1"}
                        ]
                    }
                },
                "functions": {
                    "summarise_review": {
                        "version": "1.2",
                        "model": "gpt",
                        "input_schema": INPUT,
                        "output_schema": OUTPUT,
                        "prompt": "Summarise ({{ language | default('en') }}): {{ text }}",
                    }
                },
            }
        )
        config = parse_config(text, filename="test.yaml")
        state = config.state.model_copy(update={"dir": str(tmp_path_factory.mktemp("state"))})
        with GatewayServer(config.model_copy(update={"state": state})) as gateway:
            yield gateway, upstream


def _generate(document: dict[str, Any], where: Path) -> Any:
    spec = where / "openapi.json"
    spec.write_text(json.dumps(document))
    target = where / "generated_client.py"
    codegen = Path(sys.executable).with_name("datamodel-codegen")
    subprocess.run(
        [
            str(codegen),
            "--input",
            str(spec),
            "--input-file-type",
            "openapi",
            "--output-model-type",
            "pydantic_v2.BaseModel",
            "--output",
            str(target),
        ],
        check=True,
        capture_output=True,
    )
    module_spec = importlib.util.spec_from_file_location("generated_client", target)
    assert module_spec is not None
    assert module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["generated_client"] = module  # pydantic resolves the annotations in its module
    try:
        module_spec.loader.exec_module(module)
    finally:
        del sys.modules["generated_client"]
    return module


@pytest.mark.slow
def test_a_generated_client_gets_a_typed_answer(
    served: tuple[GatewayServer, UpstreamServer], tmp_path: Path
) -> None:
    gateway, upstream = served
    document = httpx.get(f"{gateway.url}/openapi.json").json()
    operation = document["paths"]["/v1/functions/summarise_review"]["post"]
    assert operation["operationId"] == "callFunction_summarise_review"
    assert "/v1/functions/summarise_review/versions/1.2" in document["paths"]
    schemas = document["components"]["schemas"]
    assert schemas["SummariseReviewV1_2Output"]["properties"]["tags"]["items"] == {
        "$ref": "#/components/schemas/SummariseReviewV1_2_Tag"
    }

    client = _generate(document, tmp_path)
    request = client.SummariseReviewV12Input(text="Great blender, a bit loud.")
    app = upstream.app
    assert isinstance(app, OpenAIUpstream)
    app.replies.push(
        json.dumps({"summary": "Good but loud", "sentiment": "positive", "tags": [{"name": "noise"}]})
    )
    reply = httpx.post(
        f"{gateway.url}/v1/functions/summarise_review",
        content=request.model_dump_json(exclude_none=True),
        headers={"content-type": "application/json"},
        timeout=20,
    )
    assert reply.status_code == 200, reply.text
    typed = client.SummariseReviewV12Response.model_validate(reply.json())
    assert isinstance(typed.output, client.SummariseReviewV12Output)
    assert typed.output.sentiment.value == "positive"
    assert typed.output.tags[0].name == "noise"
    assert typed.function == "summarise_review"
    assert typed.usage.total_tokens > 0
