"""What a request cost: its :class:`~interlace.observability.record.Usage` at its deployment's ``Price``.

Prices are USD per million tokens. Of the prompt, the ``cached_tokens`` are priced at
``price.cached_input`` (default: the input price) and the rest at ``price.input``; of the completion, the
``reasoning_tokens`` at ``price.reasoning`` (default: the output price) and the rest at ``price.output``.

The arithmetic is exact: prices are read through their shortest decimal form (``0.15`` is 15/100, not
the binary float nearest to it) and the sum is computed with :class:`~decimal.Decimal`, then rounded
once, half to even, to a whole nano-dollar (1e-9 USD). :func:`cost_nanos` returns that integer, which
is what the usage read model adds up (so sums never drift); :func:`cost_usd` returns it as the float
nearest to ``nanos / 1e9``.

The same figure applies whatever the answer's shape: a streamed answer is priced on the usage its
last chunk reported, a stream cut short on the usage of what was produced (estimated when the upstream
said nothing: the record's ``partial`` and ``usage.estimated`` say so, the price does not change), and a
shadow call is priced like any other — its record is flagged ``shadow`` and the read model keeps its
cost apart from what the caller is billed.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from interlace.config.schema import Price
    from interlace.observability.record import Usage

__all__ = ["NANOS_PER_USD", "cost_nanos", "cost_usd", "nanos_to_usd", "usd_to_nanos"]

NANOS_PER_USD = 10**9
"""Costs are kept as whole nano-dollars."""

_NANOS_PER_TOKEN_AT_ONE_USD_PER_MILLION = Decimal(NANOS_PER_USD) / Decimal(10**6)


def _decimal(value: float) -> Decimal:
    """The price as written in the configuration: ``repr`` gives a float's shortest round-tripping form."""
    return Decimal(repr(float(value)))


def cost_nanos(usage: Usage, price: Price) -> int:
    """The cost of ``usage`` at ``price`` in whole nano-dollars (rounded half to even, once)."""
    prompt = max(usage.prompt_tokens, 0)
    completion = max(usage.completion_tokens, 0)
    cached = min(max(usage.cached_tokens, 0), prompt)
    reasoning = min(max(usage.reasoning_tokens, 0), completion)
    cached_price = price.input if price.cached_input is None else price.cached_input
    reasoning_price = price.output if price.reasoning is None else price.reasoning
    per_million = (
        (prompt - cached) * _decimal(price.input)
        + cached * _decimal(cached_price)
        + (completion - reasoning) * _decimal(price.output)
        + reasoning * _decimal(reasoning_price)
    )
    nanos = (per_million * _NANOS_PER_TOKEN_AT_ONE_USD_PER_MILLION).to_integral_value(ROUND_HALF_EVEN)
    return int(nanos)


def cost_usd(usage: Usage, price: Price) -> float:
    """The cost of ``usage`` at ``price`` in USD, rounded to 1e-9 (see the module's notes)."""
    return nanos_to_usd(cost_nanos(usage, price))


def nanos_to_usd(nanos: int) -> float:
    """The float nearest to ``nanos`` nano-dollars."""
    return float(Decimal(nanos).scaleb(-9))


def usd_to_nanos(usd: float) -> int:
    """A USD float (e.g. ``RequestRecord.cost_usd``) as whole nano-dollars, rounded half to even."""
    return int((_decimal(usd) * NANOS_PER_USD).to_integral_value(ROUND_HALF_EVEN))
