"""The schema of ``interlace.yaml``: one typed model per feature, unknown keys are errors.

Example::

    server:
      host: 127.0.0.1
      port: 8700
    auth:
      master_key: ${INTERLACE_MASTER_KEY}
    models:
      gpt-4o-mini:
        deployments:
          - provider: openai
            model: gpt-4o-mini
            base_url: https://api.openai.com/v1
            api_key: ${OPENAI_API_KEY}
            timeouts: {connect: 5, first_byte: 30, total: 600}
            tags: {region: eu}
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from interlace.config._base import Strict as _Strict
from interlace.config.audit import AuditConfig
from interlace.config.auth import AuthConfig
from interlace.config.flows import FlowConfig, check_flow_names
from interlace.config.functions import FunctionsConfig
from interlace.config.jobs import JobsConfig
from interlace.config.pii import PiiConfig
from interlace.config.quotas import QuotasConfig, RateLimits
from interlace.config.residency import ProviderType, ResidencyConfig
from interlace.config.tenants import TenantConfig
from interlace.config.tls import ServerTLSConfig, UpstreamTLSConfig

__all__ = [
    "AuthConfig",
    "BreakerConfig",
    "Config",
    "DeploymentConfig",
    "LocalModelConfig",
    "LogsConfig",
    "MetricsConfig",
    "ModelConfig",
    "ObservabilityConfig",
    "Price",
    "RedisConfig",
    "RetryConfig",
    "RoutingConfig",
    "RuleMatch",
    "ServerConfig",
    "ShadowConfig",
    "SplitArm",
    "StateConfig",
    "Strategy",
    "TelemetryConfig",
    "Timeouts",
    "TrafficRule",
]

ProviderKind = Literal["openai", "anthropic", "inference_v2", "local", "fake"]

_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


class Timeouts(_Strict):
    """Per-deployment deadlines, in seconds."""

    connect: float = Field(5.0, gt=0, description="TCP + TLS connect.")
    first_byte: float = Field(60.0, gt=0, description="From sending the request to the response headers.")
    first_token: float = Field(
        60.0, gt=0, description="From sending a streamed request to its first content chunk."
    )
    idle: float = Field(60.0, gt=0, description="Longest silence between two chunks of a stream.")
    total: float = Field(600.0, gt=0, description="The whole attempt, including the body or stream.")


class Price(_Strict):
    """USD per million tokens."""

    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)
    cached_input: float | None = Field(None, ge=0, description="Defaults to the input price.")
    reasoning: float | None = Field(None, ge=0, description="Defaults to the output price.")


class DeploymentConfig(_Strict):
    """One upstream that serves a model alias."""

    provider: ProviderKind
    model: str = Field(description="The model name the upstream knows.")
    base_url: str | None = Field(None, description="The upstream's API root, e.g. https://api.openai.com/v1.")
    api_key: SecretStr | None = Field(None, description="Always a ${ENV_VAR} reference, never plain text.")
    api_style: Literal["openai", "azure"] = Field(
        "openai", description="'azure' uses deployment paths, ?api-version= and the api-key header."
    )
    api_version: str | None = Field(None, description="Azure OpenAI api-version.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers sent upstream.")
    weight: float = Field(1.0, gt=0)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_connections: int = Field(256, ge=1, description="Connection pool size to this upstream.")
    tags: dict[str, str] = Field(default_factory=dict, description="e.g. {region: eu, tier: premium}.")
    price: Price = Field(default_factory=Price, description="For cost-aware routing and usage cost.")
    max_concurrency: int | None = Field(
        None, ge=1, description="Bulkhead: requests in flight to this deployment at once (default unbounded)."
    )
    max_queue: int = Field(
        0, ge=0, description="Bulkhead: requests that may wait for a slot; beyond, fail over."
    )
    supports_prefill: bool | None = Field(
        None,
        description="Can continue an assistant message given as the last turn (mid-stream recovery). "
        "Default: true for anthropic, false otherwise.",
    )
    options: dict[str, float | int | str | bool] = Field(
        default_factory=dict, description="Provider-specific settings (fake: latency, faults)."
    )
    # --- residency and TLS (config.residency, config.tls) ---
    region: str | None = Field(
        None, description="Where the upstream runs (eu-west-1), for residency rules. Default: tags.region."
    )
    provider_type: ProviderType = Field(
        "external",
        description="external (a third party's API), private (self-hosted) or local (in process). "
        "Default: local for local and fake providers, external otherwise.",
    )
    tls: UpstreamTLSConfig = Field(
        default_factory=UpstreamTLSConfig,
        description="Upstream certificate verification (on by default), private CA, client certificate.",
    )

    @model_validator(mode="before")
    @classmethod
    def _placement_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if data.get("region") is None and isinstance(data.get("tags"), dict):
                region = data["tags"].get("region")
                data = {**data, "region": region} if isinstance(region, str) else data
            if "provider_type" not in data and data.get("provider") in {"local", "fake"}:
                data = {**data, "provider_type": "local"}
        return data

    # --- end residency and TLS ---

    @model_validator(mode="after")
    def _needs_base_url(self) -> DeploymentConfig:
        if self.provider == "inference_v2" and not self.base_url:
            msg = f"provider '{self.provider}' needs base_url (e.g. http://127.0.0.1:8080)"
            raise ValueError(msg)
        if self.api_style == "azure" and not (self.base_url and self.api_version):
            msg = "api_style 'azure' needs base_url (https://NAME.openai.azure.com) and api_version"
            raise ValueError(msg)
        return self


class RetryConfig(_Strict):
    """Retries within one model alias: exponential backoff with full jitter, never before Retry-After."""

    max_attempts: int = Field(
        3, ge=1, le=20, description="Attempts across the alias's deployments, first included."
    )
    base_delay: float = Field(
        0.25, ge=0, description="Seconds; the n-th retry waits up to base_delay * 2**n."
    )
    max_delay: float = Field(8.0, ge=0, description="Cap of one backoff, in seconds.")
    max_retry_after: float = Field(
        30.0, ge=0, description="A Retry-After longer than this is not waited for: fail over or give up."
    )


class BreakerConfig(_Strict):
    """A circuit breaker per deployment, on the failure rate over a sliding window."""

    enabled: bool = True
    window: float = Field(30.0, gt=0, description="Seconds of outcomes the failure rate is computed over.")
    min_requests: int = Field(
        5, ge=1, description="Outcomes in the window before the rate can open the breaker."
    )
    failure_rate: float = Field(0.5, gt=0, le=1, description="Open at or above this share of failures.")
    open_for: float = Field(30.0, gt=0, description="Seconds open before half-open probes are let through.")
    half_open_probes: int = Field(1, ge=1, description="Probes allowed at once while half-open.")


class ShadowConfig(_Strict):
    """Mirror a sample of this alias's requests to a candidate model; the client never waits for it."""

    model: str = Field(description="The candidate model alias.")
    sample: float = Field(0.1, ge=0, le=1, description="Share of requests mirrored.")


