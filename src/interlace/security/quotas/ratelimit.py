"""Requests and tokens per minute, per key, per tenant and per model: reserved before, settled after.

For each request the policy gathers every limit that applies — the key's (``Principal.limits``), its
tenant's (``tenants.<id>.limits``) and the model alias's across all callers (``models.<alias>.limits``)
— and reserves, in one atomic store operation, one request in each ``rpm`` bucket and the request's
estimated tokens (prompt estimate + its output bound, see :mod:`.estimate`) in each ``tpm`` bucket.
Any that does not fit refuses the whole request with a 429 that names it (``RateLimitExceeded``, type
``requests`` or ``tokens``) and a ``Retry-After``; nothing is taken then.

When the request is finished its reservation settles to what it really used (the record's usage), or
is refunded entirely when it failed before producing output. Admitted answers carry OpenAI's
``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` headers, of the tightest bucket of each kind.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Final

from interlace.core.errors import RateLimitExceeded
from interlace.core.ids import unique_hex
from interlace.security.gate import Hold
from interlace.security.quotas._common import duration, refunded, store_failed
from interlace.security.quotas.estimate import output_tokens, prompt_tokens
from interlace.security.quotas.store import Bucket, Demand, Denied, QuotaStoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from interlace.config.quotas import RateLimits, StoreErrorPolicy
    from interlace.observability.record import RequestRecord
    from interlace.security.gate import Call
    from interlace.security.quotas.metrics import QuotaMetrics
    from interlace.security.quotas.store import Granted, QuotaStore

__all__ = ["WINDOW_MS", "RateLimitPolicy"]

WINDOW_MS: Final = 60_000
"""Every rate limit is per minute, over a sliding window."""

_MAX_PLANS: Final = 10_000

_UNITS: Final = {"requests": "requests per minute (RPM)", "tokens": "tokens per minute (TPM)"}


class _Limit:
    __slots__ = ("kind", "label", "scope")

    def __init__(self, scope: str, label: str, kind: str) -> None:
        self.scope = scope
        self.label = label
        self.kind = kind


class RateLimitPolicy:
    """The ``rate_limits`` admission policy (:mod:`interlace.security.gate`)."""

    name = "rate_limits"

    def __init__(
        self,
        store: QuotaStore,
        *,
        metrics: QuotaMetrics,
        models: Mapping[str, RateLimits] | None = None,
        tenants: Mapping[str, RateLimits] | None = None,
        default_output_tokens: int = 4096,
        on_store_error: StoreErrorPolicy = "open",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self._models = dict(models or {})
        self._tenants = dict(tenants or {})
        self._default_output = default_output_tokens
        self._on_error: StoreErrorPolicy = on_store_error
        self.clock = clock
        # (caller, model) -> the buckets its requests count in: built once, not per request
        self._plans: dict[tuple[Any, ...], tuple[tuple[Bucket, ...], tuple[_Limit, ...], bool]] = {}

    async def admit(self, call: Call[Any]) -> Hold | None:
        if call.ctx.shadow:
            return None
        demands, limits = self._demands(call)
        if not demands:
            return None
        reservation = unique_hex(96)
        try:
            outcome = await self.store.reserve(reservation, demands, int(self.clock() * 1000))
        except QuotaStoreError:
            store_failed(self.name, self._on_error, self.metrics, call.ctx)
            return None
        if isinstance(outcome, Denied):
            raise self._refusal(outcome, demands, limits, call)
        call.ctx.headers_out.update(_headers(outcome, demands, limits))
        return _RateHold(self, reservation, demands, limits)

    def _demands(self, call: Call[Any]) -> tuple[list[Demand], list[_Limit]]:
        principal, model = call.principal, call.op.model
        own = principal.limits
        key = (principal.kind, principal.id, principal.tenant, own.rpm, own.tpm, model)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= _MAX_PLANS:  # callers x models is bounded in practice; memory is not
                self._plans.clear()
            plan = self._plans[key] = self._plan(call)
        buckets, limits, counts_tokens = plan
        if not buckets:
            return [], []
        tokens = prompt_tokens(call.op) + output_tokens(call.op, self._default_output) if counts_tokens else 0
        demands = [
            Demand(bucket, tokens if limit.kind == "tokens" else 1)
            for bucket, limit in zip(buckets, limits, strict=True)
        ]
        return demands, list(limits)

    def _plan(self, call: Call[Any]) -> tuple[tuple[Bucket, ...], tuple[_Limit, ...], bool]:
        """The buckets a caller's requests to a model count in (the same for each of them: cached),
        and whether any counts tokens."""
        principal = call.principal
        scopes: list[tuple[str, str, int | None, int | None]] = []
        own = principal.limits
        if principal.kind != "anonymous" and (own.rpm is not None or own.tpm is not None):
            scopes.append(("key", principal.id, own.rpm, own.tpm))
        tenant = self._tenants.get(principal.tenant) if principal.tenant is not None else None
        if tenant is not None:
            scopes.append(("tenant", principal.tenant or "", tenant.rpm, tenant.tpm))
        model = self._models.get(call.op.model)
        if model is not None:
            scopes.append(("model", call.op.model, model.rpm, model.tpm))
        buckets: list[Bucket] = []
        limits: list[_Limit] = []
        for scope, ident, rpm, tpm in scopes:
            if rpm is not None:
                buckets.append(Bucket(f"rl:{scope}:{ident}:requests", rpm, WINDOW_MS))
                limits.append(_Limit(scope, ident, "requests"))
            if tpm is not None:
                buckets.append(Bucket(f"rl:{scope}:{ident}:tokens", tpm, WINDOW_MS))
                limits.append(_Limit(scope, ident, "tokens"))
        return tuple(buckets), tuple(limits), any(limit.kind == "tokens" for limit in limits)

    def _refusal(
        self, denied: Denied, demands: list[Demand], limits: list[_Limit], call: Call[Any]
    ) -> RateLimitExceeded:
        demand, limit = demands[denied.index], limits[denied.index]
        self.metrics.rejections.inc((limit.scope, limit.kind))
        bucket = demand.bucket
        what = f"{limit.scope} '{limit.label}'"
        call.ctx.decisions.append(f"rate_limits:refused {limit.scope} {limit.kind} {bucket.limit}/min")
        headers = {
            f"x-ratelimit-limit-{limit.kind}": str(bucket.limit),
            f"x-ratelimit-remaining-{limit.kind}": str(max(bucket.limit - denied.used, 0)),
        }
        if denied.retry_after_ms < 0:
            message = (
                f"Request too large for {what} on {_UNITS[limit.kind]}: limit {bucket.limit}, "
                f"requested {demand.amount}. Reduce the prompt or max_tokens."
            )
            return RateLimitExceeded(message, kind=limit.kind, headers=headers)
        headers[f"x-ratelimit-reset-{limit.kind}"] = duration(denied.retry_after_ms)
        wait = denied.retry_after_ms / 1000
        message = (
            f"Rate limit reached for {what} on {_UNITS[limit.kind]}: limit {bucket.limit}, "
            f"used {denied.used}, requested {demand.amount}. Please try again in {wait:.3g}s."
        )
        return RateLimitExceeded(message, kind=limit.kind, retry_after=max(wait, 0.001), headers=headers)


def _headers(granted: Granted, demands: list[Demand], limits: list[_Limit]) -> dict[str, str]:
    """OpenAI's rate-limit headers, of the bucket of each kind with the least remaining."""
    tightest: dict[str, tuple[int, int, int]] = {}
    for level, demand, limit in zip(granted.levels, demands, limits, strict=True):
        remaining = max(demand.bucket.limit - level.used, 0)
        best = tightest.get(limit.kind)
        if best is None or remaining < best[1]:
            tightest[limit.kind] = (demand.bucket.limit, remaining, level.reset_ms)
    headers: dict[str, str] = {}
    for kind, (total, remaining, reset_ms) in tightest.items():
        headers[f"x-ratelimit-limit-{kind}"] = str(total)
        headers[f"x-ratelimit-remaining-{kind}"] = str(remaining)
        headers[f"x-ratelimit-reset-{kind}"] = duration(reset_ms)
    return headers


