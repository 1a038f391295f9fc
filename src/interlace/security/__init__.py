"""Policies every request passes: identity, scopes, residency, PII masking, quotas, budgets, audit."""
