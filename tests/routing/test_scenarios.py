"""Failure scenarios over real sockets: what the client receives, and what the upstreams saw.

Each test configures a gateway in front of fault-injecting upstreams on 127.0.0.1. Time-based
scenarios (breaker open times, recovery) are scaled down to seconds so the suite stays fast.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import GatewayFactory
from tests.support.gateway import GatewayServer

from interlace.testing import Fault, UpstreamServer

HELLO = [{"role": "user", "content": "one two three four five six"}]
ANSWER = "echo: one two three four five six"
TIGHT = "{connect: 1, first_byte: 0.5, first_token: 0.5, idle: 0.5, total: 5}"


@pytest.fixture(scope="module")
def up_a() -> Iterator[UpstreamServer]:
    with UpstreamServer("openai") as server:
        yield server


@pytest.fixture(scope="module")
def up_b() -> Iterator[UpstreamServer]:
    with UpstreamServer("openai") as server:
        yield server


@pytest.fixture(scope="module")
def up_claude() -> Iterator[UpstreamServer]:
    with UpstreamServer("anthropic") as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(up_a: UpstreamServer, up_b: UpstreamServer, up_claude: UpstreamServer) -> None:
    for server in (up_a, up_b, up_claude):
        server.reset()


def openai_dep(server: UpstreamServer | str, model: str = "echo", extra: str = "") -> str:
    url = server if isinstance(server, str) else server.url
    return (
        f'      - provider: openai\n        model: "{model}"\n        base_url: {url}/v1\n'
        f"        timeouts: {TIGHT}\n{extra}"
    )


def claude_dep(server: UpstreamServer, model: str = "echo", extra: str = "") -> str:
    return (
        f'      - provider: anthropic\n        model: "{model}"\n        base_url: {server.url}\n'
        f"        api_key: ${{KEY}}\n        timeouts: {TIGHT}\n{extra}"
    )


def model(alias: str, *deployments: str, settings: str = "") -> str:
    return f"  {alias}:\n{settings}    deployments:\n" + "".join(deployments)


def start(make_gateway: GatewayFactory, *models: str, extra: str = "") -> GatewayServer:
    return make_gateway("models:\n" + "".join(models) + extra, env={"KEY": "k"})


def chat(gateway: GatewayServer, alias: str, **extra: object) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions", json={"model": alias, "messages": HELLO, **extra}, timeout=30
    )


def stream(gateway: GatewayServer, alias: str) -> tuple[httpx.Headers, list[str]]:
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={"model": alias, "messages": HELLO, "stream": True, "stream_options": {"include_usage": True}},
        timeout=30,
    ) as response:
        assert response.status_code == 200, response.read()
        return response.headers, [line for line in response.iter_lines() if line]


def text_of(frames: list[str]) -> str:
    chunks = [json.loads(frame[6:]) for frame in frames if frame.startswith("data: {")]
    return "".join(
        (choice.get("delta") or {}).get("content") or ""
        for chunk in chunks
        for choice in chunk.get("choices") or ()
    )


def test_connection_refused_fails_over(make_gateway: GatewayFactory, up_a: UpstreamServer) -> None:
    gateway = start(
        make_gateway,
        model(
            "m", openai_dep("http://127.0.0.1:9"), openai_dep(up_a), settings="    strategy: round_robin\n"
        ),
    )
    for _ in range(4):
        reply = chat(gateway, "m")
        assert reply.status_code == 200
        assert reply.headers["x-interlace-deployment"] == "m/1"
    assert len(up_a.requests) == 4


def test_silent_deployment_is_not_retried(make_gateway: GatewayFactory, up_a: UpstreamServer) -> None:
    gateway = start(
        make_gateway,
        model(
            "m",
            openai_dep(up_a, "fault:slow_headers=3", "        weight: 1000\n"),
            openai_dep(up_a, "echo", "        weight: 0.001\n"),
        ),
    )
    began = time.monotonic()
    reply = chat(gateway, "m")
    assert reply.status_code == 200
    assert time.monotonic() - began < 2
    assert reply.headers["x-interlace-attempts"] == "2"
    slow = [r for r in up_a.requests if r.body["model"].startswith("fault:")]
    assert len(slow) == 1  # failed over at once, never retried


def test_429_waits_for_retry_after(make_gateway: GatewayFactory, up_a: UpstreamServer) -> None:
    gateway = start(make_gateway, model("m", openai_dep(up_a)))
    up_a.script.push(Fault(kind="status", status=429, retry_after=1), times=1)
    reply = chat(gateway, "m")
    assert reply.status_code == 200
    first, second = up_a.requests
    assert second.received_at - first.received_at >= 1.0  # never sooner than Retry-After
    assert reply.headers["x-interlace-attempts"] == "2"


def test_429_retry_after_beyond_the_budget_passes_through(
    make_gateway: GatewayFactory, up_a: UpstreamServer
) -> None:
    gateway = start(make_gateway, model("m", openai_dep(up_a)))
    up_a.script.push(Fault(kind="status", status=429, retry_after=120), times=1)
    reply = chat(gateway, "m")
    assert reply.status_code == 429
    assert reply.headers["retry-after"] == "120"
    assert len(up_a.requests) == 1


def test_5xx_burst_opens_the_breaker_and_half_open_recovers(
    make_gateway: GatewayFactory, up_a: UpstreamServer, up_b: UpstreamServer
) -> None:
    breaker = "    breaker: {min_requests: 3, failure_rate: 0.5, open_for: 1, window: 30}\n"
    settings = breaker + "    retry: {max_attempts: 1}\n    fallbacks: [backup]\n"
    gateway = start(
        make_gateway, model("primary", openai_dep(up_a), settings=settings), model("backup", openai_dep(up_b))
    )
    up_a.script.push(Fault(kind="status", status=503), times=3)
    for _ in range(3):
        reply = chat(gateway, "primary")
        assert reply.status_code == 200
        assert reply.headers["x-interlace-fallback"] == "true"
    # open: straight to the fallback, the primary sees nothing
    for _ in range(3):
        assert chat(gateway, "primary").headers["x-interlace-model"] == "backup"
    assert len(up_a.requests) == 3
    time.sleep(1.1)
    reply = chat(gateway, "primary")  # the half-open probe succeeds and closes the breaker
    assert reply.headers["x-interlace-model"] == "primary"
    assert chat(gateway, "primary").headers["x-interlace-model"] == "primary"


def test_streams_cut_mid_answer_open_the_breaker(
    make_gateway: GatewayFactory, up_a: UpstreamServer, up_b: UpstreamServer
) -> None:
    """A deployment whose streams break after their first token is unhealthy: the cuts count."""
    breaker = "    breaker: {min_requests: 4, failure_rate: 0.5, open_for: 30, window: 30}\n"
    settings = breaker + "    retry: {max_attempts: 1}\n    fallbacks: [backup]\n"
    gateway = start(
        make_gateway, model("primary", openai_dep(up_a), settings=settings), model("backup", openai_dep(up_b))
    )
    up_a.script.push(Fault(kind="cut_stream", chunks=3), times=100)
    for _ in range(2):  # each cut: a success at the first token, a failure at the cut
        _, frames = stream(gateway, "primary")
        assert json.loads(frames[-1][6:])["error"]["code"] == "stream_interrupted"
    seen = len(up_a.requests)
    headers, frames = stream(gateway, "primary")  # open: straight to the fallback
    assert frames[-1] == "data: [DONE]"
    assert headers["x-interlace-model"] == "backup"
    assert len(up_a.requests) == seen


def test_single_deployment_outage_pays_one_attempt_while_open(
    make_gateway: GatewayFactory, up_a: UpstreamServer
) -> None:
    settings = (
        "    breaker: {min_requests: 2, failure_rate: 0.5, open_for: 30}\n    retry: {max_attempts: 1}\n"
    )
    gateway = start(make_gateway, model("solo", openai_dep(up_a), settings=settings))
    up_a.script.push(Fault(kind="status", status=500), times=100)
    assert chat(gateway, "solo").status_code == 502
    assert chat(gateway, "solo").status_code == 502
    seen = len(up_a.requests)
    began = time.monotonic()
    for _ in range(5):
        reply = chat(gateway, "solo")
        assert reply.status_code == 502
        assert reply.json()["error"]["code"] == "deployments_unavailable"
        assert int(reply.headers["retry-after"]) >= 1
    assert len(up_a.requests) == seen  # no attempt while the breaker is open
    assert time.monotonic() - began < 1


def test_slow_first_token_fails_over(make_gateway: GatewayFactory, up_a: UpstreamServer) -> None:
    gateway = start(
        make_gateway,
        model(
            "m",
            openai_dep(up_a, "fault:stall_stream=1,seconds=5", "        weight: 1000\n"),
            openai_dep(up_a, "echo", "        weight: 0.001\n"),
        ),
    )
    began = time.monotonic()
    headers, frames = stream(gateway, "m")
    assert time.monotonic() - began < 3
    assert text_of(frames) == ANSWER
    assert frames[-1] == "data: [DONE]"
    assert headers["x-interlace-deployment"] == "m/1"


def test_cut_stream_is_completed_by_continuation(
    make_gateway: GatewayFactory, up_claude: UpstreamServer
) -> None:
    gateway = start(make_gateway, model("m", claude_dep(up_claude)))
    up_claude.script.push(Fault(kind="cut_stream", chunks=5), times=1)
    _, frames = stream(gateway, "m")
    assert text_of(frames) == ANSWER
    assert frames[-1] == "data: [DONE]"
    usage = json.loads(frames[-2][6:])["usage"]
    assert usage["completion_tokens"] > 0
    continuation = up_claude.requests[-1].body["messages"][-1]
    assert continuation["role"] == "assistant"
    assert ANSWER.startswith(
        continuation["content"][0]["text"]
        if isinstance(continuation["content"], list)
        else continuation["content"]
    )


def test_cut_stream_is_continued_on_a_vllm_style_deployment(
    make_gateway: GatewayFactory, up_a: UpstreamServer
) -> None:
    """An OpenAI-compatible deployment that declares ``supports_prefill`` is told to extend the final
    assistant message (vLLM's ``continue_final_message``), not to answer it with a new turn."""
    gateway = start(make_gateway, model("m", openai_dep(up_a, "echo", "        supports_prefill: true\n")))
    up_a.script.push(Fault(kind="cut_stream", chunks=5), times=1)
    _, frames = stream(gateway, "m")
    assert text_of(frames) == ANSWER
    assert frames[-1] == "data: [DONE]"
    first, continuation = up_a.requests[-2].body, up_a.requests[-1].body
    assert "continue_final_message" not in first  # an ordinary request is sent as the client sent it
    assert continuation["messages"][-1]["role"] == "assistant"
    assert continuation["continue_final_message"] is True
    assert continuation["add_generation_prompt"] is False


def test_cut_stream_without_prefill_support_names_the_cut(
    make_gateway: GatewayFactory, up_a: UpstreamServer
) -> None:
    gateway = start(make_gateway, model("m", openai_dep(up_a, "fault:cut_stream=4")))
    _, frames = stream(gateway, "m")
    assert "data: [DONE]" not in frames
    error = json.loads(frames[-1][6:])["error"]
    assert error["code"] == "stream_interrupted"
    assert "broke during the stream" in error["message"]
    assert "supports_prefill" in error["message"]


def test_stall_mid_stream_is_continued(make_gateway: GatewayFactory, up_claude: UpstreamServer) -> None:
    gateway = start(make_gateway, model("m", claude_dep(up_claude)))
    up_claude.script.push(Fault(kind="stall_stream", chunks=5, seconds=5), times=1)
    began = time.monotonic()
    _, frames = stream(gateway, "m")
    assert time.monotonic() - began < 4
    assert text_of(frames) == ANSWER
    assert frames[-1] == "data: [DONE]"


def test_error_event_after_first_chunk_is_continued(
    make_gateway: GatewayFactory, up_claude: UpstreamServer
) -> None:
    gateway = start(make_gateway, model("m", claude_dep(up_claude)))
    up_claude.script.push(Fault(kind="error_after_first_chunk"), times=1)
    _, frames = stream(gateway, "m")
    assert frames[-1] == "data: [DONE]"
    assert text_of(frames).startswith("echo:")


def test_continuation_on_a_fallback_that_rejects_prefill_reports_the_cut(
    make_gateway: GatewayFactory, up_a: UpstreamServer
) -> None:
    gateway = start(
        make_gateway,
        model("m", openai_dep(up_a, "fault:cut_stream=4"), settings="    fallbacks: [other]\n"),
        model("other", openai_dep(up_a, "fault:status=400", "        supports_prefill: true\n")),
    )
    _, frames = stream(gateway, "m")
    error = json.loads(frames[-1][6:])["error"]
    assert error["message"].startswith("Connection to deployment 'm/0' broke during the stream")
    assert "could not be continued" in error["message"]


def test_malformed_chunk_is_skipped(make_gateway: GatewayFactory, up_a: UpstreamServer) -> None:
    gateway = start(make_gateway, model("m", openai_dep(up_a)))
    up_a.script.push(Fault(kind="malformed", chunks=3), times=1)
    _, frames = stream(gateway, "m")
    assert text_of(frames) == ANSWER
    assert frames[-1] == "data: [DONE]"


def test_finished_stream_without_done_is_finalised_with_usage(
    make_gateway: GatewayFactory, up_a: UpstreamServer
) -> None:
    gateway = start(make_gateway, model("m", openai_dep(up_a)))
    # role chunk + 8 words + finish chunk, then the connection drops before usage and [DONE]
    # (paced, so the chunks are read before the connection drops, as on a real network)
    up_a.script.push(Fault(kind="cut_stream", chunks=10, chunk_interval_ms=20), times=1)
    _, frames = stream(gateway, "m")
    assert text_of(frames) == ANSWER
    assert frames[-1] == "data: [DONE]"
    assert json.loads(frames[-2][6:])["usage"]["completion_tokens"] > 0


def test_context_window_goes_to_the_context_chain_without_retry(
    make_gateway: GatewayFactory, up_a: UpstreamServer, up_b: UpstreamServer
) -> None:
    settings = "    context_fallbacks: [long]\n    fallbacks: [other]\n"
    gateway = start(
        make_gateway,
        model("short", openai_dep(up_a, "fault:code=context_length_exceeded"), settings=settings),
        model("long", openai_dep(up_b)),
        model("other", openai_dep(up_b)),
    )
    reply = chat(gateway, "short")
    assert reply.status_code == 200
    assert reply.headers["x-interlace-model"] == "long"
    assert len(up_a.requests) == 1


def test_content_policy_is_returned_unless_a_chain_is_configured(
    make_gateway: GatewayFactory, up_a: UpstreamServer, up_b: UpstreamServer
) -> None:
    gateway = start(
        make_gateway,
        model("strict", openai_dep(up_a, "fault:code=content_filter"), settings="    fallbacks: [lenient]\n"),
        model(
            "opted",
            openai_dep(up_a, "fault:code=content_filter"),
            settings="    content_policy_fallbacks: [lenient]\n",
        ),
        model("lenient", openai_dep(up_b)),
    )
    refused = chat(gateway, "strict")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "content_policy_violation"
    assert len(up_a.requests) == 1  # never retried, the ordinary fallback is not used
    assert chat(gateway, "opted").headers["x-interlace-model"] == "lenient"


def test_primary_down_then_back(
    make_gateway: GatewayFactory, up_a: UpstreamServer, up_b: UpstreamServer
) -> None:
    breaker = "    breaker: {min_requests: 2, failure_rate: 0.5, open_for: 1}\n"
    settings = breaker + "    retry: {max_attempts: 1}\n    fallbacks: [backup]\n"
    gateway = start(
        make_gateway, model("primary", openai_dep(up_a), settings=settings), model("backup", openai_dep(up_b))
    )
    up_a.script.push(Fault(kind="refuse"), times=1000)
    served = [chat(gateway, "primary").headers["x-interlace-model"] for _ in range(5)]
    assert served == ["backup"] * 5
    up_a.script.clear()  # the primary recovers
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if chat(gateway, "primary").headers["x-interlace-model"] == "primary":
            break
        time.sleep(0.1)
    else:
        pytest.fail("traffic did not return to the recovered primary")
    assert chat(gateway, "primary").headers["x-interlace-model"] == "primary"


def test_exhausted_chain_lists_every_attempt(make_gateway: GatewayFactory, up_a: UpstreamServer) -> None:
    gateway = start(
        make_gateway,
        model(
            "a",
            openai_dep(up_a, "fault:status=500"),
            settings="    retry: {max_attempts: 2, base_delay: 0}\n    fallbacks: [b]\n",
        ),
        model("b", openai_dep("http://127.0.0.1:9"), settings="    retry: {max_attempts: 1}\n"),
    )
    reply = chat(gateway, "a")
    assert reply.status_code == 502
    message = reply.json()["error"]["message"]
    assert message.startswith("All 3 attempts failed")
    assert message.count("a/0 (a)") == 2
    assert "b/0 (b)" in message


def test_bulkhead_full_answers_503_with_retry_after(
    make_gateway: GatewayFactory, up_a: UpstreamServer
) -> None:
    gateway = start(
        make_gateway,
        model("m", openai_dep(up_a, "fault:latency_ms=300", "        max_concurrency: 1\n")),
    )
    with httpx.Client(timeout=10) as client:
        import concurrent.futures  # noqa: PLC0415

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            replies = list(
                pool.map(
                    lambda _: client.post(
                        f"{gateway.url}/v1/chat/completions", json={"model": "m", "messages": HELLO}
                    ),
                    range(2),
                )
            )
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200, 503]
    busy = next(r for r in replies if r.status_code == 503)
    assert busy.headers["retry-after"]
    assert busy.json()["error"]["code"] == "capacity_exceeded"


