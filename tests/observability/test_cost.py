"""Cost from per-deployment prices: cached input, reasoning, streams (whole and cut short), exact sums."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from hypothesis import given
from hypothesis import strategies as st

from interlace.config.schema import Price
from interlace.observability.cost import cost_nanos, cost_usd, nanos_to_usd, usd_to_nanos
from interlace.observability.record import Usage

GPT = Price(input=2.5, output=10, cached_input=1.25)
MINI = Price(input=0.15, output=0.6, cached_input=0.075, reasoning=2.4)
CLAUDE = Price(input=3, output=15)


def test_cached_prompt_tokens_at_the_cached_price_and_reasoning_at_the_output_price_by_default() -> None:
    usage = Usage(prompt_tokens=1000, cached_tokens=400, completion_tokens=500, reasoning_tokens=200)
    # 600 * 2.5 + 400 * 1.25 + 300 * 10 + 200 * 10 = 7000 USD per million → 0.007 USD
    assert cost_nanos(usage, GPT) == 7_000_000
    assert cost_usd(usage, GPT) == 0.007


def test_reasoning_tokens_at_their_own_price() -> None:
    usage = Usage(prompt_tokens=1234, cached_tokens=1000, completion_tokens=321, reasoning_tokens=300)
    # 234 * 0.15 + 1000 * 0.075 + 21 * 0.6 + 300 * 2.4 = 35.1 + 75 + 12.6 + 720 = 842.7 → 0.0008427 USD
    assert cost_nanos(usage, MINI) == 842_700
    assert cost_usd(usage, MINI) == 0.0008427


def test_prices_default_to_input_and_output() -> None:
    usage = Usage(prompt_tokens=100, cached_tokens=100, completion_tokens=10, reasoning_tokens=10)
    # everything cached and everything reasoning, at the plain prices: 100 * 3 + 10 * 15 = 450
    assert cost_nanos(usage, CLAUDE) == 450_000


def test_a_stream_cut_short_is_billed_for_what_was_produced() -> None:
    # the upstream said nothing: the gateway counted 10 prompt tokens and 7 produced ones
    produced = Usage(prompt_tokens=10, completion_tokens=7, estimated=True)
    assert cost_nanos(produced, CLAUDE) == 135_000  # 10 * 3 + 7 * 15 = 135
    assert cost_usd(produced, CLAUDE) == 0.000135


def test_counts_out_of_range_are_clamped() -> None:
    usage = Usage(prompt_tokens=10, cached_tokens=50, completion_tokens=-5, reasoning_tokens=3)
    assert cost_nanos(usage, GPT) == 12_500  # cached ≤ prompt; negative completion is none
    assert cost_nanos(Usage(), GPT) == 0


def test_rounding_is_to_the_nano_dollar_half_to_even() -> None:
    tiny = Price(input=0.0003, output=0.0001)
    assert cost_nanos(Usage(prompt_tokens=1), tiny) == 0  # 0.3 nano-dollars
    assert cost_nanos(Usage(prompt_tokens=5), tiny) == 2  # 1.5 → 2
    assert cost_nanos(Usage(completion_tokens=25), tiny) == 2  # 2.5 → 2
    assert cost_nanos(Usage(prompt_tokens=1), Price(input=0.1)) == 100


def test_a_scripted_mix_sums_exactly() -> None:
    mix = [
        (Usage(prompt_tokens=1000, cached_tokens=400, completion_tokens=500, reasoning_tokens=200), GPT),
        (Usage(prompt_tokens=1234, cached_tokens=1000, completion_tokens=321, reasoning_tokens=300), MINI),
        (Usage(prompt_tokens=10, completion_tokens=7, estimated=True), CLAUDE),  # a partial stream
        (Usage(prompt_tokens=3, completion_tokens=1), Price(input=0.1, output=0.2)),
    ] * 1000
    total = sum(cost_nanos(usage, price) for usage, price in mix)
    assert total == 1000 * (7_000_000 + 842_700 + 135_000 + 500)
    assert nanos_to_usd(total) == 7.9782
    # the same sum in floats drifts: why the read model adds integers
    assert sum(cost_usd(usage, price) for usage, price in mix) != 7.9782


def test_usd_and_nanos_round_trip() -> None:
    for usd in (0.0, 1e-9, 0.0008427, 0.1, 7978.2, 123456.789012345):
        assert nanos_to_usd(usd_to_nanos(usd)) == usd
    assert usd_to_nanos(0.3) == 300_000_000  # not 299999999.99999997


_PRICES = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)
_COUNTS = st.integers(min_value=0, max_value=10**7)


@given(st.tuples(_PRICES, _PRICES, _PRICES, _PRICES), st.tuples(_COUNTS, _COUNTS, _COUNTS, _COUNTS))
def test_cost_is_the_exact_decimal_rounded_once(
    prices: tuple[Decimal, Decimal, Decimal, Decimal], counts: tuple[int, int, int, int]
) -> None:
    p_in, p_out, p_cached, p_reasoning = prices
    prompt, completion, cached, reasoning = counts
    price = Price(
        input=float(p_in), output=float(p_out), cached_input=float(p_cached), reasoning=float(p_reasoning)
    )
    usage = Usage(
        prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached, reasoning_tokens=reasoning
    )
    cached, reasoning = min(cached, prompt), min(reasoning, completion)
    exact = (
        (prompt - cached) * p_in
        + cached * p_cached
        + (completion - reasoning) * p_out
        + reasoning * p_reasoning
    ) * 1000  # per million tokens -> nano-dollars per token
    assert cost_nanos(usage, price) == int(exact.to_integral_value(ROUND_HALF_EVEN))
