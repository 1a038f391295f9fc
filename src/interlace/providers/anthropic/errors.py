"""Translate Anthropic's error answers (``{"type": "error", "error": {...}}``) into the Interlace tree."""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlace.core.errors import (
    ContentPolicyViolation,
    ContextWindowExceeded,
    InterlaceError,
    UpstreamError,
    UpstreamRejected,
)
from interlace.providers._http import base_error, upstream_message

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["anthropic_error"]

_CLIENT_STATUSES = frozenset({400, 409, 413, 422})
_OVERLOADED = 529


def anthropic_error(name: str, status: int, body: bytes, headers: Mapping[str, str]) -> InterlaceError:
    message = upstream_message(body)
    if status == _OVERLOADED:
        return UpstreamError(f"Deployment '{name}' is overloaded (529): {message}")
    lowered = message.lower()
    if status == 400 and ("prompt is too long" in lowered or "context window" in lowered):  # noqa: PLR2004
        return ContextWindowExceeded(message, param="messages")
    if status == 400 and "content filtering policy" in lowered:  # noqa: PLR2004
        return ContentPolicyViolation(message)
    if status in _CLIENT_STATUSES:
        return UpstreamRejected(message, upstream_status=status)
    return base_error(name, status, body, headers)