Strategy = Literal["weighted", "round_robin", "least_in_flight", "lowest_latency", "cost"]


class ModelConfig(_Strict):
    """A model alias clients ask for, served by one or more deployments."""

    deployments: list[DeploymentConfig] = Field(min_length=1)
    description: str | None = None
    strategy: Strategy = Field("weighted", description="How a deployment is chosen among the healthy ones.")
    retry: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    fallbacks: list[str] = Field(
        default_factory=list, description="Aliases tried in order when this one fails."
    )
    context_fallbacks: list[str] = Field(
        default_factory=list, description="Aliases tried when the input exceeds the context window."
    )
    content_policy_fallbacks: list[str] = Field(
        default_factory=list, description="Aliases tried after a content-policy refusal (opt-in)."
    )
    shadow: ShadowConfig | None = None
    limits: RateLimits | None = Field(
        None, description="Requests and tokens per minute of this alias, across every caller."
    )


class SplitArm(_Strict):
    model: str
    weight: float = Field(gt=0)


class RuleMatch(_Strict):
    """All given conditions must hold."""

    model: str | None = Field(None, description="The model alias the client asked for.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Header name → exact value ('*': present)."
    )
    metadata: dict[str, str] = Field(default_factory=dict, description="Request metadata key → exact value.")
    api_keys: list[str] = Field(default_factory=list, description="Key ids or names the rule applies to.")
    tenants: list[str] = Field(default_factory=list)


class TrafficRule(_Strict):
    """Send matching requests to a model, or split them over several (A/B, canary), stickily."""

    name: str
    match: RuleMatch = Field(default_factory=RuleMatch)
    model: str | None = Field(None, description="Route to this alias.")
    split: list[SplitArm] = Field(default_factory=list, description="Weighted arms; weights are relative.")
    sticky: str = Field(
        "user",
        description="What keeps one caller in one arm: 'user' (body.user), 'key' (API key), "
        "'header:NAME', 'metadata:NAME'. Without a value the request is assigned at random.",
    )
    require_tags: dict[str, str] = Field(
        default_factory=dict, description="Only deployments with these tags."
    )

    @model_validator(mode="after")
    def _one_target(self) -> TrafficRule:
        if (self.model is None) == (not self.split):
            msg = f"rule '{self.name}' needs exactly one of model: or split:"
            raise ValueError(msg)
        return self


class RoutingConfig(_Strict):
    rules: list[TrafficRule] = Field(default_factory=list, description="First matching rule wins.")
    deadline_header: str = Field(
        "x-interlace-timeout",
        description="Clients may shorten the total deadline with this header (seconds).",
    )
    max_deadline: float = Field(
        600.0, gt=0, description="Upper bound of a request's total deadline, seconds."
    )
    tags_header: str = Field(
        "x-interlace-tags", description="Clients may require deployment tags: 'region=eu,tier=gold'."
    )


