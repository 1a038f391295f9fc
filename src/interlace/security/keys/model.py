"""A virtual API key: its public id, the hash of its secret, its owner, scopes, limits and lifetime.

A key as the client holds it reads ``ik_<16 hex>_<secret>``: the id (``ik_`` and 16 hex digits) is
public — it is the principal's id, logged on every request record and usage row — and the secret is
``secrets.token_urlsafe(32)`` (256 bits). Only ``sha256(secret)`` is stored; it is compared in constant
time. A rotated key keeps its id and gets a new secret; during a grace period the previous secret
still works.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from interlace.core.principal import Limits, Principal

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "KEY_PREFIX",
    "ApiKey",
    "IssuedKey",
    "KeyStatus",
    "format_key",
    "hash_secret",
    "is_key_id",
    "new_key_id",
    "new_secret",
    "parse_duration",
    "parse_key",
    "utc",
]

KEY_PREFIX: Final = "ik_"
_ID = re.compile(r"ik_[0-9a-f]{16}")
_KEY = re.compile(r"(ik_[0-9a-f]{16})_([A-Za-z0-9_-]{32,128})")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}

KeyStatus = Literal["active", "expired", "revoked"]


def new_key_id() -> str:
    return f"{KEY_PREFIX}{secrets.token_hex(8)}"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def format_key(key_id: str, secret: str) -> str:
    """The key as the client sends it."""
    return f"{key_id}_{secret}"


def parse_key(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, else None."""
    match = _KEY.fullmatch(token)
    return (match.group(1), match.group(2)) if match else None


def is_key_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


_LONGEST = timedelta(days=36_500)
"""The longest key lifetime or rotation grace: a hundred years (later dates overflow arithmetic)."""


def parse_duration(value: str | float) -> timedelta:
    """``90`` / ``"90s"``, ``"15m"``, ``"1h"``, ``"30d"``, ``"2w"`` as a timedelta; ValueError otherwise."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(value.strip())
        if match is None:
            msg = f"{value!r} is not a duration: write e.g. 3600, 90s, 15m, 1h, 30d or 2w"
            raise ValueError(msg)
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        msg = "a duration must not be negative"
        raise ValueError(msg)
    if not seconds <= _LONGEST.total_seconds():  # also NaN
        msg = f"a duration must be at most {_LONGEST.days} days"
        raise ValueError(msg)
    return timedelta(seconds=seconds)


def utc(moment: datetime | None) -> datetime | None:
    """``moment`` as an aware UTC datetime (SQLite hands back naive UTC)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    """One stored key (a row of ``api_keys``); holds hashes, never a secret."""

    id: str
    name: str
    tenant: str
    team: str | None = None
    subject: str | None = None
    secret_hash: str
    previous_hash: str | None = None
    previous_expires_at: datetime | None = None
    """Until then, the secret before the last rotation still works."""
    models: frozenset[str] | None = None
    endpoints: frozenset[str] | None = None
    limits: Limits = field(default_factory=Limits)
    metadata: Mapping[str, str] = field(default_factory=dict)
    expires_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None = None

    def status(self, now: datetime) -> KeyStatus:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def matches(self, secret: str, now: datetime) -> bool:
        """Whether ``secret`` is this key's (or, within the grace period, its previous) secret."""
        presented = hash_secret(secret)
        if hmac.compare_digest(presented, self.secret_hash):
            return True
        previous, until = self.previous_hash, self.previous_expires_at
        return (
            previous is not None
            and until is not None
            and now < until
            and hmac.compare_digest(presented, previous)
        )

    def principal(self) -> Principal:
        return Principal(
            kind="key",
            id=self.id,
            tenant=self.tenant,
            team=self.team,
            subject=self.subject,
            models=self.models,
            endpoints=self.endpoints,
            limits=self.limits,
            metadata=dict(self.metadata),
        )

    def public(self, now: datetime | None = None) -> dict[str, Any]:
        """What the admin API and the CLI show: everything but the hashes."""
        limits = self.limits
        grace = self.previous_expires_at
        when = now or datetime.now(UTC)
        return {
            "object": "api_key",
            "id": self.id,
            "name": self.name,
            "tenant": self.tenant,
            "team": self.team,
            "subject": self.subject,
            "status": self.status(when),
            "models": sorted(self.models) if self.models is not None else None,
            "endpoints": sorted(self.endpoints) if self.endpoints is not None else None,
            "limits": {
                "rpm": limits.rpm,
                "tpm": limits.tpm,
                "budget_usd": limits.budget_usd,
                "soft_budget_usd": limits.soft_budget_usd,
                "budget_period": limits.budget_period,
            },
            "metadata": dict(self.metadata),
            "expires_at": _iso(self.expires_at),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "revoked_at": _iso(self.revoked_at),
            "previous_secret_valid_until": _iso(grace) if grace is not None and grace > when else None,
        }


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just created or rotated, with its secret: shown once, never stored."""

    key: ApiKey
    token: str
    """The whole key as the client sends it (``ik_…_secret``)."""

    def public(self) -> dict[str, Any]:
        return {**self.key.public(), "key": self.token}
