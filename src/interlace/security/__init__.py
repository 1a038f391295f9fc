"""Policies every request passes: identity, scopes, residency, PII masking, quotas, budgets, audit."""

__all__: list[str] = []
