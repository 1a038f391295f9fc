"""Translate an Open Inference Protocol v2 server's error answers (``{"error": "..."}``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlace.core.errors import InterlaceError, UpstreamRejected
from interlace.providers._http import base_error, upstream_message

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["inference_v2_error"]

_CLIENT_STATUSES = frozenset({400, 404, 409, 413, 422})


def inference_v2_error(name: str, status: int, body: bytes, headers: Mapping[str, str]) -> InterlaceError:
    message = upstream_message(body)
    if status in _CLIENT_STATUSES:
        return UpstreamRejected(message, upstream_status=status)
    return base_error(name, status, body, headers)
