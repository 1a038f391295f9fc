"""Shared fixtures: real gateways on 127.0.0.1 built from YAML, run in background threads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from tests.support.gateway import GatewayServer
from tests.support.stack import Stack, start_stack

from interlace.config import embedded_default, parse_config
from interlace.config.schema import Config

GatewayFactory = Callable[..., GatewayServer]


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[GatewayFactory]:
    """Start a gateway from YAML text (``${VAR}`` resolved from ``env``); stopped after the test."""
    with ExitStack() as stack:

        def factory(yaml_text: str, env: dict[str, str] | None = None) -> GatewayServer:
            config = parse_config(yaml_text, filename="test.yaml", environ=env or {})
            state = config.state.model_copy(update={"dir": str(tmp_path / "state")})
            config = config.model_copy(update={"state": state})
            return stack.enter_context(GatewayServer(config))

        yield factory


def fake_models_yaml(**options: dict[str, object]) -> str:
    """A config with one fake deployment per alias, each with the given options."""
    lines = ["models:"]
    for alias, opts in options.items():
        lines += [f"  {alias}:", "    deployments:", "      - provider: fake", "        model: echo"]
        if opts:
            lines.append("        options: {" + ", ".join(f"{k}: {v}" for k, v in opts.items()) + "}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def local_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """The embedded default with the real local model loaded, shared by the whole session."""
    config: Config = embedded_default()
    state = config.state.model_copy(update={"dir": str(tmp_path_factory.mktemp("state"))})
    with GatewayServer(config.model_copy(update={"state": state})) as server:
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A gateway in front of real OpenAI, Anthropic and OIP v2 upstreams on 127.0.0.1."""
    yield from start_stack(tmp_path_factory.mktemp("state"))


@pytest.fixture(autouse=True)
def _reset_stack_journals(request: pytest.FixtureRequest) -> None:
    if "stack" in request.fixturenames:
        stack: Stack = request.getfixturevalue("stack")
        for upstream in (stack.openai, stack.anthropic, stack.inference):
            upstream.reset()
