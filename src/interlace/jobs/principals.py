"""A job runs as the principal who submitted it: stored with the job (never a secret), rebuilt to run."""

from __future__ import annotations

from typing import Any

from interlace.core.principal import Limits, Principal

__all__ = ["principal_from_dict", "principal_to_dict", "tenant_key", "tenant_scope"]


def principal_to_dict(principal: Principal) -> dict[str, Any]:
    limits = principal.limits
    return {
        "kind": principal.kind,
        "id": principal.id,
        "tenant": principal.tenant,
        "team": principal.team,
        "subject": principal.subject,
        "models": sorted(principal.models) if principal.models is not None else None,
        "endpoints": sorted(principal.endpoints) if principal.endpoints is not None else None,
        "limits": {
            "rpm": limits.rpm,
            "tpm": limits.tpm,
            "budget_usd": limits.budget_usd,
            "soft_budget_usd": limits.soft_budget_usd,
            "budget_period": limits.budget_period,
        },
        "metadata": dict(principal.metadata),
    }


def principal_from_dict(data: dict[str, Any]) -> Principal:
    models = data.get("models")
    endpoints = data.get("endpoints")
    return Principal(
        kind=data["kind"],
        id=data["id"],
        tenant=data.get("tenant"),
        team=data.get("team"),
        subject=data.get("subject"),
        models=frozenset(models) if models is not None else None,
        endpoints=frozenset(endpoints) if endpoints is not None else None,
        limits=Limits(**(data.get("limits") or {})),
        metadata=dict(data.get("metadata") or {}),
    )


def tenant_key(principal: Principal) -> str:
    """The tenant column of what ``principal`` stores: ``''`` for the operator (no tenant)."""
    return principal.tenant or ""


def tenant_scope(principal: Principal) -> str | None:
    """What ``principal`` may read: its tenant's rows, or every tenant's (``None``) for the operator."""
    return None if principal.is_operator else tenant_key(principal)
