"""Per-request routing context: what the caller asked for, and what the router did about it.

The gateway builds a :class:`RouteContext` from the request (headers, deadline, required tags); the
router fills in the outcome (which model and deployment answered, every attempt, whether a fallback
was used), and the gateway turns that into response headers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from interlace.core.principal import ANONYMOUS, Principal

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from interlace.core.errors import InterlaceError
    from interlace.core.operations import Operation
    from interlace.observability.spans import RequestTrace
    from interlace.routing.deployment import Deployment, ModelRoute

__all__ = ["Attempt", "DeploymentFilter", "RouteContext"]


@dataclass(slots=True, frozen=True)
class Attempt:
    """One call to one deployment."""

    model: str
    deployment: str
    outcome: str  # "ok" or the error code
    seconds: float
    message: str = ""

    def describe(self) -> str:
        text = f"{self.deployment} ({self.model}): {self.outcome} after {self.seconds * 1000:.0f} ms"
        return f"{text} — {self.message}" if self.message else text


class DeploymentFilter(Protocol):
    """A policy's restriction of the deployments one request may reach (residency rules).

    The router applies it to every candidate (primary, retries, fallbacks, stream recovery, shadow
    calls); when it leaves no deployment for the requested model and its fallbacks, the request is
    refused with :meth:`refuse`'s error.
    """

    def allows(self, deployment: Deployment) -> bool: ...

    def refuse(self, model: str, routes: Sequence[ModelRoute]) -> InterlaceError:
        """The error for a request to ``model`` none of whose ``routes``' deployments is allowed."""
        ...


@dataclass(slots=True)
class RouteContext:
    """Inputs from the request and the outcome of routing it."""

    deadline: float = field(default_factory=lambda: time.monotonic() + 600.0)
    """Absolute ``time.monotonic()`` after which no new attempt starts."""
    headers: Mapping[str, str] = field(default_factory=dict)
    required_tags: Mapping[str, str] = field(default_factory=dict)
    allow: DeploymentFilter | None = None
    """Set by a policy (residency) to keep the request on compliant deployments; None: every one."""
    principal: Principal = ANONYMOUS
    """Who is calling (:mod:`interlace.core.principal`): set by authentication, read by every policy."""
    user: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    shadow: bool = False
    """A mirrored call (:mod:`interlace.routing.shadow`): never billed to the caller's quota."""
    trace: RequestTrace | None = None
    """The request's server span when tracing is on (:mod:`interlace.observability.spans`), else None."""

    requested_model: str | None = None
    operation: Operation | None = None
    rule: str | None = None
    served_model: str | None = None
    deployment: str | None = None
    fallback: bool = False
    recovered: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    """What the policies decided (``pii:mask EMAIL_ADDRESS=2``, ``residency:eu`` …), for the audit log."""
    headers_out: dict[str, str] = field(default_factory=dict)
    """Response headers a policy adds (``x-ratelimit-*``)."""

    @property
    def api_key(self) -> str | None:
        """The caller's credential id (never a secret), or None for an open gateway."""
        return None if self.principal.kind == "anonymous" else self.principal.id

    @property
    def tenant(self) -> str | None:
        return self.principal.tenant

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def response_headers(self) -> dict[str, str]:
        """Headers that name who served the request, how many attempts it took and why."""
        headers = {"x-interlace-attempts": str(len(self.attempts))}
        if self.served_model is not None:
            headers["x-interlace-model"] = self.served_model
        if self.deployment is not None:
            headers["x-interlace-deployment"] = self.deployment
        if self.fallback:
            headers["x-interlace-fallback"] = "true"
        if self.rule is not None:
            headers["x-interlace-rule"] = self.rule
        if self.headers_out:
            headers.update(self.headers_out)
        return headers
