"""Traffic rules: send matching requests to another model alias, or split them over several, stickily.

Rules are tried in order and the first whose ``match`` holds decides; when none does, the requested
model is served unchanged. A rule matches when every condition it sets holds:

- ``model``: the alias the client asked for equals it;
- ``headers``: each named header is present with exactly that value (``'*'``: present at all); header
  names are compared case-insensitively, values exactly;
- ``metadata``: likewise, on the request's metadata (keys compared exactly);
- ``api_keys`` / ``tenants``: the caller's key id / tenant is one of those listed.

A split rule assigns each request to an arm. The assignment is sticky: the rule's name and the
sticky value (``user`` → the body's ``user``, ``key`` → the API key id, ``header:NAME``,
``metadata:NAME``) are hashed with BLAKE2b — the same in every gateway process, unlike ``hash()`` —
to a point in [0, 1), and the arms own consecutive slices of [0, 1) sized by their relative weights.
Growing an arm's weight therefore keeps the callers it already had (for the first and last arms of
the list). A request without a sticky value is assigned with the random source, by weight.

Everything that does not depend on the request is computed in :class:`TrafficRules`'s constructor;
fixed-model rules and every arm of a split rule have their :class:`RouteDecision` prebuilt.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate
from types import MappingProxyType
from typing import TYPE_CHECKING

from interlace.core.errors import ConfigError

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping, Sequence

    from interlace.config.schema import TrafficRule

__all__ = ["RequestFacts", "RouteDecision", "TrafficRules"]

_EMPTY: Mapping[str, str] = MappingProxyType({})
_SCALE = 2.0**-64
_SHOW = 64
_UNCHANGED_CACHE = 1024


def _empty() -> Mapping[str, str]:
    return _EMPTY  # shared and read-only: a default that costs no allocation


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What rules can match on, taken from one request."""

    model: str
    headers: Mapping[str, str] = field(default_factory=_empty)
    """Request headers by lower-cased name."""
    api_key: str | None = None
    """The caller's API key id."""
    tenant: str | None = None
    user: str | None = None
    """The body's ``user`` field."""
    metadata: Mapping[str, str] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The alias to serve and why: the rule that matched (if any) and the split arm (if any)."""

    model: str
    rule: str | None = None
    arm: int | None = None
    require_tags: Mapping[str, str] = field(default_factory=_empty)


def _bucket(seeded: hashlib.blake2b, value: str) -> float:
    """A stable point in [0, 1): BLAKE2b-64 of ``rule name, NUL, value``, big-endian, over 2**64.

    ``seeded`` has already hashed the rule's name and the NUL; copying it is cheaper than rehashing.
    """
    hasher = seeded.copy()
    hasher.update(value.encode("utf-8", "surrogatepass"))  # a lone surrogate from JSON must not raise
    return int.from_bytes(hasher.digest(), "big") * _SCALE


def _show(value: str) -> str:
    return repr(value if len(value) <= _SHOW else value[:_SHOW] + "…")


class _Rule:
    """One traffic rule, compiled."""

    __slots__ = (
        "api_keys",
        "bounds",
        "cumulative",
        "decisions",
        "headers",
        "metadata",
        "model",
        "name",
        "seeded",
        "source",
        "sticky_field",
        "sticky_kind",
        "tenants",
    )

    def __init__(self, rule: TrafficRule) -> None:
        self.source = rule
        self.name = rule.name
        match = rule.match
        self.model = match.model
        self.headers = tuple((k.lower(), v) for k, v in match.headers.items())
        self.metadata = tuple(match.metadata.items())
        self.api_keys = frozenset(match.api_keys)
        self.tenants = frozenset(match.tenants)
        self.sticky_kind, self.sticky_field = _parse_sticky(rule)
        self.seeded = hashlib.blake2b(rule.name.encode() + b"\x00", digest_size=8)
        tags: Mapping[str, str] = MappingProxyType(dict(rule.require_tags)) if rule.require_tags else _EMPTY
        if rule.split:
            total = sum(arm.weight for arm in rule.split)
            self.cumulative = tuple(w / total for w in accumulate(arm.weight for arm in rule.split))
            # upper ends of all arms but the last, which takes the rest whatever the rounding
            self.bounds = self.cumulative[:-1]
            self.decisions = tuple(
                RouteDecision(arm.model, rule.name, i, tags) for i, arm in enumerate(rule.split)
            )
        else:
            assert rule.model is not None  # the schema requires exactly one of model and split
            self.cumulative = ()
            self.bounds = ()
            self.decisions = (RouteDecision(rule.model, rule.name, None, tags),)

    def matches(self, facts: RequestFacts) -> bool:
        if self.model is not None and facts.model != self.model:
            return False
        if self.api_keys and facts.api_key not in self.api_keys:
            return False
        if self.tenants and facts.tenant not in self.tenants:
            return False
        return _all_hold(self.headers, facts.headers) and _all_hold(self.metadata, facts.metadata)

    def sticky_value(self, facts: RequestFacts) -> str | None:
        kind = self.sticky_kind
        if kind == "user":
            value = facts.user
        elif kind == "key":
            value = facts.api_key
        elif kind == "header":
            value = facts.headers.get(self.sticky_field)
        else:
            value = facts.metadata.get(self.sticky_field)
        return value or None

    def mismatch(self, facts: RequestFacts) -> str | None:
        """Why the rule does not match, or ``None`` when it does (the slow twin of :meth:`matches`)."""
        if self.model is not None and facts.model != self.model:
            return f"model {_show(facts.model)} is not {_show(self.model)}"
        if self.api_keys and facts.api_key not in self.api_keys:
            return f"API key {facts.api_key or 'none'} is not one of {', '.join(sorted(self.api_keys))}"
        if self.tenants and facts.tenant not in self.tenants:
            return f"tenant {facts.tenant or 'none'} is not one of {', '.join(sorted(self.tenants))}"
        for what, wanted, given in (
            ("header", self.headers, facts.headers),
            ("metadata", self.metadata, facts.metadata),
        ):
            for name, want in wanted:
                got = given.get(name)
                if got is None:
                    return f"{what} {name} is absent"
                if want not in ("*", got):
                    return f"{what} {name} is {_show(got)}, not {_show(want)}"
        return None

    def conditions(self) -> str:
        parts = [f"model={self.model}"] if self.model is not None else []
        parts += [f"header {k}={v}" for k, v in self.headers]
        parts += [f"metadata {k}={v}" for k, v in self.metadata]
        if self.api_keys:
            parts.append(f"api_keys={','.join(sorted(self.api_keys))}")
        if self.tenants:
            parts.append(f"tenants={','.join(sorted(self.tenants))}")
        return "; ".join(parts) or "every request"


def _all_hold(wanted: tuple[tuple[str, str], ...], given: Mapping[str, str]) -> bool:
    for name, want in wanted:
        got = given.get(name)
        if got is None or want not in ("*", got):
            return False
    return True


def _parse_sticky(rule: TrafficRule) -> tuple[str, str]:
    kind, sep, name = rule.sticky.partition(":")
    if not sep and kind in ("user", "key"):
        return kind, ""
    if sep and name and kind in ("header", "metadata"):
        return kind, name.lower() if kind == "header" else name
    raise ConfigError(
        f"rule '{rule.name}': sticky must be 'user', 'key', 'header:NAME' or 'metadata:NAME', "
        f"not '{rule.sticky}'"
    )


class TrafficRules:
    """The configured rules, compiled; :meth:`decide` picks the alias for one request."""

    __slots__ = ("_rng", "_rules", "_unchanged")

    def __init__(self, rules: Sequence[TrafficRule], *, rng: random.Random) -> None:
        compiled = tuple(_Rule(rule) for rule in rules)
        names = [r.name for r in compiled]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(
                f"traffic rule names must be unique (they seed sticky splits): {', '.join(duplicates)}"
            )
        self._rules = compiled
        self._rng = rng
        self._unchanged: dict[str, RouteDecision] = {}  # requested model → its no-match decision

    def __len__(self) -> int:
        return len(self._rules)

    def decide(self, facts: RequestFacts) -> RouteDecision:
        """The alias to serve: the first matching rule's target, else the requested model."""
        for rule in self._rules:
            if rule.matches(facts):
                decisions = rule.decisions
                if len(decisions) == 1:
                    return decisions[0]
                value = rule.sticky_value(facts)
                point = self._rng.random() if value is None else _bucket(rule.seeded, value)
                return decisions[bisect_right(rule.bounds, point)]
        unchanged = self._unchanged.get(facts.model)
        if unchanged is None:
            if len(self._unchanged) >= _UNCHANGED_CACHE:
                self._unchanged.clear()  # model names come from clients: keep the cache bounded
            unchanged = self._unchanged[facts.model] = RouteDecision(facts.model, None, None, _EMPTY)
        return unchanged

    def explain(self, facts: RequestFacts) -> list[str]:
        """Human-readable lines: each rule considered, why it did or did not match, and the outcome.

        A split without a sticky value draws an arm from the random source, as :meth:`decide` does.
        """
        lines = [f"requested model: {facts.model}"]
        chosen: _Rule | None = None
        for rule in self._rules:
            if chosen is not None:
                lines.append(f"rule '{rule.name}': not considered, rule '{chosen.name}' matched first")
                continue
            reason = rule.mismatch(facts)
            if reason is None:
                lines.append(f"rule '{rule.name}': matches ({rule.conditions()})")
                chosen = rule
            else:
                lines.append(f"rule '{rule.name}': does not match, {reason}")
        if chosen is None:
            verdict = "no rule matches" if self._rules else "no rules configured"
            lines.append(f"{verdict}: serving {facts.model} unchanged")
            return lines
        lines += self._explain_target(chosen, facts)
        return lines

    def _explain_target(self, rule: _Rule, facts: RequestFacts) -> list[str]:
        tags = rule.decisions[0].require_tags
        suffix = f", only deployments tagged {', '.join(f'{k}={v}' for k, v in tags.items())}" if tags else ""
        if len(rule.decisions) == 1:
            return [f"serving {rule.decisions[0].model} (rule '{rule.name}' routes to it){suffix}"]
        split = rule.source.split
        total = sum(arm.weight for arm in split)
        lines = [
            f"split over {len(split)} arms: "
            + ", ".join(f"[{i}] {arm.model} {arm.weight / total:.1%}" for i, arm in enumerate(split))
        ]
        sticky = rule.source.sticky
        value = rule.sticky_value(facts)
        if value is None:
            point = self._rng.random()
            lines.append(f"no sticky value ({sticky} is missing): arm drawn at random by weight, {point:.4f}")
        else:
            point = _bucket(rule.seeded, value)
            lines.append(f"sticky on {sticky}={_show(value)}: hashes to {point:.4f}, the same every time")
        arm = bisect_right(rule.bounds, point)
        low = rule.cumulative[arm - 1] if arm else 0.0
        lines.append(
            f"arm {arm} owns [{low:.4f}, {rule.cumulative[arm]:.4f}): "
            f"serving {split[arm].model} (rule '{rule.name}', arm {arm}){suffix}"
        )
        return lines
