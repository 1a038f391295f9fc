"""Counters and histograms kept as plain numbers, rendered by prometheus_client only when scraped.

prometheus_client's own metric objects take a lock per update (about 1 µs a counter increment, 2 µs a
histogram observation). Records are observed on the event loop's one thread, so the families here
are plain dictionaries — an increment is a dictionary update, a histogram observation a ``bisect``
— and :class:`Families` turns them into metric families at scrape time. Label values are tuples in
the family's label order; a family's series are exactly the tuples it was given (bounded by the
caller: see :mod:`interlace.observability.labels`).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from prometheus_client import Metric

__all__ = ["CounterFamily", "Families", "HistogramFamily"]


class CounterFamily:
    """A counter per label tuple (``NAME_total`` when exposed)."""

    __slots__ = ("doc", "labels", "name", "values")

    def __init__(self, name: str, doc: str, labels: Sequence[str]) -> None:
        self.name = name
        self.doc = doc
        self.labels = tuple(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, key: tuple[str, ...], amount: float = 1.0) -> None:
        values = self.values
        values[key] = values.get(key, 0.0) + amount

    def family(self) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for key, value in list(self.values.items()):
            family.add_metric(key, value)
        return family


class HistogramFamily:
    """A histogram per label tuple: counts per bucket (``value <= bound``) and the sum."""

    __slots__ = ("_bounds", "_les", "doc", "labels", "name", "series")

    def __init__(self, name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]) -> None:
        self.name = name
        self.doc = doc
        self.labels = tuple(labels)
        self._bounds = tuple(sorted(buckets))
        self._les = (*(repr(float(b)) for b in self._bounds), "+Inf")  # as Go formats finite bounds
        self.series: dict[tuple[str, ...], list[float]] = {}
        """Per label tuple: the count of each bucket (not cumulative), then the sum."""

    def observe(self, key: tuple[str, ...], value: float) -> None:
        counts = self._counts(key)
        counts[bisect_left(self._bounds, value)] += 1
        counts[-1] += value

    def observe_all(self, key: tuple[str, ...], values: Iterable[float]) -> None:
        """Several observations of one series."""
        counts = self._counts(key)
        bounds = self._bounds
        for value in values:
            counts[bisect_left(bounds, value)] += 1
            counts[-1] += value

    def _counts(self, key: tuple[str, ...]) -> list[float]:
        counts = self.series.get(key)
        if counts is None:
            counts = self.series[key] = [0.0] * (len(self._bounds) + 2)
        return counts

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        for key, counts in list(self.series.items()):
            total = 0.0
            buckets: list[tuple[str, float]] = []
            for le, count in zip(self._les, counts, strict=False):
                total += count
                buckets.append((le, total))
            family.add_metric(key, buckets, counts[-1])
        return family


class Families(Collector):
    """Exposes counter and histogram families to a registry."""

    def __init__(self, families: Iterable[CounterFamily | HistogramFamily]) -> None:
        self._families = tuple(families)

    def describe(self) -> Iterable[Metric]:
        return [f.family() for f in self._families]

    def collect(self) -> Iterable[Metric]:
        return [f.family() for f in self._families]
