"""The observer port: sinks that receive every finished request's record."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from interlace.observability.record import RequestRecord

__all__ = ["FanOut", "RequestObserver"]

log = logging.getLogger("interlace.observability")


class RequestObserver(Protocol):
    def observe(self, record: RequestRecord) -> None:
        """Take the record. Must not block or raise: queue anything slow for later."""
        ...


class FanOut:
    """Hands each record to every observer; one observer's failure never reaches the request."""

    __slots__ = ("_observers",)

    def __init__(self, observers: Sequence[RequestObserver] = ()) -> None:
        self._observers = tuple(observers)

    def add(self, observer: RequestObserver) -> None:
        self._observers = (*self._observers, observer)

    def observe(self, record: RequestRecord) -> None:
        for observer in self._observers:
            try:
                observer.observe(record)
            except Exception:
                log.exception("observer %r failed on request %s", observer, record.request_id)
