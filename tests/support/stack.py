"""Real upstream servers and a gateway configured against them, shared by the upstream tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.gateway import GatewayServer
from tests.support.ports import refusing_port

from interlace.config import parse_config
from interlace.testing import UpstreamServer


@dataclass
class Stack:
    gateway: GatewayServer
    openai: UpstreamServer
    anthropic: UpstreamServer
    inference: UpstreamServer


def _deployment(provider: str, model: str, base_url: str, extra: str = "") -> str:
    return (
        f"      - provider: {provider}\n"
        f'        model: "{model}"\n'
        f"        base_url: {base_url}\n"
        f"        api_key: ${{UPSTREAM_KEY}}\n" + extra
    )


def stack_config(
    openai_url: str, anthropic_url: str, inference_url: str, state_dir: Path, refused: tuple[int, int]
) -> str:
    """The gateway's configuration; `refused` are two ports that refuse connections while it runs."""
    v1 = f"{openai_url}/v1"
    tight = "        timeouts: {connect: 1, first_byte: 0.5, idle: 0.5, total: 5}\n"
    models = {
        "gpt": _deployment("openai", "echo", v1),
        "azure": _deployment(
            "openai", "echo", openai_url, '        api_style: azure\n        api_version: "2024-10-21"\n'
        ),
        "ratelimited": _deployment("openai", "fault:status=429,retry_after=7", v1),
        "unavailable": _deployment("openai", "fault:status=503", v1),
        "slow": _deployment("openai", "fault:slow_headers=5", v1, tight),
        "cut": _deployment("openai", "fault:cut_stream=2", v1),
        "stall": _deployment("openai", "fault:stall_stream=2,seconds=5", v1, tight),
        "error-mid-stream": _deployment("openai", "fault:error_after_first_chunk", v1),
        "malformed": _deployment("openai", "fault:malformed", v1),
        "refused": _deployment("openai", "echo", f"http://127.0.0.1:{refused[0]}/v1", tight),
        "context": _deployment("openai", "fault:code=context_length_exceeded", v1),
        "failover": _deployment("openai", "fault:status=500", v1)
        + _deployment("openai", "echo", f"http://127.0.0.1:{refused[1]}/v1", tight)
        + _deployment("openai", "echo", v1),
        "claude": _deployment("anthropic", "echo", anthropic_url),
        "claude-cut": _deployment("anthropic", "fault:cut_stream=3", anthropic_url),
        "scorer": _deployment("inference_v2", "sum", inference_url),
    }
    lines = [f"state:\n  dir: {state_dir}\n", "models:\n"]
    for alias, deployments in models.items():
        # a Retry-After longer than the alias will wait for is passed straight to the client
        settings = "    retry: {max_retry_after: 5}\n" if alias == "ratelimited" else ""
        lines.append(f"  {alias}:\n{settings}    deployments:\n{deployments}")
    return "".join(lines)


def start_stack(state_dir: Path) -> Iterator[Stack]:
    with (
        UpstreamServer("openai") as openai_upstream,
        UpstreamServer("anthropic") as anthropic_upstream,
        UpstreamServer("inference_v2") as inference_upstream,
        refusing_port() as refused,
        refusing_port() as refused_in_failover,
    ):
        yaml = stack_config(
            openai_upstream.url,
            anthropic_upstream.url,
            inference_upstream.url,
            state_dir,
            (refused, refused_in_failover),
        )
        config = parse_config(yaml, filename="stack.yaml", environ={"UPSTREAM_KEY": "sk-upstream"})
        with GatewayServer(config) as gateway:
            yield Stack(gateway, openai_upstream, anthropic_upstream, inference_upstream)
