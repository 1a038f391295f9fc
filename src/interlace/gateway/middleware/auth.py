"""Authentication: ``Authorization: Bearer KEY`` (OpenAI) or ``x-api-key: KEY`` (Anthropic) → a principal.

:class:`Authenticate` asks the runtime's :class:`~interlace.security.authn.Authenticator` who presents
the credential and puts the answer in ``scope[PRINCIPAL_SCOPE_KEY]``
(:func:`~interlace.gateway.identity.principal_of` reads it). A rejection is answered here: 401 with
``WWW-Authenticate: Bearer`` and an OpenAI-style body (Anthropic-style on ``/v1/messages``) — or 503
while a token issuer's signing keys could never be fetched — and is recorded (a
:class:`~interlace.observability.record.RequestRecord` with that status and the reason's code) for
the metrics, the request log and the audit log.

Health, metrics and API-description paths stay open so orchestrators can probe and scrape the gateway.
The middleware is installed only when authentication is enabled (:attr:`AuthConfig.enabled
<interlace.config.auth.AuthConfig.enabled>`); without it every caller is
:data:`~interlace.core.principal.ANONYMOUS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import orjson

from interlace.core.errors import AuthenticationError, InterlaceError
from interlace.gateway.errors import anthropic_error_body
from interlace.gateway.identity import PRINCIPAL_SCOPE_KEY

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from interlace.gateway.recording import Recorder
    from interlace.security.authn import Authenticator

__all__ = ["ADMIN_PREFIX", "OPEN_PATHS", "Authenticate", "presented_credential"]

OPEN_PATHS: Final = frozenset({"/healthz", "/readyz", "/openapi.json", "/metrics"})
ADMIN_PREFIX: Final = "/admin/"


class Authenticate:
    def __init__(
        self, app: ASGIApp, *, authenticator: Authenticator, recorder: Recorder | None = None
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        try:
            principal = await self.authenticator.authenticate(
                presented_credential(scope["headers"]), admin=path.startswith(ADMIN_PREFIX)
            )
        except InterlaceError as error:  # 401; or 503 while a token issuer's keys were never fetched
            if self.recorder is not None:
                self.recorder.rejected(scope, error)
            await _refuse(error, path, send)
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        await self.app(scope, receive, send)


def presented_credential(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The bearer token or ``x-api-key`` value, if any (undecodable bytes are no credential)."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip().decode("latin-1")
        elif name == b"x-api-key" and value.strip():
            return value.strip().decode("latin-1")
    return None


async def _refuse(error: InterlaceError, path: str, send: Send) -> None:
    anthropic = path.startswith("/v1/messages")
    body = orjson.dumps(anthropic_error_body(error) if anthropic else error.to_openai())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.encode(), value.encode()) for name, value in error.headers.items()),
    ]
    if isinstance(error, AuthenticationError):
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
