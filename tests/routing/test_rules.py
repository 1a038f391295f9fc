"""Traffic rules: first match wins, splits follow their weights and stay sticky across processes."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlace.config.schema import RuleMatch, SplitArm, TrafficRule
from interlace.core.errors import ConfigError
from interlace.routing.rules import RequestFacts, RouteDecision, TrafficRules


def _canary(weight: float = 5, sticky: str = "user", **match: object) -> TrafficRule:
    return TrafficRule(
        name="canary",
        match=RuleMatch(model="gpt", **match),
        split=[
            SplitArm(model="gpt-stable", weight=100 - weight),
            SplitArm(model="gpt-canary", weight=weight),
        ],
        sticky=sticky,
    )


def _rules(*rules: TrafficRule, seed: int = 0) -> TrafficRules:
    return TrafficRules(rules, rng=random.Random(seed))


# --- splits ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [5, 10, 50])
def test_canary_share_over_distinct_users_is_the_configured_weight(weight: float) -> None:
    rules = _rules(_canary(weight))
    draws = 10_000
    canary = sum(
        rules.decide(RequestFacts(model="gpt", user=f"user-{i}")).model == "gpt-canary" for i in range(draws)
    )
    assert abs(canary / draws - weight / 100) < 0.01


def test_a_sticky_user_never_changes_arm_within_or_across_processes() -> None:
    first, second = _rules(_canary(50), seed=1), _rules(_canary(50), seed=2)
    for user in ("alice", "bob", "carol", "dave"):
        facts = RequestFacts(model="gpt", user=user)
        arms = {first.decide(facts).arm for _ in range(1_000)}
        arms |= {second.decide(facts).arm for _ in range(1_000)}
        assert len(arms) == 1, user


def test_growing_the_canary_keeps_the_users_it_already_had() -> None:
    small, large = _rules(_canary(5)), _rules(_canary(20))
    users = [RequestFacts(model="gpt", user=f"u{i}") for i in range(2_000)]
    in_small = {f.user for f in users if small.decide(f).model == "gpt-canary"}
    in_large = {f.user for f in users if large.decide(f).model == "gpt-canary"}
    assert in_small
    assert in_small <= in_large


def test_the_sticky_hash_is_pinned_so_upgrades_do_not_reshuffle_callers() -> None:
    rules = _rules(_canary(50))
    for user in ("alice", "bob", "ünïcode", "x" * 300):
        digest = hashlib.blake2b(b"canary\x00" + user.encode(), digest_size=8).digest()
        point = int.from_bytes(digest, "big") / 2**64
        assert rules.decide(RequestFacts(model="gpt", user=user)).arm == (0 if point < 0.5 else 1)


def test_a_lone_surrogate_in_a_sticky_value_is_hashed_not_raised() -> None:
    rules = _rules(_canary(50))
    facts = RequestFacts(model="gpt", user="\ud800x")
    assert {rules.decide(facts).arm for _ in range(50)} in ({0}, {1})


@pytest.mark.parametrize(
    ("sticky", "facts"),
    [
        ("key", {"api_key": "key-1"}),
        ("header:X-Session", {"headers": {"x-session": "s-1"}}),
        ("metadata:team", {"metadata": {"team": "search"}}),
    ],
)
def test_other_sticky_fields_are_sticky(sticky: str, facts: dict[str, object]) -> None:
    rule = _canary(50, sticky=sticky)
    one, two = _rules(rule, seed=1), _rules(rule, seed=2)
    request = RequestFacts(model="gpt", **facts)  # type: ignore[arg-type]
    assert (
        len({one.decide(request).arm for _ in range(200)} | {two.decide(request).arm for _ in range(200)})
        == 1
    )


def test_the_sticky_value_of_another_field_does_not_count() -> None:
    rules = _rules(_canary(50, sticky="key"))
    arms = {rules.decide(RequestFacts(model="gpt", user="alice")).arm for _ in range(200)}
    assert arms == {0, 1}  # no API key: assigned at random, although a user is given


def test_without_a_sticky_value_arms_still_follow_the_weights() -> None:
    rules = _rules(_canary(25), seed=3)
    draws = 20_000
    counts = Counter(rules.decide(RequestFacts(model="gpt", user="")).model for _ in range(draws))
    assert abs(counts["gpt-canary"] / draws - 0.25) < 0.01


@settings(max_examples=100, deadline=None)
@given(
    weights=st.lists(st.floats(min_value=0.001, max_value=1000, allow_nan=False), min_size=1, max_size=6),
    value=st.text(min_size=1, max_size=40),
)
def test_any_sticky_value_maps_deterministically_to_an_arm(weights: list[float], value: str) -> None:
    rule = TrafficRule(
        name="ab",
        split=[SplitArm(model=f"m{i}", weight=w) for i, w in enumerate(weights)],
        sticky="metadata:who",
    )
    facts = RequestFacts(model="any", metadata={"who": value})
    decision = _rules(rule, seed=1).decide(facts)
    assert decision == _rules(rule, seed=2).decide(facts)
    assert decision.arm is not None
    assert 0 <= decision.arm < len(weights)
    assert decision.model == f"m{decision.arm}"
    assert decision.rule == "ab"


# --- matching ----------------------------------------------------------------------------------------


def _route(name: str, target: str, **match: object) -> TrafficRule:
    return TrafficRule(name=name, match=RuleMatch(**match), model=target)


def test_header_conditions_exact_and_present() -> None:
    rules = _rules(
        _route("gold", "big", headers={"X-Tier": "gold"}),
        _route("beta", "new", headers={"x-beta": "*"}),
    )
    assert rules.decide(RequestFacts(model="m", headers={"x-tier": "gold"})).model == "big"
    assert rules.decide(RequestFacts(model="m", headers={"x-tier": "silver"})).model == "m"
    assert rules.decide(RequestFacts(model="m", headers={"x-beta": ""})).model == "new"
    assert rules.decide(RequestFacts(model="m", headers={"x-tier": "Gold", "x-beta": "1"})).model == "new"


def test_metadata_conditions_exact_and_present() -> None:
    rules = _rules(_route("a", "x", metadata={"team": "search"}), _route("b", "y", metadata={"exp": "*"}))
    assert rules.decide(RequestFacts(model="m", metadata={"team": "search"})).model == "x"
    assert rules.decide(RequestFacts(model="m", metadata={"team": "ads", "exp": "7"})).model == "y"
    assert rules.decide(RequestFacts(model="m", metadata={"team": "ads"})).model == "m"


def test_api_key_tenant_and_model_conditions() -> None:
    rules = _rules(
        _route("keys", "k", api_keys=["key-1", "key-2"]),
        _route("tenants", "t", tenants=["acme"]),
        _route("model", "g", model="gpt"),
    )
    assert rules.decide(RequestFacts(model="m", api_key="key-2")).model == "k"
    assert rules.decide(RequestFacts(model="m", api_key="key-3", tenant="acme")).model == "t"
    assert rules.decide(RequestFacts(model="gpt", tenant="other")).model == "g"
    assert rules.decide(RequestFacts(model="claude")).model == "claude"


def test_every_condition_of_a_rule_must_hold() -> None:
    rules = _rules(_route("both", "x", model="gpt", tenants=["acme"], headers={"x-a": "1"}))
    assert rules.decide(RequestFacts(model="gpt", tenant="acme", headers={"x-a": "1"})).model == "x"
    assert rules.decide(RequestFacts(model="gpt", tenant="acme")).model == "gpt"
    assert rules.decide(RequestFacts(model="gpt", headers={"x-a": "1"})).model == "gpt"
    assert rules.decide(RequestFacts(model="other", tenant="acme", headers={"x-a": "1"})).model == "other"


def test_first_matching_rule_wins_and_carries_its_tags() -> None:
    first = TrafficRule(
        name="eu", match=RuleMatch(tenants=["acme"]), model="eu-model", require_tags={"region": "eu"}
    )
    rules = _rules(first, _route("catch-all", "default"))
    decision = rules.decide(RequestFacts(model="m", tenant="acme"))
    assert decision == RouteDecision(model="eu-model", rule="eu", arm=None, require_tags={"region": "eu"})
    assert rules.decide(RequestFacts(model="m")).rule == "catch-all"


def test_no_match_serves_the_requested_model_unchanged() -> None:
    decision = _rules(_canary()).decide(RequestFacts(model="claude", user="u"))
    assert decision == RouteDecision(model="claude", rule=None, arm=None)
    assert _rules().decide(RequestFacts(model="claude")).model == "claude"


def test_split_decisions_carry_rule_arm_and_tags() -> None:
    rule = TrafficRule(
        name="ab",
        split=[SplitArm(model="a", weight=1), SplitArm(model="b", weight=1)],
        require_tags={"tier": "gold"},
    )
    decision = _rules(rule).decide(RequestFacts(model="m", user="u1"))
    assert decision.rule == "ab"
    assert decision.model in {"a", "b"}
    assert decision.model == "ab"[decision.arm or 0]
    assert dict(decision.require_tags) == {"tier": "gold"}


@pytest.mark.parametrize("sticky", ["session", "header:", "metadata:", "user:x", "cookie:sid"])
def test_an_unknown_sticky_field_is_a_config_error(sticky: str) -> None:
    with pytest.raises(ConfigError, match="sticky must be"):
        _rules(_canary(sticky=sticky))


def test_duplicate_rule_names_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unique"):
        _rules(_route("same", "a"), _route("same", "b"))


# --- explain -----------------------------------------------------------------------------------------


def test_explain_names_each_rule_the_match_and_the_arm() -> None:
    rules = _rules(
        _route("gold", "big", headers={"x-tier": "gold"}),
        _canary(50),
        _route("later", "never"),
    )
    facts = RequestFacts(model="gpt", user="alice", headers={"x-tier": "silver"})
    lines = rules.explain(facts)
    text = "\n".join(lines)
    decision = rules.decide(facts)
    assert "rule 'gold': does not match, header x-tier is 'silver', not 'gold'" in text
    assert "rule 'canary': matches (model=gpt)" in text
    assert "rule 'later': not considered, rule 'canary' matched first" in text
    assert "sticky on user='alice'" in text
    assert f"serving {decision.model} (rule 'canary', arm {decision.arm})" in lines[-1]


def test_explain_without_a_match_or_a_sticky_value() -> None:
    rules = _rules(_canary(50))
    lines = rules.explain(RequestFacts(model="claude"))
    assert lines[-1] == "no rule matches: serving claude unchanged"
    assert "model 'claude' is not 'gpt'" in lines[1]
    random_lines = rules.explain(RequestFacts(model="gpt"))
    assert any("no sticky value (user is missing)" in line for line in random_lines)
    assert _rules().explain(RequestFacts(model="x"))[-1] == "no rules configured: serving x unchanged"


@settings(max_examples=100, deadline=None)
@given(
    model=st.sampled_from(["gpt", "claude"]),
    tenant=st.sampled_from([None, "acme", "other"]),
    headers=st.dictionaries(st.sampled_from(["x-tier", "x-beta"]), st.sampled_from(["gold", "silver", ""])),
    user=st.one_of(st.none(), st.text(max_size=8)),
)
def test_explain_agrees_with_decide(
    model: str, tenant: str | None, headers: dict[str, str], user: str | None
) -> None:
    rules = _rules(
        _route("gold", "big", headers={"x-tier": "gold"}, tenants=["acme"]),
        _route("beta", "new", headers={"x-beta": "*"}, model="claude"),
        _canary(30),
    )
    facts = RequestFacts(model=model, tenant=tenant, headers=headers, user=user)
    decision = rules.decide(facts)
    last = rules.explain(facts)[-1]
    if decision.rule is None:
        assert last == f"no rule matches: serving {model} unchanged"
    elif decision.arm is None or user:  # fixed target or sticky split: explain names the same outcome
        assert f"serving {decision.model} (rule '{decision.rule}'" in last
