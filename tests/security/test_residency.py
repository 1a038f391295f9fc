"""Residency rules keep requests on allowed deployments: first attempt, retries, fallbacks, shadows.

The policy is exercised through the gate (tenants), the router (fallbacks, retries, traffic rules)
and a real gateway over HTTP with the OpenAI SDK (the global rule, 403 answers).
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

import openai
import pytest
from rich.console import Console
from tests.conftest import GatewayFactory

from interlace.cli.explain import explain_request
from interlace.config import parse_config
from interlace.config.schema import Config
from interlace.core.errors import PermissionDenied, UpstreamError
from interlace.core.operations import ChatRequest
from interlace.core.principal import Principal
from interlace.resilience.breaker import Breakers
from interlace.resilience.breaker_store import MemoryBreakerStore
from interlace.routing.context import RouteContext
from interlace.routing.deployment import ModelRoute
from interlace.routing.router import Router
from interlace.routing.rules import RequestFacts, TrafficRules
from interlace.routing.shadow import PrimaryOutcome, ShadowMirror, ShadowRecord
from interlace.runtime import build_routes
from interlace.security.gate import Call, Gate
from interlace.security.residency import ResidencyPolicy, ResidencyRule

if TYPE_CHECKING:
    from interlace.providers.local import SentenceEncoder

HELLO = [{"role": "user", "content": "hello there"}]

MODELS = """
models:
  gpt-4o:
    retry: {max_attempts: 3, base_delay: 0}
    deployments:
      - {provider: fake, model: echo, region: us-east-1, provider_type: external}
      - {provider: fake, model: echo, provider_type: external, tags: {region: eu-west-1}}
  us-only:
    fallbacks: [eu-private]
    deployments:
      - {provider: fake, model: echo, region: us-east-1, provider_type: external}
  eu-private:
    deployments:
      - {provider: fake, model: echo, region: eu-central-1, provider_type: private}
  us-orphan:
    deployments:
      - {provider: fake, model: echo, region: us-east-1, provider_type: external}
  eu-flaky:
    retry: {max_attempts: 3, base_delay: 0}
    deployments:
      - {provider: fake, model: echo, region: eu-west-1, options: {fault: server_error}}
      - {provider: fake, model: echo, region: us-east-1, provider_type: external}
"""

TENANTS = """
tenants:
  acme:
    residency: {regions: [eu-west-1, eu-central-1]}
  vault:
    residency: {provider_types: [private, local]}
"""


def config(extra: str = "") -> Config:
    return parse_config(MODELS + TENANTS + extra, filename="test.yaml", environ={})


def _no_encoder(model: str) -> SentenceEncoder:
    pytest.fail(f"no local model expected, got {model}")


def routes_of(cfg: Config) -> dict[str, ModelRoute]:
    return build_routes(cfg, rng=random.Random(7), encoders=_no_encoder)


def router_of(cfg: Config, routes: dict[str, ModelRoute]) -> Router:
    rng = random.Random(7)
    return Router(
        routes,
        breakers=Breakers(MemoryBreakerStore()),
        rules=TrafficRules(cfg.routing.rules, rng=rng),
        rng=rng,
    )


def tenant(name: str | None) -> Principal:
    return Principal(kind="key", id=f"ik_{name}", tenant=name)


def chat_request(model: str) -> ChatRequest:
    return ChatRequest(model=model, body={"model": model, "messages": HELLO})


async def admit(gate: Gate, principal: Principal, model: str) -> RouteContext:
    ctx = RouteContext(principal=principal)
    await gate.admit(Call(principal, "chat", chat_request(model), ctx))
    return ctx


def test_deployment_facts_have_defaults_and_come_from_tags() -> None:
    cfg = parse_config(
        """
models:
  m:
    deployments:
      - {provider: fake, model: echo}
      - {provider: openai, model: x, tags: {region: eu-west-1}}
      - {provider: openai, model: x, region: eu-north-1, provider_type: private, tags: {region: eu}}