def test_deadline_header_shortens_the_request(make_gateway: GatewayFactory, up_a: UpstreamServer) -> None:
    gateway = start(make_gateway, model("m", openai_dep(up_a, "fault:latency_ms=2000")))
    began = time.monotonic()
    reply = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "m", "messages": HELLO},
        headers={"x-interlace-timeout": "300ms"},
        timeout=10,
    )
    assert reply.status_code == 504
    assert time.monotonic() - began < 1.5
    bad = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "m", "messages": HELLO},
        headers={"x-interlace-timeout": "soon"},
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "x-interlace-timeout"


def test_required_tags_pick_the_matching_deployment(
    make_gateway: GatewayFactory, up_a: UpstreamServer, up_b: UpstreamServer
) -> None:
    gateway = start(
        make_gateway,
        model(
            "m",
            openai_dep(up_a, "echo", "        tags: {region: us}\n"),
            openai_dep(up_b, "echo", "        tags: {region: eu}\n"),
        ),
    )
    for _ in range(5):
        reply = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "m", "messages": HELLO},
            headers={"x-interlace-tags": "region=eu"},
        )
        assert reply.headers["x-interlace-deployment"] == "m/1"
    assert len(up_a.requests) == 0
    none = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "m", "messages": HELLO},
        headers={"x-interlace-tags": "region=mars"},
    )
    assert none.status_code == 502
    assert none.json()["error"]["code"] == "no_matching_deployment"


def test_canary_rule_is_sticky_per_user(
    make_gateway: GatewayFactory, up_a: UpstreamServer, up_b: UpstreamServer
) -> None:
    rules = (
        "routing:\n  rules:\n    - name: canary\n      match: {model: stable}\n"
        "      split: [{model: stable, weight: 80}, {model: candidate, weight: 20}]\n      sticky: user\n"
    )
    gateway = start(
        make_gateway, model("stable", openai_dep(up_a)), model("candidate", openai_dep(up_b)), extra=rules
    )
    arms: dict[str, set[str]] = {}
    for i in range(60):
        user = f"user-{i % 20}"
        reply = chat(gateway, "stable", user=user)
        assert reply.headers["x-interlace-rule"] == "canary"
        arms.setdefault(user, set()).add(reply.headers["x-interlace-model"])
    assert all(len(served) == 1 for served in arms.values())  # one user stays in one arm
    assert {m for served in arms.values() for m in served} == {"stable", "candidate"}
