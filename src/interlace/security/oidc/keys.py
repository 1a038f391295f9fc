"""An issuer's signing keys: a JWK Set parsed once, and which key may verify which algorithm.

Only public asymmetric signature keys are kept: RSA (2048 bits or more), EC on P-256/P-384/P-521 and
OKP Ed25519/Ed448. Symmetric (``oct``) keys, keys marked ``use: enc``, keys carrying private material
and keys PyJWT cannot load are skipped (and logged), so one bad entry never hides the good ones.

A token's ``alg`` must match its key's type (and curve), and the key's own ``alg`` when it names one:
an ``HS256`` token "signed" with an RSA public key as the secret, or an ``ES256`` token against a
P-384 key, finds no key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["KEY_TYPES", "KeySet", "SigningKey"]

log = logging.getLogger("interlace.security.oidc")

KEY_TYPES: Final[Mapping[str, tuple[str, frozenset[str] | None]]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}
"""The key type (``kty``) and curves (``crv``) each allowed algorithm needs."""

# which PyJWT algorithm loads a JWK that does not name its own
_LOADER: Final[Mapping[tuple[str, str | None], str]] = {
    ("RSA", None): "RS256",
    ("EC", "P-256"): "ES256",
    ("EC", "P-384"): "ES384",
    ("EC", "P-521"): "ES512",
    ("OKP", "Ed25519"): "EdDSA",
    ("OKP", "Ed448"): "EdDSA",
}
_MIN_RSA_BITS = 2048
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str | None
    kty: str
    crv: str | None
    alg: str | None
    """The algorithm the JWK itself names, if any."""
    key: Any
    """The public key object (cryptography), as PyJWT verifies with it."""

    def can_verify(self, alg: str) -> bool:
        """Whether a token signed with ``alg`` may be verified with this key."""
        needed = KEY_TYPES.get(alg)
        if needed is None:
            return False
        kty, curves = needed
        if self.kty != kty or (curves is not None and self.crv not in curves):
            return False
        return self.alg is None or self.alg == alg


class KeySet:
    """The usable keys of one JWK Set, by ``kid``."""

    __slots__ = ("_keys",)

    def __init__(self, keys: tuple[SigningKey, ...] = ()) -> None:
        self._keys = keys

    @classmethod
    def from_jwks(cls, document: Any, *, source: str) -> KeySet:
        """Parse a JWK Set document; raises ``ValueError`` when it is not one (no usable key is no error)."""
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            msg = f"{source} is not a JWK Set (an object with a 'keys' list)"
            raise ValueError(msg)  # noqa: TRY004  -- translated with the fetch errors, one type
        keys = []
        for entry in document["keys"]:
            key = _signing_key(entry, source)
            if key is not None:
                keys.append(key)
        return cls(tuple(keys))

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[SigningKey]:
        return iter(self._keys)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(key.kid for key in self._keys if key.kid is not None)

    def find(self, kid: str | None, alg: str) -> SigningKey | None:
        """The key with ``kid`` that can verify ``alg``; without a kid, the only key that can."""
        if kid is None:
            usable = [key for key in self._keys if key.can_verify(alg)]
            return usable[0] if len(usable) == 1 else None
        for key in self._keys:
            if key.kid == kid and key.can_verify(alg):
                return key
        return None

    def has_kid(self, kid: str) -> bool:
        return any(key.kid == kid for key in self._keys)


def _signing_key(entry: Any, source: str) -> SigningKey | None:
    if not isinstance(entry, dict):
        log.warning("%s: skipping a JWK that is not an object", source)
        return None
    kid = entry.get("kid")
    label = f"{source} key {kid!r}"
    reason = _unusable(entry)
    if reason is not None:
        log.warning("%s: skipping it: %s", label, reason)
        return None
    try:
        jwk = jwt.PyJWK(entry, algorithm=entry.get("alg") or _LOADER[entry["kty"], entry.get("crv")])
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        log.warning("%s: skipping a key PyJWT cannot load: %s", label, exc)
        return None
    if isinstance(jwk.key, RSAPublicKey) and jwk.key.key_size < _MIN_RSA_BITS:
        log.warning(
            "%s: skipping an RSA key of %d bits (at least %d)", label, jwk.key.key_size, _MIN_RSA_BITS
        )
        return None
    return SigningKey(
        kid=kid if isinstance(kid, str) else None,
        kty=entry["kty"],
        crv=entry.get("crv"),
        alg=entry.get("alg"),
        key=jwk.key,
    )


def _unusable(entry: dict[str, Any]) -> str | None:  # noqa: PLR0911  -- one reason per check
    """Why a JWK is not a public signature key of a supported type, or ``None``."""
    kty = entry.get("kty")
    if kty not in {"RSA", "EC", "OKP"}:
        return f"key type {kty!r} is not an asymmetric signature key"
    if (kty, entry.get("crv")) not in _LOADER:
        return f"curve {entry.get('crv')!r} is not supported for key type {kty!r}"
    if entry.get("use", "sig") != "sig":
        return f"use {entry.get('use')!r} is not 'sig'"
    if _PRIVATE_MEMBERS & entry.keys():
        return "it carries private key material"
    kid, alg = entry.get("kid"), entry.get("alg")
    if kid is not None and not isinstance(kid, str):
        return "its kid is not a string"
    if alg is not None and alg not in KEY_TYPES:
        return f"its alg {alg!r} is not an allowed signature algorithm"
    return None
