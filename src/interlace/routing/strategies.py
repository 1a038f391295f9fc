"""Routing strategies: the preference order of an alias's deployments for one request.

A strategy's :meth:`~RoutingStrategy.order` returns *every* candidate, best first; the router tries
them in that order and skips the ones whose breaker is open. Strategies are pure apart from their
random source and, for :class:`RoundRobin`, a per-instance table of who went first last: build one
instance per model alias and keep it for the router's life.

Weighted random orders (and tie-breaks in the other strategies) use Efraimidis-Spirakis keys
``u ** (1 / weight)``, ``u`` uniform in [0, 1): sorting by descending key is weighted random sampling
without replacement, so the first place goes to each candidate with probability
``weight / sum(weights)``.

Also here: :func:`filter_by_tags` (deployments carrying the tags a request or rule requires) and
:func:`parse_tags_header` (the ``x-interlace-tags: region=eu,tier=gold`` request header).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar, assert_never

from interlace.core.errors import RequestError

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping, Sequence

    from interlace.config.schema import Price, Strategy
    from interlace.routing.stats import DeploymentStats

__all__ = [
    "Candidate",
    "CandidateT",
    "CostAware",
    "LeastInFlight",
    "LowestLatency",
    "RoundRobin",
    "RoutingStrategy",
    "WeightedRandom",
    "build_strategy",
    "filter_by_tags",
    "parse_tags_header",
]

_PER_MILLION = 1e-6
_MAX_ECHO = 100


class Candidate(Protocol):
    """What a strategy reads of a deployment (attributes or read-only properties both fit)."""

    @property
    def name(self) -> str: ...
    @property
    def weight(self) -> float: ...
    @property
    def tags(self) -> Mapping[str, str]: ...
    @property
    def price(self) -> Price: ...
    @property
    def stats(self) -> DeploymentStats: ...


CandidateT = TypeVar("CandidateT", bound=Candidate)


class RoutingStrategy(Protocol):
    """Orders an alias's deployments for one request."""

    def order(
        self, candidates: Sequence[CandidateT], *, estimated_tokens: tuple[int, int] | None = None
    ) -> list[CandidateT]:
        """All ``candidates``, most preferred first.

        ``estimated_tokens`` is ``(input_tokens, output_tokens)`` when the router can estimate them.
        """
        ...


class WeightedRandom:
    """Weighted random order without replacement (Efraimidis-Spirakis)."""

    __slots__ = ("_rng",)

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def order(
        self,
        candidates: Sequence[CandidateT],
        *,
        estimated_tokens: tuple[int, int] | None = None,  # noqa: ARG002 - the protocol's signature
    ) -> list[CandidateT]:
        if len(candidates) <= 1:
            return list(candidates)
        rnd = self._rng.random
        return sorted(candidates, key=lambda c: rnd() ** (1.0 / c.weight), reverse=True)


class RoundRobin:
    """Each deployment goes first in turn: least recently first, by name.

    The instance remembers, per deployment name, the tick at which that deployment was last put
    first; candidates are ordered by that tick, oldest first (never-first ones before all others, in
    the order given). Over a fixed list this is plain rotation: A B C, B C A, C A B, A B C …

    Keying on names rather than on a position counter keeps the load fair when the router passes
    different subsets (candidates filtered by required tags, a deployment removed): the member of the
    subset that went first longest ago goes first, so every deployment gets its share of first places
    over all requests, whereas a position counter shared by lists of different lengths can lock one
    subset onto one member (a 2-list seen on every other call of a counter always gets index 0). A
    deployment added later has never gone first and so goes first on
    its next turn; names of removed deployments stay in the table (one int each) — build a new
    instance when the configuration is reloaded. Weights are ignored.
    """

    __slots__ = ("_last", "_tick")

    def __init__(self) -> None:
        self._tick = 0
        self._last: dict[str, int] = {}

    def order(
        self,
        candidates: Sequence[CandidateT],
        *,
        estimated_tokens: tuple[int, int] | None = None,  # noqa: ARG002 - the protocol's signature
    ) -> list[CandidateT]:
        if not candidates:
            return []
        last = self._last
        ordered = (
            sorted(candidates, key=lambda c: last.get(c.name, -1)) if len(candidates) > 1 else [candidates[0]]
        )
        self._tick += 1
        last[ordered[0].name] = self._tick
        return ordered


