"""Test support for observability: collect a gateway's request records, parse its ``/metrics``."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from interlace.observability.observer import RequestObserver
from interlace.observability.record import RequestRecord


class Records(RequestObserver):
    """An observer keeping every record it is given (from the gateway's thread)."""

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []
        self._changed = threading.Condition()

    def observe(self, record: RequestRecord) -> None:
        with self._changed:
            self.records.append(record)
            self._changed.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> list[RequestRecord]:
        """The records once there are ``count`` (a stream is recorded after its response closes)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.records) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    msg = f"{len(self.records)} records after {timeout}s, expected {count}"
                    raise AssertionError(msg)
                self._changed.wait(left)
            return list(self.records)


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


class Scrape:
    """One parsed ``/metrics`` page."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [
            Sample(sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels`` (0 when none)."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def series(self, name: str) -> list[dict[str, str]]:
        return [s.labels for s in self.samples if s.name == name]


def scrape(url: str) -> Scrape:
    reply = httpx.get(f"{url}/metrics", timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    return Scrape(reply.text)
