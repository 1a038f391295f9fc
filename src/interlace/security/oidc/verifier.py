"""The OIDC bearer-token verifier: a JWT in, a :class:`~interlace.core.principal.Principal` out.

Order of checks (each failure is a 401 whose message says why, with a stable ``code``)::

    size → JOSE header (alg, kid) → alg allowed? (never none, never HS*) → iss trusted?
         → signing key (kid, its type matching alg; unknown kid → one rate-limited JWKS refetch)
         → signature with exactly that algorithm → exp / nbf / iat within the clock skew → aud
         → claims mapped to tenant, team, subject, scopes, limits

The ``iss`` read before the signature is checked only picks which issuer's keys and rules apply; the
signature check then binds it (PyJWT verifies ``iss`` again). The algorithm list handed to PyJWT is
the single algorithm the token names, already checked against the issuer's allow-list and the key's
type, so an ``HS256`` token "signed" with the issuer's RSA public key as an HMAC secret never reaches
an HMAC verification.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import jwt

from interlace.core.errors import AuthenticationError
from interlace.security.oidc.claims import ClaimMapper
from interlace.security.oidc.discovery import HttpJson, IssuerKeys

if TYPE_CHECKING:
    from collections.abc import Callable

    from interlace.config.oidc import OidcConfig, OidcIssuerConfig
    from interlace.core.principal import Principal
    from interlace.security.oidc.discovery import JsonFetcher

__all__ = ["MAX_TOKEN_BYTES", "OidcVerifier", "looks_like_jwt"]

MAX_TOKEN_BYTES: Final = 16 * 1024
"""Larger bearer tokens are rejected before any parsing."""

_REQUIRED_CLAIMS: Final = ["exp", "iss", "aud"]


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated base64url parts (a JWS compact serialisation): worth handing to a verifier."""
    parts = token.split(".")
    return len(parts) == 3 and all(parts[:2])  # noqa: PLR2004


def _rejected(message: str, code: str) -> AuthenticationError:
    return AuthenticationError(message, code=code)


@dataclass(frozen=True, slots=True)
class _Issuer:
    config: OidcIssuerConfig
    keys: IssuerKeys
    claims: ClaimMapper
    algorithms: frozenset[str]


class OidcVerifier:
    """Verifies the configured issuers' bearer JWTs; a :class:`~interlace.security.authn.TokenVerifier`."""

    def __init__(
        self,
        config: OidcConfig,
        *,
        fetch: JsonFetcher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``fetch`` replaces the HTTP client (aiohttp) for the discovery and JWKS requests;
        ``clock`` (monotonic seconds) drives the key cache's TTL and refetch rate limit."""
        self._http = HttpJson(timeout=config.fetch_timeout) if fetch is None else None
        fetcher: JsonFetcher = fetch or self._http  # type: ignore[assignment]
        self._issuers: dict[str, _Issuer] = {
            entry.issuer: _Issuer(
                config=entry,
                keys=IssuerKeys(
                    issuer=entry.issuer,
                    jwks_url=entry.jwks_url,
                    fetch=fetcher,
                    ttl=config.jwks_ttl,
                    refetch_interval=config.refetch_interval,
                    clock=clock,
                ),
                claims=ClaimMapper(entry),
                algorithms=frozenset(entry.algorithms),
            )
            for entry in config.issuers
        }

    def keys(self, issuer: str) -> IssuerKeys:
        """The key cache of one configured issuer (for readiness details and tests)."""
        return self._issuers[issuer].keys

    def details(self) -> dict[str, dict[str, object]]:
        """Per issuer: how many signing keys are cached and the last fetch error (for /readyz)."""
        return {
            name: {"keys": len(issuer.keys.keys or ()), "last_error": issuer.keys.last_error}
            for name, issuer in self._issuers.items()
        }

    async def start(self) -> None:
        """Fetch every issuer's keys now, so the first request does not wait; a failure is logged and
        retried on first use, never fatal (the identity provider may come up after the gateway)."""
        await asyncio.gather(*(issuer.keys.prefetch() for issuer in self._issuers.values()))

    async def aclose(self) -> None:
        for issuer in self._issuers.values():
            await issuer.keys.aclose()
        if self._http is not None:
            await self._http.aclose()

    async def verify(self, token: str) -> Principal:
        """The token's principal; raises :class:`AuthenticationError` (401) saying why it is refused,
        or :class:`~interlace.core.errors.ServiceUnavailable` (503) while the issuer's keys were
        never fetched."""
        if len(token) > MAX_TOKEN_BYTES:
            raise _rejected(f"Invalid token: longer than {MAX_TOKEN_BYTES} bytes.", "invalid_token")
        header, unverified = _unverified(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or not alg:
            raise _rejected("Invalid token: its header names no algorithm ('alg').", "invalid_token")
        if alg.lower() == "none":
            raise _rejected(
                "Invalid token: unsigned tokens (alg 'none') are never accepted.", "algorithm_not_allowed"
            )
        issuer = self._issuer_of(unverified)
        if alg not in issuer.algorithms:
            kind = (
                "symmetric (shared-secret) algorithms are never accepted"
                if alg.upper().startswith("HS")
                else ("allowed: " + ", ".join(sorted(issuer.algorithms)))
            )
            raise _rejected(
                f"Invalid token: algorithm '{alg[:16]}' is not allowed ({kind}).", "algorithm_not_allowed"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _rejected("Invalid token: its key id ('kid') is not a string.", "invalid_token")
        key = await issuer.keys.signing_key(kid, alg)
        claims = _verified(token, key.key, alg, issuer.config)
        return issuer.claims.principal(claims)

    def _issuer_of(self, unverified: dict[str, Any]) -> _Issuer:
        iss = unverified.get("iss")
        if not isinstance(iss, str):
            raise _rejected("Invalid token: it has no issuer ('iss') claim.", "invalid_token")
        issuer = self._issuers.get(iss)
        if issuer is None:
            raise _rejected(f"Invalid token: issuer '{iss[:200]}' is not trusted.", "untrusted_issuer")
        return issuer


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims, not yet trusted: only to pick the issuer, the algorithm and the key."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise _rejected(f"Invalid token: not a well-formed JWT ({exc}).", "invalid_token") from exc
    return header, claims


def _verified(token: str, key: Any, alg: str, config: OidcIssuerConfig) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=list(config.audiences),
            issuer=config.issuer,
            leeway=config.clock_skew,
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise _rejected("Invalid token: it has expired ('exp').", "token_expired") from exc
    except jwt.ImmatureSignatureError as exc:
        claim = "iat" if "iat" in str(exc) else "nbf"
        raise _rejected(
            f"Invalid token: it is not valid yet ('{claim}' is in the future).", "token_not_yet_valid"
        ) from exc
    except jwt.InvalidAudienceError as exc:
        expected = ", ".join(config.audiences)
        raise _rejected(
            f"Invalid token: its audience ('aud') is not {expected}.", "invalid_audience"
        ) from exc
    except jwt.InvalidIssuerError as exc:
        raise _rejected("Invalid token: its issuer ('iss') does not match.", "untrusted_issuer") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise _rejected(f"Invalid token: it has no '{exc.claim}' claim.", "invalid_token") from exc
    except jwt.InvalidSignatureError as exc:
        raise _rejected("Invalid token: the signature does not verify.", "invalid_signature") from exc
    except jwt.PyJWTError as exc:
        raise _rejected(f"Invalid token: {exc}.", "invalid_token") from exc
