"""Payload bytes ⇄ message payloads, the same for every broker.

A payload that is JSON decodes to its value; UTF-8 text that is not JSON becomes ``{"data": text}``;
other bytes become ``{"data_base64": …}``. Sinks always write the payload as compact JSON (UTF-8).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

__all__ = ["content_id", "decode_payload", "encode_payload"]


def decode_payload(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {"data_base64": base64.b64encode(data).decode("ascii")}
    try:
        return json.loads(text)
    except ValueError:
        return {"data": text}


def encode_payload(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def content_id(*parts: bytes | str) -> str:
    """A stable id for a message whose transport gives none: a digest of what identifies it."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") if isinstance(part, str) else part)
        digest.update(b"\x00")
    return "sha256:" + digest.hexdigest()[:32]
