"""Bearer JWTs from OpenID Connect issuers: discovery, cached and rotating JWKS, claim mapping.

:class:`OidcVerifier` is the :class:`~interlace.security.authn.TokenVerifier` the authenticator hands
JWT-shaped bearer tokens to when ``auth.oidc`` is configured (:mod:`interlace.config.oidc`).
"""

from interlace.security.oidc.claims import ClaimMapper, claim_at
from interlace.security.oidc.discovery import HttpJson, IssuerKeys, JsonFetcher, discovery_url
from interlace.security.oidc.keys import KeySet, SigningKey
from interlace.security.oidc.verifier import MAX_TOKEN_BYTES, OidcVerifier, looks_like_jwt

__all__ = [
    "MAX_TOKEN_BYTES",
    "ClaimMapper",
    "HttpJson",
    "IssuerKeys",
    "JsonFetcher",
    "KeySet",
    "OidcVerifier",
    "SigningKey",
    "claim_at",
    "discovery_url",
    "looks_like_jwt",
]
