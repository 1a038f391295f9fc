"""``pii:`` (global) and ``tenants.<id>.pii``: find personal data and secrets in prompts, and act on them.

An *action* says what happens to a request whose text holds one of the selected entity types:

- ``allow``: nothing is looked for (no cost);
- ``mask``: each value is replaced by a placeholder (``<EMAIL_ADDRESS_1>``; the same value gets the
  same placeholder within a request) before the request is routed, so no deployment ever sees it;
  the placeholders are put back in the answer, streamed or not (:mod:`interlace.security.pii`);
- ``block``: the request is rejected with 400 ``pii_detected``, naming the entity types found.

Settings are layered, the most specific winning: the global ``action``/``entities``, then the global
``endpoints.<family>`` entry, then the tenant's ``action``/``entities``, then the tenant's
``endpoints.<family>`` entry (an omitted key inherits)::

    pii:
      action: mask                        # allow | mask | block
      entities: [EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, SECRET]
      endpoints:
        embeddings: {action: allow}       # endpoint families: chat, embeddings, classify
    tenants:
      bank:
        pii:
          action: block
          entities: [CREDIT_CARD, IBAN_CODE, NATIONAL_ID, SECRET]

Entity types (``NATIONAL_ID`` selects every national identity number at once):
``EMAIL_ADDRESS``, ``PHONE_NUMBER``, ``CREDIT_CARD`` (Luhn checksum), ``IBAN_CODE`` (mod-97 checksum),
``IP_ADDRESS`` (v4 and v6), ``SECRET`` (OpenAI/Anthropic/AWS/GitHub/Slack keys, JWTs, PEM private keys,
``password=``/``api_key=`` assignments), and the national identity numbers ``US_SSN``, ``UK_NINO``,
``UK_NHS``, ``ES_NIF``, ``ES_NIE``, ``IT_FISCAL_CODE``, ``PL_PESEL``, ``FI_PERSONAL_IDENTITY_CODE``,
``SE_PERSONNUMMER``.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field, field_validator

from interlace.config._base import Strict

__all__ = [
    "ALL_ENTITIES",
    "NATIONAL_IDS",
    "PiiAction",
    "PiiConfig",
    "PiiEndpoint",
    "PiiEntity",
    "PiiRule",
    "PiiTenantConfig",
    "expand_entities",
]

PiiAction = Literal["allow", "mask", "block"]
PiiEndpoint = Literal["chat", "embeddings", "classify"]
"""The endpoint families whose text is inspected (``/v1/messages`` is ``chat``)."""

PiiEntity = Literal[
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "SECRET",
    "US_SSN",
    "UK_NINO",
    "UK_NHS",
    "ES_NIF",
    "ES_NIE",
    "IT_FISCAL_CODE",
    "PL_PESEL",
    "FI_PERSONAL_IDENTITY_CODE",
    "SE_PERSONNUMMER",
    "NATIONAL_ID",
]

NATIONAL_IDS: Final[tuple[PiiEntity, ...]] = (
    "US_SSN",
    "UK_NINO",
    "UK_NHS",
    "ES_NIF",
    "ES_NIE",
    "IT_FISCAL_CODE",
    "PL_PESEL",
    "FI_PERSONAL_IDENTITY_CODE",
    "SE_PERSONNUMMER",
)
ALL_ENTITIES: Final[tuple[PiiEntity, ...]] = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "SECRET",
    *NATIONAL_IDS,
)
"""Every entity type that can be detected (``NATIONAL_ID`` is a group, not a type)."""


def expand_entities(entities: list[PiiEntity]) -> frozenset[str]:
    """The entity types a selection names, with ``NATIONAL_ID`` expanded."""
    names: set[str] = set()
    for entity in entities:
        names.update(NATIONAL_IDS if entity == "NATIONAL_ID" else (entity,))
    return frozenset(names)


class PiiRule(Strict):
    """An override; an omitted key inherits from the less specific level."""

    action: PiiAction | None = Field(None, description="allow | mask | block. Omit: inherit.")
    entities: list[PiiEntity] | None = Field(
        None, description="The entity types acted on (NATIONAL_ID: every national ID). Omit: inherit."
    )

    @field_validator("entities")
    @classmethod
    def _not_empty(cls, entities: list[PiiEntity] | None) -> list[PiiEntity] | None:
        if entities is not None and not entities:
            msg = "an empty entity list detects nothing — use action: allow, or omit the key"
            raise ValueError(msg)
        return entities


class PiiTenantConfig(PiiRule):
    """``tenants.<id>.pii``: overrides the global settings for this tenant's requests."""

    endpoints: dict[PiiEndpoint, PiiRule] = Field(
        default_factory=dict, description="Per endpoint family (chat, embeddings, classify) overrides."
    )


class PiiConfig(Strict):
    """``pii:``: the global PII policy and how detection is tuned."""

    action: PiiAction = Field("allow", description="allow (default: nothing is inspected) | mask | block.")
    entities: list[PiiEntity] = Field(
        default_factory=lambda: list(ALL_ENTITIES), description="The entity types acted on. Default: all."
    )
    endpoints: dict[PiiEndpoint, PiiRule] = Field(
        default_factory=dict, description="Per endpoint family (chat, embeddings, classify) overrides."
    )
    min_score: float = Field(
        0.4,
        ge=0,
        le=1,
        description="Detections scored below this are ignored (checksum-validated ones score 1.0, "
        "phone numbers 0.4, IP addresses 0.6).",
    )
    phone_regions: list[str] = Field(
        default_factory=lambda: ["US", "GB", "DE", "FR", "IL", "IN", "CA", "BR"],
        min_length=1,
        description="Regions whose national phone formats are recognised (international +… always are). "
        "Each region costs a scan of the prompt.",
    )

    @field_validator("entities")
    @classmethod
    def _not_empty(cls, entities: list[PiiEntity]) -> list[PiiEntity]:
        if not entities:
            msg = "an empty entity list detects nothing — use action: allow instead"
            raise ValueError(msg)
        return entities
