"""What a flow's parts may use: the runtime's router, gate, functions, state database, Redis, tracing.

A factory from :mod:`interlace.flows.registry` is called as ``factory(config, services)``;
``services.flow`` is the flow's name and ``services.part`` the part being built (``source``,
``sink:<name>``, ``dead_letter``, ``step:<name>``). A part that needs a service the process does not
have (Redis without ``redis:``, the database in a process without one) raises
:class:`~interlace.core.errors.ConfigError` through :meth:`FlowServices.need`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from interlace.core.errors import ConfigError
from interlace.core.principal import ANONYMOUS, Principal

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from interlace.config.schema import Config
    from interlace.functions.runner import FunctionRunner
    from interlace.gateway.recording import Recorder
    from interlace.observability.tracing import Tracing
    from interlace.routing.router import Router
    from interlace.security.gate import Gate
    from interlace.security.pii import PiiPolicy
    from interlace.store.database import Database

__all__ = ["FlowServices"]

T = TypeVar("T")


@dataclass(kw_only=True, slots=True)
class FlowServices:
    flow: str
    part: str = ""
    principal: Principal = ANONYMOUS
    """Who the flow's AI calls run as (``flows.<name>.principal``)."""
    config: Config | None = None
    router: Router | None = None
    gate: Gate | None = None
    functions: FunctionRunner | None = None
    recorder: Recorder | None = None
    """Records each AI call of a step as a request (event log, metrics, audit) and settles its admission."""
    database: Database | None = None
    redis: Redis | None = None
    redis_prefix: str = "interlace"
    pii: PiiPolicy | None = None
    tracing: Tracing | None = None
    state_dir: Path = field(default_factory=lambda: Path(".interlace"))
    extras: dict[str, Any] = field(default_factory=dict)

    def for_part(self, part: str) -> FlowServices:
        return dataclasses.replace(self, part=part)

    def need(self, value: T | None, what: str, fix: str) -> T:
        """``value``, or a configuration error naming the flow, the part, what is missing and the fix."""
        if value is None:
            raise ConfigError(f"flow '{self.flow}' ({self.part or 'flow'}) needs {what} — {fix}")
        return value