class _RateHold(Hold):
    """One request's reservations: settled to its real usage, or refunded."""

    __slots__ = ("_demands", "_limits", "_policy", "_reservation")

    def __init__(
        self, policy: RateLimitPolicy, reservation: str, demands: list[Demand], limits: list[_Limit]
    ) -> None:
        self._policy = policy
        self._reservation = reservation
        self._demands = demands
        self._limits = limits

    async def settle(self, record: RequestRecord) -> None:
        await self._settle(self._actual(record))

    def settle_at_once(self, record: RequestRecord) -> bool:
        policy = self._policy
        actual = self._actual(record)
        return policy.store.settle_at_once(self._reservation, actual, int(policy.clock() * 1000)) is not None

    async def release(self) -> None:
        await self._settle(self._actual(None))

    async def _settle(self, actual: list[Demand]) -> None:
        policy = self._policy
        # a failure is logged once per outage by the store; a window's reservation expires by itself
        with contextlib.suppress(QuotaStoreError):
            await policy.store.settle(self._reservation, actual, int(policy.clock() * 1000))

    def _actual(self, record: RequestRecord | None) -> list[Demand]:
        """What the request really used of each bucket: nothing when it never ran (``None``) or is
        refunded, else one request and its tokens."""
        if record is None or refunded(record):
            return [Demand(d.bucket, 0) for d in self._demands]
        tokens = max(record.usage.total_tokens, 0)
        return [
            Demand(d.bucket, 1 if limit.kind == "requests" else tokens)
            for d, limit in zip(self._demands, self._limits, strict=True)
        ]
