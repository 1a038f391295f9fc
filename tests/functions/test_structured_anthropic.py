"""An llm function on an Anthropic deployment: the schema travels as an instruction, answers are checked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.support.gateway import GatewayServer

from interlace.config import parse_config
from interlace.testing import AnthropicUpstream
from interlace.testing.server import UpstreamServer

SCHEMA = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string", "minLength": 2}}}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayServer, UpstreamServer]]:
    with UpstreamServer("anthropic") as upstream:
        text = json.dumps(
            {
                "models": {
                    "claude": {
                        "deployments": [
                            {
                                "provider": "anthropic",
                                "model": "claude-x",
                                "base_url": upstream.url,
                                "api_key": "${ANTHROPIC_KEY}",
                            }
                        ],
                        "retry": {"max_attempts": 1},
                    }
                },
                "functions": {
                    "where": {
                        "model": "claude",
                        "prompt": "Which city is this about? {{ text }}",
                        "output_schema": SCHEMA,
                        "generation": {"max_tokens": 64, "temperature": 0},
                        "max_repairs": 1,
                    }
                },
            }
        )
        config = parse_config(text, filename="test.yaml", environ={"ANTHROPIC_KEY": "sk-ant-test"})
        state = config.state.model_copy(update={"dir": str(tmp_path_factory.mktemp("state"))})
        with GatewayServer(config.model_copy(update={"state": state})) as gateway:
            yield gateway, upstream


def test_invalid_then_valid_on_anthropic(served: tuple[GatewayServer, UpstreamServer]) -> None:
    gateway, upstream = served
    app = upstream.app
    assert isinstance(app, AnthropicUpstream)
    app.replies.push('{"city": "P"}')
    app.replies.push('```json\n{"city": "Paris"}\n```')
    reply = httpx.post(f"{gateway.url}/v1/functions/where", json={"text": "the Eiffel tower"}, timeout=20)
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    assert (answer["output"], answer["repairs"]) == ({"city": "Paris"}, 1)
    first, second = (r.body for r in upstream.requests)
    # the Anthropic adapter turns response_format json_schema into an instruction carrying the schema
    assert "minLength" in json.dumps(first["system"])
    assert first["max_tokens"] == 64
    reask = second["messages"][-1]["content"]
    assert "/city" in json.dumps(reask)
    assert "is too short" in json.dumps(reask)
