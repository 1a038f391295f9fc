"""A tiny real OpenID Provider on 127.0.0.1: discovery, a JWK Set it can rotate, tokens it signs.

It fakes the identity provider, never Interlace: the gateway's verifier fetches
``{issuer}/.well-known/openid-configuration`` and the JWK Set over real HTTP (uvicorn in a background
thread), so discovery, caching, rotation and outages are exercised on the wire::

    with OidcIssuer() as idp:
        token = idp.token(sub="alice", org_id="acme")          # RS256, signed with the current key
        kid = idp.add_key("ec-p256")                           # rotation: a new key is published
        idp.jwks_status = 503                                  # the JWK Set endpoint goes down
        assert idp.jwks_requests == 2

Keys are generated in memory (RSA 2048, EC P-256/P-384, Ed25519); a key can also be kept unpublished
(a token signed by a key the issuer never announced) or retired (removed from the JWK Set).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Self

import jwt
import orjson
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

if TYPE_CHECKING:
    from types import TracebackType

    from starlette.types import Receive, Scope, Send

__all__ = ["KEY_KINDS", "KeyKind", "OidcIssuer"]

KeyKind = Literal["rsa", "ec-p256", "ec-p384", "ed25519"]
KEY_KINDS: Final[dict[KeyKind, str]] = {
    "rsa": "RS256",
    "ec-p256": "ES256",
    "ec-p384": "ES384",
    "ed25519": "EdDSA",
}
"""Each key kind and the algorithm its tokens are signed with by default."""


@dataclass(slots=True)
class _Key:
    kid: str
    kind: KeyKind
    private: Any
    published: bool


def _generate(kind: KeyKind) -> Any:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    return ed25519.Ed25519PrivateKey.generate()


def _public_jwk(key: _Key) -> dict[str, Any]:
    public = key.private.public_key()
    if key.kind == "rsa":
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif key.kind == "ed25519":
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    return {**jwk, "kid": key.kid, "use": "sig"}


class OidcIssuer:
    """A real OIDC issuer for tests; a context manager (sync and async)."""

    def __init__(
        self, *, path: str = "", audience: str = "interlace", first_key: KeyKind | None = "rsa"
    ) -> None:
        self.path = path.rstrip("/")
        self.audience = audience
        self.jwks_status = 200
        """Set to 5xx to simulate a JWK Set outage."""
        self.discovery_issuer: str | None = None
        """Announce this issuer in the discovery document instead of the real one (a misconfigured IdP)."""
        self.extra_jwks: list[Any] = []
        """Raw JWK entries appended to the published set (malformed, symmetric, private …)."""
        self.discovery_requests = 0
        self.jwks_requests = 0
        self._keys: dict[str, _Key] = {}
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self.current_kid: str | None = None
        if first_key is not None:
            self.add_key(first_key)

    # --- keys -------------------------------------------------------------------------------------

    def add_key(self, kind: KeyKind = "rsa", *, kid: str | None = None, publish: bool = True) -> str:
        """Generate a key; it becomes the current signing key if published. Returns its kid."""
        kid = kid or f"{kind}-{secrets.token_hex(4)}"
        with self._lock:
            self._keys[kid] = _Key(kid=kid, kind=kind, private=_generate(kind), published=publish)
        if publish:
            self.current_kid = kid
        return kid

    def retire_key(self, kid: str) -> None:
        """Stop publishing ``kid`` (tokens it signed stop verifying once verifiers refetch)."""
        with self._lock:
            self._keys[kid].published = False

    def public_jwks(self) -> dict[str, Any]:
        with self._lock:
            keys = [_public_jwk(key) for key in self._keys.values() if key.published]
        return {"keys": [*keys, *self.extra_jwks]}

    def private_key(self, kid: str) -> Any:
        return self._keys[kid].private

    def public_key_pem(self, kid: str) -> bytes:
        return bytes(
            self._keys[kid]
            .private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )

    # --- tokens -----------------------------------------------------------------------------------

    def token(
        self,
        *,
        kid: str | None = None,
        alg: str | None = None,
        headers: dict[str, Any] | None = None,
        lifetime: float = 300.0,
        omit: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        """A token signed with ``kid`` (default: the current key): ``iss``, ``aud``, ``sub``, ``iat``
        and ``exp`` (now + ``lifetime``) are filled in unless given or listed in ``omit``."""
        kid = kid or self.current_kid
        if kid is None:
            raise RuntimeError("the issuer has no signing key; add_key() first")
        key = self._keys[kid]
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": "user-1",
            "iat": now,
            "exp": now + int(lifetime),
        }
        payload.update(claims)
        for name in omit:
            payload.pop(name, None)
        header = {"kid": kid, **(headers or {})}
        return jwt.encode(payload, key.private, algorithm=alg or KEY_KINDS[key.kind], headers=header)

    # --- serving ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (still known after stop(): an issuer that went away)."""
        if self._port is None:
            raise RuntimeError("the issuer was never started; call start() first")
        return f"http://127.0.0.1:{self._port}"

    @property
    def issuer(self) -> str:
        """The ``iss`` of its tokens: the URL plus the path, if any."""
        return self.url + self.path

    async def __call__(self, scope: Scope, _receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == f"{self.path}/.well-known/openid-configuration":
            self.discovery_requests += 1
            body = {
                "issuer": self.discovery_issuer or self.issuer,
                "jwks_uri": f"{self.issuer}/protocol/certs",
                "id_token_signing_alg_values_supported": sorted(set(KEY_KINDS.values())),
            }
            await _answer(send, 200, body)
        elif path == f"{self.path}/protocol/certs":
            self.jwks_requests += 1
            if self.jwks_status != 200:  # noqa: PLR2004
                await _answer(send, self.jwks_status, {"error": "unavailable"})
            else:
                await _answer(send, 200, self.public_jwks())
        else:
            await _answer(send, 404, {"error": "not_found"})

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("the issuer is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        self._port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self, log_config=None, loop="asyncio", lifespan="off", access_log=False, log_level="warning"
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), name="oidc-issuer", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the OIDC issuer did not start")
            time.sleep(0.002)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


async def _answer(send: Send, status: int, body: Any) -> None:
    data = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})
