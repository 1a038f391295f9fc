"""Observability: the per-request record, and the sinks that consume it (metrics, logs, event log, traces)."""

from interlace.observability.observer import FanOut, RequestObserver
from interlace.observability.record import RequestRecord, Usage

__all__ = ["FanOut", "RequestObserver", "RequestRecord", "Usage"]
