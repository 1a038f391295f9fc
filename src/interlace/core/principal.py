"""Who is calling: the authenticated identity every policy reads.

A :class:`Principal` is built by the authenticator (master key, virtual API key or OIDC bearer token)
and travels with the request on its :class:`~interlace.routing.context.RouteContext`. It never holds a
secret: ``id`` is the key's public id (``ik_…``), ``master``, or ``jwt:<issuer>#<subject>``.

Scopes are names of endpoint families — ``chat`` (``/v1/chat/completions`` and ``/v1/messages``),
``embeddings``, ``classify``, ``infer`` (``/v2``), ``functions``, ``jobs``, ``batches``, ``files``,
``usage``, ``flows`` (``/v1/flows/{name}/events``) — and model aliases; ``None`` means every one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ANONYMOUS", "ENDPOINTS", "Limits", "Principal", "PrincipalKind"]

PrincipalKind = Literal["master", "key", "token", "anonymous"]

ENDPOINTS: Final = frozenset(
    {"chat", "embeddings", "classify", "infer", "functions", "jobs", "batches", "files", "usage", "flows"}
)
"""The endpoint families a key or token can be scoped to."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Per-principal quotas and budget; ``None`` is unlimited (tenant and model limits still apply)."""

    rpm: int | None = None
    """Requests per minute."""
    tpm: int | None = None
    """Tokens (input + output) per minute."""
    budget_usd: float | None = None
    """Hard spend limit per ``budget_period``: requests beyond it are rejected."""
    soft_budget_usd: float | None = None
    """Spend per ``budget_period`` past which an alert is raised (logged, counted, evented)."""
    budget_period: Literal["day", "month", "total"] = "month"


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    kind: PrincipalKind
    id: str
    """The public id of the credential: never the secret."""
    tenant: str | None
    """Every key and token belongs to one tenant; ``None`` only for the master key and the anonymous
    caller of a gateway without authentication (the operator, who is no tenant)."""
    team: str | None = None
    subject: str | None = None
    """The end user, for tokens (``sub``) and keys created for one person."""
    models: frozenset[str] | None = None
    endpoints: frozenset[str] | None = None
    limits: Limits = field(default_factory=Limits)
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_operator(self) -> bool:
        """The master key (or an open gateway): may read every tenant's data and use the admin API."""
        return self.kind in {"master", "anonymous"}

    def may_use_model(self, alias: str) -> bool:
        return self.models is None or alias in self.models

    def may_call(self, endpoint: str) -> bool:
        return self.endpoints is None or endpoint in self.endpoints


ANONYMOUS: Final = Principal(kind="anonymous", id="anonymous", tenant=None)
"""The caller of a gateway that has no authentication configured."""
