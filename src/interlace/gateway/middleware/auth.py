"""Bearer-key authentication: ``Authorization: Bearer KEY`` (OpenAI) or ``x-api-key: KEY`` (Anthropic).

Health, metrics and API-description paths stay open so orchestrators can probe and scrape the gateway.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

import orjson

from interlace.core.errors import AuthenticationError
from interlace.gateway.errors import anthropic_error_body

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["MasterKeyAuth"]

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/metrics"})


class MasterKeyAuth:
    def __init__(self, app: ASGIApp, *, key: str) -> None:
        self.app = app
        self._key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        presented = _presented_key(scope["headers"])
        if presented is not None and hmac.compare_digest(presented, self._key):
            await self.app(scope, receive, send)
            return
        error = AuthenticationError(
            "Missing API key: send 'Authorization: Bearer <key>'."
            if presented is None
            else "Invalid API key."
        )
        anthropic = scope["path"].startswith("/v1/messages")
        body = orjson.dumps(anthropic_error_body(error) if anthropic else error.to_openai())
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _presented_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token:
                return token.strip()
        elif name == b"x-api-key" and value:
            return value.strip()
    return None
