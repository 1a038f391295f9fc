"""Translate an OpenAI-compatible upstream's error answers into the Interlace error tree."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from interlace.core.errors import (
    ContentPolicyViolation,
    ContextWindowExceeded,
    InterlaceError,
    UpstreamRejected,
)
from interlace.providers._http import base_error, upstream_message

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["openai_error"]

_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_POLICY_CODES = frozenset({"content_filter", "content_policy_violation"})
_CLIENT_STATUSES = frozenset({400, 409, 413, 415, 422})


def openai_error(name: str, status: int, body: bytes, headers: Mapping[str, str]) -> InterlaceError:
    message = upstream_message(body)
    code, param = _code_and_param(body)
    if code in _CONTEXT_CODES:
        return ContextWindowExceeded(message, param=param or "messages")
    if code in _POLICY_CODES:
        return ContentPolicyViolation(message, param=param)
    if status in _CLIENT_STATUSES:
        return UpstreamRejected(message, upstream_status=status, param=param, code=code)
    return base_error(name, status, body, headers)


def _code_and_param(body: bytes) -> tuple[str | None, str | None]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return None, None
    code, param = error.get("code"), error.get("param")
    return (str(code) if code else None), (str(param) if param else None)
