"""Spend per key and per tenant per period: the worst case reserved before, the real cost settled after.

A key's budget comes with its credential (``Principal.limits``: ``budget_usd``, ``soft_budget_usd``,
``budget_period``), a tenant's from ``tenants.<id>.budget``. Before a request is routed, its worst-case
cost (:class:`~.estimate.PriceBook`: estimated prompt and maximum output tokens at the most expensive
deployment it could reach) is reserved against each hard limit in one atomic store operation; when it
does not fit, the request is refused with OpenAI's 429 ``insufficient_quota``. When the request is
finished, the reservation settles to the record's ``cost_usd`` (or is refunded when it failed before
producing output). So concurrent requests never spend past a hard limit by more than one settlement's
excess over its reservation (which needs a provider to bill more than the request's own bounds).

A soft limit never refuses: every request admitted while the settled spend is at or past it carries
the decision ``budgets:soft_limit …`` (the audit log), and the settlement that carries the settled
spend across it — exactly one, across every gateway sharing the store — logs a warning and counts
``interlace_budget_soft_limit_crossings_total``.

Spend is kept in nano-dollars (:mod:`interlace.observability.cost`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from interlace.core.errors import BudgetExceeded
from interlace.core.ids import unique_hex
from interlace.observability.cost import nanos_to_usd, usd_to_nanos
from interlace.security.gate import Hold
from interlace.security.quotas._common import refunded, store_failed
from interlace.security.quotas.estimate import output_tokens, prompt_tokens
from interlace.security.quotas.periods import current_period
from interlace.security.quotas.store import Bucket, Demand, Denied, QuotaStoreError, SpendQuery

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from interlace.config.quotas import BudgetConfig, BudgetPeriod, StoreErrorPolicy
    from interlace.observability.record import RequestRecord
    from interlace.security.gate import Call
    from interlace.security.quotas.estimate import PriceBook
    from interlace.security.quotas.metrics import QuotaMetrics
    from interlace.security.quotas.store import Granted, QuotaStore, Settled

__all__ = ["BudgetPolicy"]

log = logging.getLogger("interlace.security.quotas")

UNLIMITED: Final = 2**53 - 1
"""The limit of a counter that has only a soft budget (the largest integer a Lua number holds)."""


@dataclass(frozen=True, slots=True)
class _Budget:
    scope: str
    """``key`` or ``tenant``."""
    id: str
    hard: int | None
    soft: int | None
    period: BudgetPeriod


class BudgetPolicy:
    """The ``budgets`` admission policy (:mod:`interlace.security.gate`)."""

    name = "budgets"

    def __init__(
        self,
        store: QuotaStore,
        *,
        prices: PriceBook,
        metrics: QuotaMetrics,
        tenants: Mapping[str, BudgetConfig] | None = None,
        default_output_tokens: int = 4096,
        on_store_error: StoreErrorPolicy = "open",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.prices = prices
        self.metrics = metrics
        self._tenants = dict(tenants or {})
        self._default_output = default_output_tokens
        self._on_error: StoreErrorPolicy = on_store_error
        self.clock = clock

    async def admit(self, call: Call[Any]) -> Hold | None:
        if call.ctx.shadow:
            return None
        budgets = self._budgets(call)
        if not budgets:
            return None
        now = self.clock()
        op = call.op
        worst = self.prices.worst_case_nanos(
            op.model, prompt_tokens(op), output_tokens(op, self._default_output)
        )
        demands = [Demand(_bucket(b, now), max(worst, 1)) for b in budgets]
        reservation = unique_hex(96)
        try:
            outcome = await self.store.reserve(reservation, demands, int(now * 1000))
        except QuotaStoreError:
            store_failed(self.name, self._on_error, self.metrics, call.ctx)
            return None
        if isinstance(outcome, Denied):
            raise self._refusal(outcome, budgets[outcome.index], demands[outcome.index], call)
        self._note_soft(outcome, budgets, call)
        return _BudgetHold(self, reservation, demands, budgets)

    def _budgets(self, call: Call[Any]) -> list[_Budget]:
        principal = call.principal
        budgets: list[_Budget] = []
        own = principal.limits
        if principal.kind != "anonymous" and (own.budget_usd is not None or own.soft_budget_usd is not None):
            budgets.append(
                _Budget(
                    "key",
                    principal.id,
                    _nanos(own.budget_usd),
                    _nanos(own.soft_budget_usd),
                    own.budget_period,
                )
            )
        tenant = self._tenants.get(principal.tenant) if principal.tenant is not None else None
        if tenant is not None and (tenant.usd is not None or tenant.soft_usd is not None):
            budgets.append(
                _Budget(
                    "tenant",
                    principal.tenant or "",
                    _nanos(tenant.usd),
                    _nanos(tenant.soft_usd),
                    tenant.period,
                )
            )
        return budgets

    def _refusal(self, denied: Denied, budget: _Budget, demand: Demand, call: Call[Any]) -> BudgetExceeded:
        self.metrics.rejections.inc((budget.scope, "budget"))
        hard = nanos_to_usd(budget.hard or 0)
        spent = nanos_to_usd(denied.used)
        call.ctx.decisions.append(f"budgets:refused {budget.scope} {hard:.2f} USD/{budget.period}")
        per = "in total" if budget.period == "total" else f"this {budget.period}"
        message = (
            f"The {budget.scope} '{budget.id}' has reached its budget of {hard:.2f} USD {per}: "
            f"{spent:.6f} USD spent or reserved, and this request may cost up to "
            f"{nanos_to_usd(demand.amount):.6f} USD."
        )
        retry = denied.retry_after_ms / 1000 if denied.retry_after_ms >= 0 else None
        return BudgetExceeded(message, retry_after=retry)

    def _note_soft(self, granted: Granted, budgets: list[_Budget], call: Call[Any]) -> None:
        for level, budget in zip(granted.levels, budgets, strict=True):
            if budget.soft is not None and level.settled >= budget.soft:
                call.ctx.decisions.append(
                    f"budgets:soft_limit {budget.scope} {nanos_to_usd(level.settled):.6f}/"
                    f"{nanos_to_usd(budget.soft):.2f} USD/{budget.period}"
                )

    def crossed(self, budget: _Budget, before: int, after: int) -> None:
        """A settlement carried the settled spend across the soft budget: alert, once per period."""
        self.metrics.soft_crossings.inc((budget.scope,))
        log.warning(
            "The %s '%s' crossed its soft budget of %.2f USD this %s: %.6f USD spent (was %.6f).",
            budget.scope,
            budget.id,
            nanos_to_usd(budget.soft or 0),
            budget.period,
            nanos_to_usd(after),
            nanos_to_usd(before),
        )


def _nanos(usd: float | None) -> int | None:
    return None if usd is None else usd_to_nanos(usd)


def _bucket(budget: _Budget, now: float) -> Bucket:
    period = current_period(budget.period, now)
    return Bucket(
        f"budget:{budget.scope}:{budget.id}:{period.id}",
        UNLIMITED if budget.hard is None else budget.hard,
        None,
        period.ends_ms,
        SpendQuery("key" if budget.scope == "key" else "tenant", budget.id, period.since),
    )


class _BudgetHold(Hold):
    """One request's budget reservations: settled to its cost, or refunded."""

    __slots__ = ("_budgets", "_demands", "_policy", "_reservation")

    def __init__(
        self, policy: BudgetPolicy, reservation: str, demands: list[Demand], budgets: list[_Budget]
    ) -> None:
        self._policy = policy
        self._reservation = reservation
        self._demands = demands
        self._budgets = budgets

    async def settle(self, record: RequestRecord) -> None:
        await self._settle(_cost(record))

    def settle_at_once(self, record: RequestRecord) -> bool:
        policy = self._policy
        actual = self._actual(_cost(record))
        settled = policy.store.settle_at_once(self._reservation, actual, int(policy.clock() * 1000))
        if settled is None:
            return False
        self._note_crossings(settled)
        return True

    async def release(self) -> None:
        await self._settle(0)

    async def _settle(self, cost: int) -> None:
        policy = self._policy
        try:
            settled = await policy.store.settle(
                self._reservation, self._actual(cost), int(policy.clock() * 1000)
            )
        except QuotaStoreError:
            return  # logged once per outage by the store; the reservation stays counted (pessimistic)
        self._note_crossings(settled)

    def _actual(self, cost: int) -> list[Demand]:
        """Each budget's reservation replaced by the request's real cost (nano-dollars)."""
        return [Demand(d.bucket, cost) for d in self._demands]

    def _note_crossings(self, settled: tuple[Settled, ...]) -> None:
        for budget, outcome in zip(self._budgets, settled, strict=True):
            soft = budget.soft
            if soft is not None and outcome.before < soft <= outcome.after:
                self._policy.crossed(budget, outcome.before, outcome.after)


def _cost(record: RequestRecord) -> int:
    """What the request cost (nano-dollars); 0 when it is refunded."""
    return 0 if refunded(record) else usd_to_nanos(max(record.cost_usd, 0.0))
