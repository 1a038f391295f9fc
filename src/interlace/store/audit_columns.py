"""The audit log's column facts that its writer needs without SQLAlchemy's table definitions."""

from __future__ import annotations

__all__ = ["HEAD_ID"]

HEAD_ID = 1
"""The key of the one row of ``audit_head``."""