""",
        environ={},
    )
    local, external, private = cfg.models["m"].deployments
    assert (local.region, local.provider_type) == (None, "local")
    assert (external.region, external.provider_type) == ("eu-west-1", "external")
    assert (private.region, private.provider_type) == ("eu-north-1", "private")


def test_an_empty_list_is_a_config_error_at_its_line() -> None:
    with pytest.raises(Exception, match=r"test\.yaml:3: 'tenants\.acme\.residency\.regions': an empty list"):
        parse_config("tenants:\n  acme:\n    residency: {regions: []}\n", filename="test.yaml", environ={})


def test_no_rule_configured_adds_no_policy_and_sets_nothing() -> None:
    cfg = parse_config(MODELS, environ={})
    assert ResidencyPolicy.from_config(cfg, routes_of(cfg)) is None
    ctx = asyncio.run(admit(Gate(), tenant("acme"), "gpt-4o"))
    assert ctx.allow is None
    assert ctx.decisions == []


def test_tenant_rule_restricts_the_context_and_is_audited() -> None:
    cfg = config()
    policy = ResidencyPolicy.from_config(cfg, routes_of(cfg))
    assert policy is not None
    gate = Gate([policy])
    ctx = asyncio.run(admit(gate, tenant("acme"), "gpt-4o"))
    assert isinstance(ctx.allow, ResidencyRule)
    assert ctx.decisions == ["residency:acme"]
    # a tenant without its own rule and no global rule: untouched
    other = asyncio.run(admit(gate, tenant("other"), "gpt-4o"))
    assert other.allow is None
    assert other.decisions == []


def test_no_allowed_deployment_is_a_403_naming_the_rule_and_each_exclusion() -> None:
    cfg = config()
    policy = ResidencyPolicy.from_config(cfg, routes_of(cfg))
    assert policy is not None
    ctx = RouteContext(principal=tenant("acme"))
    with pytest.raises(PermissionDenied) as caught:
        asyncio.run(Gate([policy]).admit(Call(ctx.principal, "chat", chat_request("us-orphan"), ctx)))
    error = caught.value
    assert error.status == 403
    assert error.code == "residency_denied"
    assert error.message == (
        "tenant 'acme' residency: regions [eu-central-1, eu-west-1] — no deployment of model "
        "'us-orphan' is allowed (us-orphan/0: region us-east-1)."
    )
    assert ctx.decisions == ["residency:denied acme us-orphan"]


def test_provider_type_rule_names_the_type() -> None:
    cfg = config()
    policy = ResidencyPolicy.from_config(cfg, routes_of(cfg))
    assert policy is not None
    with pytest.raises(PermissionDenied, match=r"us-orphan/0: provider type external\)"):
        asyncio.run(admit(Gate([policy]), tenant("vault"), "us-orphan"))


def test_an_allowed_fallback_admits_the_request() -> None:
    cfg = config()
    policy = ResidencyPolicy.from_config(cfg, routes_of(cfg))
    assert policy is not None
    ctx = asyncio.run(admit(Gate([policy]), tenant("acme"), "us-only"))
    assert ctx.decisions == ["residency:acme"]


def test_the_global_rule_applies_unless_the_tenant_has_its_own() -> None:
    cfg = config("residency: {provider_types: [local]}\n")
    policy = ResidencyPolicy.from_config(cfg, routes_of(cfg))
    assert policy is not None
    assert policy.rule_for(None) is policy.rule_for("nobody")
    rule = policy.rule_for(None)
    assert rule is not None
    assert rule.name == "default"
    acme = policy.rule_for("acme")
    assert acme is not None
    assert acme.name == "acme"
    with pytest.raises(PermissionDenied, match=r"^global residency: provider types \[local\] — "):
        asyncio.run(admit(Gate([policy]), tenant(None), "gpt-4o"))


def rule(cfg: Config, name: str) -> ResidencyRule:
    policy = ResidencyPolicy.from_config(cfg, routes_of(cfg))
    assert policy is not None
    found = policy.rule_for(name)
    assert found is not None
    return found


def test_router_only_calls_allowed_deployments() -> None:
    cfg = config()
    routes = routes_of(cfg)
    router = router_of(cfg, routes)

    async def serve() -> set[str]:
        served = set()
        for _ in range(12):
            ctx = RouteContext(allow=rule(cfg, "acme"))
            await router.chat(chat_request("gpt-4o"), ctx)
            served.add(ctx.deployment or "")
        return served

    assert asyncio.run(serve()) == {"gpt-4o/1"}


def test_retries_never_reach_an_excluded_deployment() -> None:
    cfg = config()
    router = router_of(cfg, routes_of(cfg))
    ctx = RouteContext(allow=rule(cfg, "acme"))
    with pytest.raises(UpstreamError):
        asyncio.run(router.chat(chat_request("eu-flaky"), ctx))
    assert [a.deployment for a in ctx.attempts] == ["eu-flaky/0"] * 3
    # without the rule the healthy US deployment answers
    open_ctx = RouteContext()
    asyncio.run(router_of(cfg, routes_of(cfg)).chat(chat_request("eu-flaky"), open_ctx))
    assert open_ctx.deployment == "eu-flaky/1"


def test_an_excluded_alias_goes_straight_to_its_allowed_fallback() -> None:
    cfg = config()
    router = router_of(cfg, routes_of(cfg))
    ctx = RouteContext(allow=rule(cfg, "acme"))
    asyncio.run(router.chat(chat_request("us-only"), ctx))
    assert (ctx.served_model, ctx.deployment, ctx.fallback) == ("eu-private", "eu-private/0", True)
    assert [a.deployment for a in ctx.attempts] == ["eu-private/0"]


def test_a_traffic_rule_to_an_excluded_model_is_refused_by_the_router() -> None:
    cfg = config("routing:\n  rules:\n    - {name: to-us, match: {model: gpt-4o}, model: us-orphan}\n")
    router = router_of(cfg, routes_of(cfg))
    ctx = RouteContext(allow=rule(cfg, "acme"))
    with pytest.raises(
        PermissionDenied, match=r"no deployment of model 'gpt-4o' .*us-orphan/0: region us-east-1"
    ):
        asyncio.run(router.chat(chat_request("gpt-4o"), ctx))
    assert ctx.attempts == []


class _Sink:
    def __init__(self) -> None:
        self.records: list[ShadowRecord] = []

    async def record(self, record: ShadowRecord) -> None:
        self.records.append(record)


def test_a_shadow_to_an_excluded_candidate_is_skipped() -> None:
    shadowed = (
        "  shadowed:\n    shadow: {model: us-orphan, sample: 1.0}\n"
        "    deployments:\n      - {provider: fake, model: echo, region: eu-west-1}\n"
    )
    cfg = parse_config(MODELS + shadowed + TENANTS, environ={})
    routes = routes_of(cfg)
    router = router_of(cfg, routes)

    async def mirror(allow: ResidencyRule | None) -> tuple[bool, ShadowMirror, _Sink]:
        sink = _Sink()
        shadow = ShadowMirror(routes, router.attempts, rng=random.Random(1), recorder=sink)
        ctx = RouteContext(allow=allow)
        answer: dict[str, Any] = await router.chat(chat_request("shadowed"), ctx)
        primary = PrimaryOutcome.from_answer(ctx, answer, 0.01)
        started = shadow.maybe_mirror(chat_request("shadowed"), primary)
        while shadow.in_flight:  # the background call and its record
            await asyncio.sleep(0.005)
        await shadow.aclose()
        return started, shadow, sink

    started, shadow, sink = asyncio.run(mirror(rule(cfg, "acme")))
    assert not started
    assert (shadow.skipped, shadow.mirrored, sink.records) == (1, 0, [])
    started, shadow, sink = asyncio.run(mirror(None))
    assert started
    assert [r.shadow.deployment for r in sink.records] == ["us-orphan/0"]


GATEWAY = """
residency: {regions: [eu-west-1]}
models:
  gpt-4o:
    deployments:
      - {provider: fake, model: echo, region: us-east-1}
      - {provider: fake, model: echo, region: eu-west-1}
  us-only:
    deployments:
      - {provider: fake, model: echo, region: us-east-1}
