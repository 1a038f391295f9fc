"""The shared parts of flow configuration: what every connector and step config builds on.

Kept apart from :mod:`interlace.config.flows` so that connector config modules
(``interlace.flows.connectors.<type>.config``) can subclass these without importing the registry that
lists them (:mod:`interlace.flows.registry`), which :mod:`interlace.config.flows` reads.
"""

from __future__ import annotations

import random

from pydantic import Field

from interlace.config._base import Strict

__all__ = ["ConnectorConfig", "RetryPolicy", "StepConfigBase"]


class RetryPolicy(Strict):
    """Attempts of one step (or one sink write) with exponential backoff and full jitter."""

    attempts: int = Field(3, ge=1, le=100, description="Attempts in all, the first included.")
    backoff: float = Field(0.2, ge=0, description="Seconds; the n-th retry waits up to backoff * 2**n.")
    max_backoff: float = Field(10.0, ge=0, description="Cap of one wait, in seconds.")

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """The wait before retry number ``retry`` (0-based): full jitter under the exponential cap."""
        cap = min(self.max_backoff, self.backoff * (2**retry))
        return (rng or random).uniform(0, cap) if cap > 0 else 0.0


class ConnectorConfig(Strict):
    """A source or sink: ``type`` picks the connector (:mod:`interlace.flows.registry`)."""

    type: str


class StepConfigBase(Strict):
    """What every step has: its ``type``, an optional ``name`` (default ``<type>-<index>``), retries."""

    type: str
    name: str | None = Field(
        None, description="Shown in metrics and dead letters; default '<type>-<position>' (map-0)."
    )
    retry: RetryPolicy | None = Field(None, description="Default: the flow's retry.")
