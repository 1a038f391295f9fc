"""Routing strategies order every candidate as documented; tags filter and parse strictly."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

import pytest

from interlace.config.schema import Price, Strategy
from interlace.core.errors import RequestError
from interlace.routing.stats import DeploymentStats
from interlace.routing.strategies import (
    CostAware,
    LeastInFlight,
    LowestLatency,
    RoundRobin,
    RoutingStrategy,
    WeightedRandom,
    build_strategy,
    filter_by_tags,
    parse_tags_header,
)


@dataclass
class Dep:
    name: str
    weight: float = 1.0
    tags: dict[str, str] = field(default_factory=dict)
    price: Price = field(default_factory=Price)
    stats: DeploymentStats = field(default_factory=DeploymentStats)


def _firsts(strategy: RoutingStrategy, deps: list[Dep], draws: int, **kwargs: object) -> Counter[str]:
    counts: Counter[str] = Counter()
    for _ in range(draws):
        ordered = strategy.order(deps, **kwargs)  # type: ignore[arg-type]
        assert sorted(d.name for d in ordered) == sorted(d.name for d in deps)
        counts[ordered[0].name] += 1
    return counts


# --- stats -------------------------------------------------------------------------------------------


def test_stats_ewma_follows_successes_and_counts() -> None:
    stats = DeploymentStats(alpha=0.5)
    stats.started()
    stats.started()
    assert stats.in_flight == 2
    stats.finished(1.0, ok=True)
    assert stats.ewma_latency == 1.0
    stats.finished(3.0, ok=True)
    assert stats.ewma_latency == 2.0
    assert (stats.in_flight, stats.requests, stats.failures) == (0, 2, 0)


def test_stats_a_fast_failure_never_makes_a_deployment_look_faster() -> None:
    stats = DeploymentStats(alpha=0.2, failure_penalty=2.0)
    stats.finished(0.001, ok=False)
    assert stats.ewma_latency is None  # still unmeasured: failures alone are the breaker's business
    stats.finished(1.0, ok=True)
    stats.finished(0.001, ok=False)  # sample = max(0.001, 1.0 * 2) = 2.0
    assert stats.ewma_latency == pytest.approx(1.2)
    stats.finished(10.0, ok=False)  # a timeout counts with its full duration
    assert stats.ewma_latency == pytest.approx(1.2 + 0.2 * (10.0 - 1.2))
    assert (stats.requests, stats.failures) == (4, 3)
    assert stats.failure_ratio == pytest.approx(3 / 4)


def test_stats_cancellation_counts_nothing_and_in_flight_never_goes_negative() -> None:
    stats = DeploymentStats()
    stats.started()
    stats.cancelled()
    stats.cancelled()
    stats.finished(1.0, ok=True)
    assert (stats.in_flight, stats.requests, stats.failures) == (0, 1, 0)


@pytest.mark.parametrize("kwargs", [{"alpha": 0.0}, {"alpha": 1.5}, {"failure_penalty": 0.5}])
def test_stats_refuses_nonsense_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DeploymentStats(**kwargs)


# --- weighted random ---------------------------------------------------------------------------------


def test_weighted_random_first_place_follows_the_weights() -> None:
    deps = [Dep("a", 1), Dep("b", 2), Dep("c", 7)]
    draws = 20_000
    counts = _firsts(WeightedRandom(random.Random(7)), deps, draws)
    for dep in deps:
        assert abs(counts[dep.name] / draws - dep.weight / 10) < 0.01, counts


def test_weighted_random_second_place_is_without_replacement() -> None:
    deps = [Dep("a", 1), Dep("b", 1), Dep("c", 2)]
    rng = random.Random(3)
    strategy = WeightedRandom(rng)
    seconds: Counter[str] = Counter()
    draws = 20_000
    for _ in range(draws):
        ordered = strategy.order(deps)
        if ordered[0].name == "c":
            seconds[ordered[1].name] += 1
    share_a = seconds["a"] / sum(seconds.values())
    assert abs(share_a - 0.5) < 0.02  # after c, a and b are equally likely


def test_every_strategy_handles_zero_and_one_candidates() -> None:
    for name in ("weighted", "round_robin", "least_in_flight", "lowest_latency", "cost"):
        strategy = build_strategy(name, random.Random(0))
        assert strategy.order([]) == []
        only = Dep("only")
        assert strategy.order([only]) == [only]
        assert strategy.order((only,), estimated_tokens=(10, 10)) == [only]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("weighted", WeightedRandom),
        ("round_robin", RoundRobin),
        ("least_in_flight", LeastInFlight),
        ("lowest_latency", LowestLatency),
        ("cost", CostAware),
    ],
)
def test_build_strategy_maps_config_names(name: Strategy, kind: type) -> None:
    assert isinstance(build_strategy(name, random.Random(0)), kind)


# --- round robin -------------------------------------------------------------------------------------


def test_round_robin_rotates_over_a_fixed_list() -> None:
    deps = [Dep("a"), Dep("b"), Dep("c")]
    strategy = RoundRobin()
    orders = ["".join(d.name for d in strategy.order(deps)) for _ in range(6)]
    assert orders == ["abc", "bca", "cab", "abc", "bca", "cab"]


def test_round_robin_stays_fair_across_interleaved_subsets() -> None:
    a, b, c = Dep("a"), Dep("b"), Dep("c")
    strategy = RoundRobin()
    subset: Counter[str] = Counter()
    full: Counter[str] = Counter()
    for _ in range(30):
        subset[strategy.order([a, b])[0].name] += 1
        full[strategy.order([a, b, c])[0].name] += 1
    # a position counter shared by both lists would hand the 2-list 'a' on every call
    assert abs(subset["a"] - subset["b"]) <= 2
    # c is only offered in the 3-list, which makes up for it: everyone ends up with a fair share
    assert full["c"] >= 10
    assert min((subset + full).values()) >= 15


def test_round_robin_puts_a_new_deployment_first_on_its_next_turn() -> None:
    a, b, c = Dep("a"), Dep("b"), Dep("c")
    strategy = RoundRobin()
    strategy.order([a, b])
    strategy.order([a, b])
    assert strategy.order([a, b, c])[0] is c
    assert [d.name for d in strategy.order([a, b, c])] == ["a", "b", "c"]


# --- least in flight ---------------------------------------------------------------------------------


def test_least_in_flight_picks_the_idle_one() -> None:
    busy, idle, busier = Dep("busy"), Dep("idle"), Dep("busier")
    busy.stats.in_flight = 3
    busier.stats.in_flight = 9
    strategy = LeastInFlight(random.Random(1))
    for _ in range(100):
        assert [d.name for d in strategy.order([busy, busier, idle])] == ["idle", "busy", "busier"]


def test_least_in_flight_breaks_ties_by_weight() -> None:
    deps = [Dep("a", 1), Dep("b", 3)]
    draws = 20_000
    counts = _firsts(LeastInFlight(random.Random(5)), deps, draws)
    assert abs(counts["b"] / draws - 0.75) < 0.01


# --- lowest latency ----------------------------------------------------------------------------------


def _measured(name: str, seconds: float) -> Dep:
    dep = Dep(name)
    dep.stats.finished(seconds, ok=True)
    return dep


def test_lowest_latency_prefers_the_fast_one_and_explores_a_little() -> None:
    fast, slow = _measured("fast", 0.1), _measured("slow", 0.9)
    draws = 20_000
    counts = _firsts(LowestLatency(random.Random(11), explore=0.05), [slow, fast], draws)
    assert abs(counts["slow"] / draws - 0.05) < 0.01


def test_lowest_latency_without_exploration_is_a_sort() -> None:
    deps = [_measured("c", 0.3), _measured("a", 0.1), _measured("b", 0.2)]
    strategy = LowestLatency(random.Random(0), explore=0.0)
    for _ in range(100):
        assert [d.name for d in strategy.order(deps)] == ["a", "b", "c"]


def test_lowest_latency_tries_unmeasured_deployments_first() -> None:
    fast, new = _measured("fast", 0.01), Dep("new")
    strategy = LowestLatency(random.Random(0), explore=0.0)
    assert [d.name for d in strategy.order([fast, new])] == ["new", "fast"]
    new.stats.finished(0.5, ok=True)
    assert [d.name for d in strategy.order([fast, new])] == ["fast", "new"]


def test_lowest_latency_re_measures_a_recovered_deployment() -> None:
    fast, recovered = _measured("fast", 0.2), _measured("recovered", 5.0)
    strategy = LowestLatency(random.Random(2))
    firsts: list[str] = []
    for _ in range(2_000):
        first = strategy.order([fast, recovered])[0]
        first.stats.finished(0.1 if first is recovered else 0.2, ok=True)  # recovered is now faster
        firsts.append(first.name)
    assert firsts[:100].count("fast") > 90  # at first the old figure keeps it in second place
    assert firsts[-500:].count("recovered") > 450  # exploration re-measured it, and it won its place back


def test_lowest_latency_refuses_a_share_outside_0_1() -> None:
    with pytest.raises(ValueError):
        LowestLatency(random.Random(0), explore=1.5)


# --- cost --------------------------------------------------------------------------------------------


def test_cost_aware_prefers_the_cheap_one() -> None:
    cheap = Dep("cheap", price=Price(input=0.15, output=0.6))
    dear = Dep("dear", price=Price(input=2.5, output=10.0))
    strategy = CostAware(random.Random(0))
    for _ in range(100):
        assert [d.name for d in strategy.order([dear, cheap])] == ["cheap", "dear"]


def test_cost_aware_respects_token_estimates() -> None:
    cheap_input = Dep("cheap_input", price=Price(input=1.0, output=20.0))
    cheap_output = Dep("cheap_output", price=Price(input=5.0, output=5.0))
    strategy = CostAware(random.Random(0))
    # a long prompt with a short answer: 10k*1 + 100*20 = 12k < 10k*5 + 100*5 = 50.5k
    assert strategy.order([cheap_output, cheap_input], estimated_tokens=(10_000, 100))[0] is cheap_input
    # a short prompt with a long answer: 100*1 + 10k*20 = 200.1k > 100*5 + 10k*5 = 50.5k
    assert strategy.order([cheap_input, cheap_output], estimated_tokens=(100, 10_000))[0] is cheap_output
    # no estimate: 1 + 20 = 21 > 5 + 5 = 10
    assert strategy.order([cheap_input, cheap_output])[0] is cheap_output


def test_cost_aware_breaks_ties_by_weight() -> None:
    deps = [
        Dep("a", 1, price=Price(input=1)),
        Dep("b", 4, price=Price(input=1)),
        Dep("z", 9, price=Price(input=9)),
    ]
    draws = 20_000
    counts = _firsts(CostAware(random.Random(9)), deps, draws)
    assert counts["z"] == 0
    assert abs(counts["b"] / draws - 0.8) < 0.01


# --- tags --------------------------------------------------------------------------------------------


def test_filter_by_tags_keeps_exact_matches_in_order() -> None:
    eu_gold = Dep("eu_gold", tags={"region": "eu", "tier": "gold"})
    eu = Dep("eu", tags={"region": "eu"})
    us = Dep("us", tags={"region": "us"})
    deps = [eu_gold, us, eu]
    assert filter_by_tags(deps, {}) == deps
    assert filter_by_tags(deps, {"region": "eu"}) == [eu_gold, eu]
    assert filter_by_tags(deps, {"region": "eu", "tier": "gold"}) == [eu_gold]
    assert filter_by_tags(deps, {"region": "apac"}) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, {}),
        ("", {}),
        ("region=eu", {"region": "eu"}),
        (" region = eu , tier=gold ,", {"region": "eu", "tier": "gold"}),
        ("region=eu,region=eu", {"region": "eu"}),
        ("k=a=b", {"k": "a=b"}),
    ],
)
def test_parse_tags_header_accepts_name_value_pairs(value: str | None, expected: dict[str, str]) -> None:
    assert parse_tags_header(value) == expected


@pytest.mark.parametrize("value", ["region", "=eu", "region=", "region=eu,tier", "region=eu,region=us"])
def test_parse_tags_header_names_the_header_and_the_form(value: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_tags_header(value, header="x-my-tags")
    assert info.value.param == "x-my-tags"
    assert info.value.status == 400
    assert "region=eu,tier=gold" in info.value.message
    assert "x-my-tags" in info.value.message