class LeastInFlight:
    """Fewest attempts in flight first; equal counts in weighted random order."""

    __slots__ = ("_rng",)

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def order(
        self,
        candidates: Sequence[CandidateT],
        *,
        estimated_tokens: tuple[int, int] | None = None,  # noqa: ARG002 - the protocol's signature
    ) -> list[CandidateT]:
        if len(candidates) <= 1:
            return list(candidates)
        rnd = self._rng.random
        # in_flight - key lies in (in_flight - 1, in_flight]: counts order first, keys break ties
        return sorted(candidates, key=lambda c: c.stats.in_flight - rnd() ** (1.0 / c.weight))


class LowestLatency:
    """Lowest latency EWMA first, unmeasured deployments before all, with a little exploration.

    Deployments without a latency figure yet come first (in weighted random order among themselves),
    so that they get measured. With probability ``explore`` one of the other candidates, chosen
    uniformly, is moved to the front: a deployment that was slow once is re-measured now and then
    and can win its place back when it recovers.
    """

    __slots__ = ("_explore", "_rng")

    def __init__(self, rng: random.Random, explore: float = 0.05) -> None:
        if not 0.0 <= explore <= 1.0:
            raise ValueError(f"explore must be in [0, 1], got {explore}")
        self._rng = rng
        self._explore = explore

    def order(
        self,
        candidates: Sequence[CandidateT],
        *,
        estimated_tokens: tuple[int, int] | None = None,  # noqa: ARG002 - the protocol's signature
    ) -> list[CandidateT]:
        n = len(candidates)
        if n <= 1:
            return list(candidates)
        rng = self._rng
        rnd = rng.random

        def key(c: CandidateT) -> tuple[int, float]:
            ewma = c.stats.ewma_latency
            return (0, -(rnd() ** (1.0 / c.weight))) if ewma is None else (1, ewma)

        ordered = sorted(candidates, key=key)
        if self._explore and rnd() < self._explore:
            ordered.insert(0, ordered.pop(1 + rng.randrange(n - 1)))
        return ordered


class CostAware:
    """Cheapest first, by the estimated cost of this request; equal costs in weighted random order.

    With ``estimated_tokens=(input, output)`` the cost is ``input * price.input + output *
    price.output`` per million tokens; without an estimate, ``price.input + price.output``.
    """

    __slots__ = ("_rng",)

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def order(
        self, candidates: Sequence[CandidateT], *, estimated_tokens: tuple[int, int] | None = None
    ) -> list[CandidateT]:
        if len(candidates) <= 1:
            return list(candidates)
        rnd = self._rng.random
        if estimated_tokens is None:
            tokens_in = tokens_out = 1.0
        else:
            tokens_in = estimated_tokens[0] * _PER_MILLION
            tokens_out = estimated_tokens[1] * _PER_MILLION

        def key(c: CandidateT) -> tuple[float, float]:
            price = c.price
            cost = tokens_in * price.input + tokens_out * price.output
            return (cost, -(rnd() ** (1.0 / c.weight)))

        return sorted(candidates, key=key)


def build_strategy(name: Strategy, rng: random.Random) -> RoutingStrategy:
    """The strategy configured as ``strategy: NAME`` on a model alias (one instance per alias)."""
    match name:
        case "weighted":
            return WeightedRandom(rng)
        case "round_robin":
            return RoundRobin()
        case "least_in_flight":
            return LeastInFlight(rng)
        case "lowest_latency":
            return LowestLatency(rng)
        case "cost":
            return CostAware(rng)
        case _:
            assert_never(name)


def filter_by_tags(candidates: Sequence[CandidateT], required: Mapping[str, str]) -> list[CandidateT]:
    """The candidates whose tags include every ``required`` key with exactly its value."""
    if not required:
        return list(candidates)
    wanted = required.items()
    return [c for c in candidates if c.tags.items() >= wanted]


def parse_tags_header(value: str | None, *, header: str = "x-interlace-tags") -> dict[str, str]:
    """Required tags from a request header: ``region=eu,tier=gold`` → ``{"region": "eu", ...}``.

    Whitespace around names and values is ignored, and so are empty items (``region=eu,``). An
    item without ``=``, with an empty name or value, or a name given twice with different values is
    a :class:`RequestError` whose ``param`` is ``header``.
    """
    if value is None:
        return {}
    tags: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        key, val = key.strip(), val.strip()
        if not (sep and key and val) or tags.get(key, val) != val:
            shown = value if len(value) <= _MAX_ECHO else value[:_MAX_ECHO] + "…"
            raise RequestError(
                f"The {header} header must be comma-separated name=value pairs with distinct names, "
                f"e.g. '{header}: region=eu,tier=gold'; got {shown!r}.",
                param=header,
            )
        tags[key] = val
    return tags
