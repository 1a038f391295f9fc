"""What a caller asks for when creating or rotating a key: validated, each error naming its field.

The admin API parses its JSON bodies with these models and the CLI builds them from its options, so
both accept and reject the same things::

    {"name": "ci", "tenant": "acme", "team": "search", "models": ["gpt-4o-mini"],
     "endpoints": ["chat"], "expires_in": "30d",
     "limits": {"rpm": 60, "tpm": 100000, "budget_usd": 50, "budget_period": "month"},
     "metadata": {"owner": "ana@example.com"}}
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from interlace.core.principal import ENDPOINTS, Limits
from interlace.security.keys.model import parse_duration

__all__ = ["KeyLimits", "KeySpec", "RotateSpec"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")


def _owner(value: str | None, what: str) -> str | None:
    if value is not None and not _NAME.fullmatch(value):
        msg = f"a {what} id is 1-128 letters, digits and ._:@- (starting with a letter or digit)"
        raise ValueError(msg)
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeyLimits(_Body):
    """The key's own quotas and budget (``None``: unlimited); enforced by the quota policies."""

    rpm: int | None = Field(None, ge=1, description="Requests per minute.")
    tpm: int | None = Field(None, ge=1, description="Tokens per minute.")
    budget_usd: float | None = Field(None, ge=0, description="Hard spend limit per budget_period.")
    soft_budget_usd: float | None = Field(None, ge=0, description="Alert past this spend per period.")
    budget_period: Literal["day", "month", "total"] = "month"

    def limits(self) -> Limits:
        return Limits(
            rpm=self.rpm,
            tpm=self.tpm,
            budget_usd=self.budget_usd,
            soft_budget_usd=self.soft_budget_usd,
            budget_period=self.budget_period,
        )


class KeySpec(_Body):
    """A key to create. Every key belongs to exactly one tenant."""

    name: str = Field(min_length=1, max_length=128, description="A label for people (not unique).")
    tenant: str = Field(description="The owner tenant (required).")
    team: str | None = None
    subject: str | None = Field(None, max_length=256, description="The person the key is for, if one.")
    models: list[str] | None = Field(
        None, min_length=1, description="Model aliases the key may use; omitted: every one."
    )
    endpoints: list[str] | None = Field(
        None, min_length=1, description=f"Endpoint families it may call ({', '.join(sorted(ENDPOINTS))})."
    )
    expires_at: datetime | None = Field(None, description="When it stops working (ISO 8601).")
    expires_in: str | float | None = Field(
        None, description="Or: how long it works from now (3600, 90s, 15m, 1h, 30d, 2w)."
    )
    limits: KeyLimits = Field(default_factory=KeyLimits)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=64)

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        return _owner(value, "tenant") or value

    @field_validator("team")
    @classmethod
    def _team(cls, value: str | None) -> str | None:
        return _owner(value, "team")

    @field_validator("endpoints")
    @classmethod
    def _endpoints(cls, value: list[str] | None) -> list[str] | None:
        unknown = sorted(set(value or ()) - ENDPOINTS)
        if unknown:
            msg = f"unknown endpoint family {', '.join(unknown)}: use {', '.join(sorted(ENDPOINTS))}"
            raise ValueError(msg)
        return value

    @field_validator("expires_in")
    @classmethod
    def _duration(cls, value: str | float | None) -> str | float | None:
        if value is not None and parse_duration(value) <= timedelta(0):
            msg = "must be longer than 0 seconds"
            raise ValueError(msg)
        return value

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        if aware <= datetime.now(UTC):
            msg = "must be in the future"
            raise ValueError(msg)
        return aware.astimezone(UTC)

    @model_validator(mode="after")
    def _one_expiry(self) -> KeySpec:
        if self.expires_at is not None and self.expires_in is not None:
            msg = "give expires_at or expires_in, not both"
            raise ValueError(msg)
        return self

    def expiry(self, now: datetime) -> datetime | None:
        if self.expires_in is not None:
            return now + parse_duration(self.expires_in)
        return self.expires_at


class RotateSpec(_Body):
    """A rotation: a new secret for the same id; the old one works ``grace`` longer (default: not)."""

    grace: str | float = Field(0, description="How long the previous secret keeps working (0, 1h, 1d…).")

    @field_validator("grace")
    @classmethod
    def _grace(cls, value: str | float) -> str | float:
        parse_duration(value)
        return value

    def grace_period(self) -> timedelta:
        return parse_duration(self.grace)
