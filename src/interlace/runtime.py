"""The runtime owns the lifecycle: build everything from config, start, serve, stop.

Nothing here is global: a :class:`Runtime` is constructed from a :class:`Config` and passed down.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING

from interlace.core.errors import ConfigError
from interlace.functions.runner import FunctionRunner
from interlace.jobs.system import JobSystem
from interlace.observability.events import EventLog, default_spool_dir
from interlace.observability.logs import RequestLog
from interlace.observability.metrics import Metrics
from interlace.observability.observer import FanOut
from interlace.observability.tracing import Tracing
from interlace.providers.registry import build_provider
from interlace.resilience.breaker import Breakers
from interlace.resilience.breaker_store import MemoryBreakerStore, RedisBreakerStore
from interlace.routing.deployment import Deployment, ModelRoute
from interlace.routing.router import Router
from interlace.routing.rules import TrafficRules
from interlace.routing.strategies import build_strategy
from interlace.security.audit.writer import AuditWriter, default_audit_spool_dir
from interlace.security.authn import Authenticator
from interlace.security.gate import Gate
from interlace.security.keys import KeyCache, KeyStore
from interlace.security.pii import PiiPolicy
from interlace.security.quotas import Quotas
from interlace.security.residency import ResidencyPolicy
from interlace.store.database import Database, default_database_url
from interlace.store.shadow_recorder import ShadowRecorder

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter
    from redis.asyncio import Redis

    from interlace.config.schema import Config, ModelConfig, RedisConfig
    from interlace.core.provider import Provider
    from interlace.providers.local import SentenceEncoder
    from interlace.providers.registry import EncoderSource
    from interlace.resilience.breaker_store import BreakerStore
    from interlace.routing.shadow import ShadowMirror
    from interlace.security.authn import TokenVerifier
    from interlace.security.oidc import OidcVerifier

__all__ = ["Runtime", "build_routes"]

log = logging.getLogger("interlace.runtime")


class Runtime:
    def __init__(
        self,
        config: Config,
        *,
        config_source: str = "embedded default",
        span_exporter: SpanExporter | None = None,
        migrate_in_child: bool = False,
    ) -> None:
        self.config = config
        self.config_source = config_source
        # OpenTelemetry tracing: disabled (nothing created) unless telemetry.otlp_endpoint is set
        # or an exporter is injected (tests: an InMemorySpanExporter)
        self.tracing = Tracing.from_config(config.telemetry, span_exporter=span_exporter)
        self.started_at = int(time.time())
        self.rng = random.Random()  # noqa: S311 - load spreading and sampling, not security
        self.database = Database(
            config.state.database_url or default_database_url(config.state.dir),
            migrate_in_child=migrate_in_child,
        )
        # --- authentication (interlace.security.authn): master/admin key, virtual keys, OIDC tokens ---
        self.keys = KeyStore(self.database)
        auth = config.auth
        self.key_cache: KeyCache | None = (
            KeyCache(
                self.keys,
                refresh_interval=auth.key_cache.refresh_interval,
                lookups_per_second=auth.key_cache.lookups_per_second,
            )
            if auth.enabled
            else None
        )
        self.authenticator = Authenticator(
            master_key=auth.master_key.get_secret_value() if auth.master_key is not None else None,
            admin_key=auth.admin_key.get_secret_value() if auth.admin_key is not None else None,
            keys=self.key_cache,
            tokens=self._token_verifier(),
        )
        # --- end authentication ---
        # sinks of every finished request's record; the event log appends them to request_events
        self.observers = FanOut()
        self.event_log = EventLog(self.database, spool_dir=default_spool_dir(config.state.dir))
        self.observers.add(self.event_log)
        # --- audit (interlace.security.audit): the hash-chained log of every request ---
        audit = config.audit
        self.audit: AuditWriter | None = None
        if audit.enabled:
            self.audit = AuditWriter(
                self.database,
                spool_dir=audit.spool_dir or default_audit_spool_dir(config.state.dir),
                key=audit.key,
                content=audit.content,
            )
            self.observers.add(self.audit)
        # --- end audit ---
        self.redis: Redis | None = _redis_client(config.redis) if config.redis is not None else None
        store: BreakerStore = (
            RedisBreakerStore(self.redis, prefix=config.redis.prefix)
            if self.redis is not None and config.redis is not None
            else MemoryBreakerStore()
        )
        self.breakers = Breakers(store)
        self._encoders: dict[str, SentenceEncoder] = {}
        self._loading: list[asyncio.Task[None]] = []
        routes = build_routes(config, rng=self.rng, encoders=self._encoder)
        # the admission policies every request passes (interlace.security.gate), in this order:
        # scopes (built in) → residency → PII masking → rate limits → budgets; a policy with nothing
        # configured is left out (residency, PII: presidio loads in start(), only when a rule needs it)
        self.quotas = Quotas(config, database=self.database)
        self.pii = PiiPolicy.from_config(config)
        policies = (
            ResidencyPolicy.from_config(config, routes),
            self.pii,
            self.quotas.rate_limits,
            self.quotas.budgets,
        )
        self.gate = Gate([policy for policy in policies if policy is not None])
        self.providers: list[Provider] = [d.provider for r in routes.values() for d in r.deployments]
        self.router = Router(
            routes,
            breakers=self.breakers,
            rules=TrafficRules(config.routing.rules, rng=self.rng),
            rng=self.rng,
        )
        # shadow traffic: only when a model mirrors to a candidate, so the router's check stays one None test
        self.shadow: ShadowMirror | None = None
        if any(model.shadow is not None for model in config.models.values()):
            from interlace.routing.shadow import ShadowMirror  # noqa: PLC0415 - only when a model mirrors

            self.shadow = ShadowMirror(
                routes, self.router.attempts, rng=self.rng, recorder=ShadowRecorder(self.database)
            )
            self.router.mirror = self.shadow
        # AI functions (interlace.functions): through the same gate and router; the gateway serves them,
        # the job system carries them as jobs (operation "function")
        self.functions = FunctionRunner.from_config(
            config.functions, self.router, self.gate, shadow_sink=ShadowRecorder(self.database), rng=self.rng
        )
        # --- metrics and request log (observability.metrics / observability.logs) ---
        observability = config.observability
        self.metrics: Metrics | None = (
            Metrics.for_routes(routes, self.breakers) if observability.metrics.enabled else None
        )
        if self.metrics is not None:
            self.observers.add(self.metrics)
        if observability.logs.request_log:
            self.observers.add(RequestLog.from_config(observability.logs))
        # --- end metrics and request log ---
        if self.metrics is not None:  # quota store errors, quota refusals, soft budget crossings
            self.metrics.registry.register(self.quotas.metrics)
        # durable jobs, batches, webhooks (interlace.jobs); the worker starts with start()
        self.jobs = JobSystem(config.jobs, self.database)

    def _encoder(self, model: str) -> SentenceEncoder:
        from interlace.providers.local import build_encoder  # noqa: PLC0415 - torch only when used

        key = model.removeprefix("sentence-transformers/")
        if key not in self._encoders:
            self._encoders[key] = build_encoder(model, self.config.local)
        return self._encoders[key]

    async def start(self, *, wait_for_models: bool = False) -> None:
        """Open the store, start every provider; local models load in the background unless asked."""
        await self.database.start()
        if self.key_cache is not None:  # every key in memory before the first request
            await self.key_cache.start()
        if self.oidc is not None:  # the issuers' signing keys; an unreachable issuer is not fatal
            await self.oidc.start()
        await self.event_log.start()
        if self.audit is not None:  # appends what a stopped gateway left in the spool
            await self.audit.start()
        if self.pii is not None:  # the PII detector (presidio) loads in a worker thread
            await self.pii.start()
        await asyncio.gather(*(p.start() for p in self.providers))
        self._loading = [asyncio.create_task(self._load(name, e)) for name, e in self._encoders.items()]
        if wait_for_models:
            await asyncio.gather(*self._loading)
        # this process's job worker, when jobs.worker.enabled (interlace serve, interlace worker)
        self.jobs.start(
            router=self.router,
            gate=self.gate,
            observers=self.observers,
            max_deadline=self.config.routing.max_deadline,
            capture_content=self.config.observability.logs.include_content,
            audit_content=self.config.audit.content if self.config.audit.enabled else "none",
            functions=self.functions,
        )

    async def _load(self, name: str, encoder: SentenceEncoder) -> None:
        began = time.perf_counter()
        await encoder.start()
        log.info("local model %s loaded in %.1fs", name, time.perf_counter() - began)

    async def stop(self) -> None:
        await self.jobs.aclose()  # first: running jobs stop and give their leases back
        if self.shadow is not None:
            await self.shadow.aclose()  # before the providers and the database it uses
        for task in self._loading:
            task.cancel()
        # their cancellations and failures are results here; a cancellation of the caller still propagates
        await asyncio.gather(*self._loading, return_exceptions=True)
        await asyncio.gather(*(p.aclose() for p in self.providers), return_exceptions=True)
        await asyncio.gather(*(e.aclose() for e in self._encoders.values()), return_exceptions=True)
        await self.gate.aclose()  # settles quotas and budgets still in flight, before Redis closes
        await self.quotas.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.event_log.aclose()  # writes every queued record before the database closes
        if self.audit is not None:  # after the gate settled, before the database closes
            await self.audit.aclose()
        if self.key_cache is not None:
            await self.key_cache.aclose()
        if self.oidc is not None:
            await self.oidc.aclose()
        await self.database.aclose()
        await self.tracing.aclose()  # exports the spans still queued

    def _token_verifier(self) -> TokenVerifier | None:
        """The bearer-JWT verifier of ``auth.oidc`` (:mod:`interlace.security.oidc`), if configured."""
        # --- oidc wiring point: kept as self.oidc, started and closed with the runtime ---
        oidc = self.config.auth.oidc
        self.oidc: OidcVerifier | None = None
        if oidc is not None:
            from interlace.security.oidc import OidcVerifier  # noqa: PLC0415 - PyJWT only with OIDC

            self.oidc = OidcVerifier(oidc)
        return self.oidc

    def readiness_details(self) -> dict[str, object]:
        """What /readyz shows besides its checks: degraded but not failing dependencies."""
        details: dict[str, object] = {}
        if self.key_cache is not None:
            details["api_keys"] = self.key_cache.details()
        if self.oidc is not None:  # signing keys cached per issuer, and the last fetch error
            details["oidc"] = self.oidc.details()
        return details

    async def readiness(self) -> dict[str, bool]:
        checks = {"config": True, "database": await self.database.ping()}
        if self.redis is not None:
            from redis.exceptions import RedisError  # noqa: PLC0415 - loaded with the client

            try:
                checks["redis"] = bool(await self.redis.ping())
            except RedisError:
                checks["redis"] = False
        for name, encoder in self._encoders.items():
            checks[f"local_model:{name}"] = encoder.ready
        if self.key_cache is not None:  # a snapshot to verify keys with (kept when the database fails)
            checks["api_keys"] = self.key_cache.loaded
        return checks


def _redis_client(config: RedisConfig) -> Redis:
    """The shared-state client of ``redis:`` (the library is imported only when it is configured)."""
    from redis.asyncio import Redis  # noqa: PLC0415
    from redis.asyncio.retry import Retry  # noqa: PLC0415
    from redis.backoff import NoBackoff  # noqa: PLC0415

    # one quick retry at most: shared state is advisory, a dead Redis must not slow requests
    return Redis.from_url(
        config.url, socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 1)
    )


def build_routes(config: Config, *, rng: random.Random, encoders: EncoderSource) -> dict[str, ModelRoute]:
    """Every alias's route, its providers built but not started: no network, no database, no model load.

    Raises :class:`ConfigError` when a fallback chain, a shadow or a traffic rule names no model.
    """
    routes = {alias: _route(alias, model, rng, encoders) for alias, model in config.models.items()}
    _check_references(config)
    return routes


def _route(alias: str, model: ModelConfig, rng: random.Random, encoders: EncoderSource) -> ModelRoute:
    deployments = [
        Deployment(
            provider=build_provider(f"{alias}/{index}", deployment, encoders=encoders), config=deployment
        )
        for index, deployment in enumerate(model.deployments)
    ]
    return ModelRoute(
        alias=alias,
        deployments=tuple(deployments),
        config=model,
        strategy=build_strategy(model.strategy, rng),
        operations=frozenset().union(*(d.provider.operations for d in deployments)),
    )


def _check_references(config: Config) -> None:
    """Every alias named by a fallback chain, a shadow or a traffic rule must exist."""
    known = set(config.models)
    problems: list[str] = []
    for alias, model in config.models.items():
        for field in ("fallbacks", "context_fallbacks", "content_policy_fallbacks"):
            problems += [
                f"models.{alias}.{field} names '{m}'" for m in getattr(model, field) if m not in known
            ]
        if model.shadow is not None and model.shadow.model not in known:
            problems.append(f"models.{alias}.shadow.model names '{model.shadow.model}'")
    for rule in config.routing.rules:
        targets = [rule.model] if rule.model else [arm.model for arm in rule.split]
        problems += [f"routing.rules '{rule.name}' names '{m}'" for m in targets if m not in known]
    if problems:
        raise ConfigError(
            f"{'; '.join(problems)}, which is not a model — add it under models: or fix the name "
            f"(models: {', '.join(sorted(known)) or 'none'})"
        )