"""


def test_gateway_serves_from_allowed_deployments_and_answers_403_otherwise(
    make_gateway: GatewayFactory,
) -> None:
    gateway = make_gateway(GATEWAY)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)
    for _ in range(6):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)  # type: ignore[arg-type]
        assert raw.headers["x-interlace-deployment"] == "gpt-4o/1"
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model="us-only", messages=HELLO)  # type: ignore[arg-type]
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == "residency_denied"
    assert body["param"] == "model"
    assert body["message"] == (
        "global residency: regions [eu-west-1] — no deployment of model 'us-only' is allowed "
        "(us-only/0: region us-east-1)."
    )


def test_route_explain_shows_residency_exclusions() -> None:
    cfg = config()
    facts = RequestFacts(model="gpt-4o", headers={}, api_key=None, tenant="acme", user=None, metadata={})
    console = Console(width=300, record=True)
    explain_request(cfg, facts, tags=None, console=console)
    text = console.export_text()
    assert "tenant 'acme' residency: regions [eu-central-1, eu-west-1]" in text
    rows = {line.split("│")[2].strip(): line for line in text.splitlines() if "│ gpt-4o/" in line}
    assert "NO (region us-east-1) — skipped" in rows["gpt-4o/0"]
    assert "│ allowed (eu-west-1, external)" in rows["gpt-4o/1"]


RECOVERY = """
models:
  stream:
    strategy: round_robin
    deployments:
      - {provider: fake, model: echo, region: eu-west-1, supports_prefill: true,
         options: {fault: cut_stream, chunk_interval_ms: 1}}
      - {provider: fake, model: echo, region: us-east-1, supports_prefill: true}
      - {provider: fake, model: echo, region: eu-west-1, supports_prefill: true}