class RedisConfig(_Strict):
    url: str = Field("redis://127.0.0.1:6379/0", description="Shared state across gateway instances.")
    prefix: str = Field("interlace", description="Key prefix, so several gateways can share one Redis.")


class LocalModelConfig(_Strict):
    """The in-process local model (embeddings and zero-shot classification)."""

    max_batch: int = Field(64, ge=1, description="Largest micro-batch of texts in one forward pass.")
    max_wait_ms: float = Field(2.0, ge=0, description="How long a request waits for others to batch with.")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (default: all cores).")


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8700, ge=0, le=65535)
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Bodies over this answer 413.")
    tls: ServerTLSConfig | None = Field(
        None, description="Serve HTTPS with this certificate and key (and require client certificates)."
    )
    allow_unauthenticated_public_bind: bool = Field(
        default=False,
        description="Serve on a non-loopback address without authentication. Never in production.",
    )


class StateConfig(_Strict):
    dir: str = Field(".interlace", description="Where the embedded default keeps its SQLite state.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default sqlite+aiosqlite under `dir`. postgresql+asyncpg://… at scale.",
    )


# --- telemetry (OpenTelemetry tracing) ---
class TelemetryConfig(_Strict):
    """OpenTelemetry tracing: a server span per request, a client span per upstream attempt (OTLP/HTTP)."""

    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (/v1/traces is added when no path "
        "is given). Unset: no tracing, no exporter, no cost.",
    )
    service_name: str = Field("interlace", min_length=1, description="The resource's service.name.")
    sample_ratio: float = Field(
        1.0, ge=0, le=1, description="Share of new traces recorded; a caller's sampled flag is followed."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Sent with every export, e.g. {authorization: 'Bearer ${OTLP_TOKEN}'} (${ENV} resolved).",
    )

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_url(cls, endpoint: str | None) -> str | None:
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            msg = f"otlp_endpoint '{endpoint}' must be an http:// or https:// URL (OTLP over HTTP)"
            raise ValueError(msg)
        return endpoint


# --- end telemetry ---


# --- observability (metrics and logs) ---
class MetricsConfig(_Strict):
    """Prometheus metrics at ``GET /metrics``; labels only from configured names, never caller values."""

    enabled: bool = True


class LogsConfig(_Strict):
    """Structured logs: one line per request, and how the process's logs are written."""

    request_log: bool = Field(
        default=True, description="One line per request (id, model, status, latency, tokens)."
    )
    include_content: bool = Field(
        default=False, description="Add prompt and completion text to request lines. Never on by default."
    )
    format: Literal["json", "console"] = Field("json", description="JSON lines, or key=value for a terminal.")


class ObservabilityConfig(_Strict):
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    logs: LogsConfig = Field(default_factory=LogsConfig)


# --- end observability ---


class Config(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    local: LocalModelConfig = Field(default_factory=LocalModelConfig)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    redis: RedisConfig | None = Field(
        None, description="Without it, breaker and limits state is per process."
    )
    telemetry: TelemetryConfig = Field(
        default_factory=TelemetryConfig, description="OpenTelemetry tracing; off unless otlp_endpoint is set."
    )
    observability: ObservabilityConfig = Field(
        default_factory=ObservabilityConfig, description="Prometheus metrics and structured logs."
    )
    residency: ResidencyConfig | None = Field(
        None, description="Where requests may be routed (regions, provider types); a tenant's own rule wins."
    )
    quotas: QuotasConfig = Field(
        default_factory=QuotasConfig,
        description="How rate limits and budgets are enforced: Redis failure policy, output allowance.",
    )
    pii: PiiConfig = Field(
        default_factory=PiiConfig,
        description="Mask (reversibly) or block personal data and secrets in prompts; off by default.",
    )
    tenants: dict[str, TenantConfig] = Field(
        default_factory=dict, description="Per-tenant policies (limits, budget, PII, residency) by tenant id."
    )
    jobs: JobsConfig = Field(
        default_factory=JobsConfig, description="Durable jobs, batches and their signed webhooks."
    )
    functions: FunctionsConfig = Field(
        default_factory=FunctionsConfig, description="AI functions: typed, versioned endpoints."
    )
    audit: AuditConfig = Field(
        default_factory=AuditConfig, description="The hash-chained audit log of every request."
    )
    flows: dict[str, FlowConfig] = Field(
        default_factory=dict, description="Event-driven flows by name: source → steps → sink(s)."
    )

    @field_validator("flows")
    @classmethod
    def _flow_names(cls, flows: dict[str, FlowConfig]) -> dict[str, FlowConfig]:
        return check_flow_names(flows)

    @field_validator("models")
    @classmethod
    def _aliases_are_names(cls, models: dict[str, ModelConfig]) -> dict[str, ModelConfig]:
        for alias in models:
            if not _ALIAS.match(alias):
                msg = f"model alias '{alias}' must be 1-128 characters of letters, digits and ._:/-"
                raise ValueError(msg)
        return models