tenants:
  acme:
    residency: {regions: [eu-west-1]}
"""


def test_a_cut_stream_is_continued_only_on_an_allowed_deployment() -> None:
    cfg = parse_config(RECOVERY, environ={})
    routes = routes_of(cfg)
    router = router_of(cfg, routes)
    words = [{"role": "user", "content": "a b c d e f g h"}]
    request = ChatRequest(model="stream", body={"model": "stream", "stream": True, "messages": words})

    async def stream() -> list[str]:
        served = []
        for _ in range(3):  # round robin: each deployment goes first once
            ctx = RouteContext(allow=rule(cfg, "acme"))
            chunks = await router.stream_chat(request, ctx)
            async for _chunk in chunks:
                pass
            served += [a.deployment for a in ctx.attempts]
        return served

    served = asyncio.run(stream())
    # every stream that started on stream/0 was cut there and continued — never on the US deployment
    assert "stream/1" not in served
    assert served.count("stream/0") >= 1
    assert len(served) == 3 + served.count("stream/0"), served


def test_an_excluded_last_fallback_does_not_hide_the_real_failure() -> None:
    flaky = (
        "  eu-down:\n    retry: {max_attempts: 1}\n    fallbacks: [us-orphan]\n"
        "    deployments:\n"
        "      - {provider: fake, model: echo, region: eu-west-1, options: {fault: server_error}}\n"
    )
    cfg = parse_config(MODELS + flaky + TENANTS, environ={})
    router = router_of(cfg, routes_of(cfg))
    ctx = RouteContext(allow=rule(cfg, "acme"))
    with pytest.raises(UpstreamError) as caught:
        asyncio.run(router.chat(chat_request("eu-down"), ctx))
    assert caught.value.code == "upstream_error"
    assert "(fake) failed with 500" in caught.value.message
    assert [a.deployment for a in ctx.attempts] == ["eu-down/0"]
