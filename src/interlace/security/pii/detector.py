"""Finding personal data and secrets in text: presidio-analyzer's pattern recognisers, offline.

Each entity type is served by presidio's own recogniser (regular expressions plus a validation:
Luhn for card numbers, mod-97 for IBANs, the national checksums; python-phonenumbers for phone
numbers), called directly — ``recogniser.analyze(text, entities, nlp_artifacts=None)`` — rather than
through an ``AnalyzerEngine``: pattern recognisers need no NLP artifacts, so no spaCy model is loaded
or downloaded, and the engine's extra work (context enhancement without tokens does nothing) costs
as much as it brings. Secrets (API keys, tokens, private keys, ``password=`` assignments) are our own
pattern recognisers, case-sensitive.

The e-mail recogniser validates the domain with ``tldextract``, whose default downloads the public
suffix list: here it uses the snapshot bundled with the package, never the network.

Overlapping detections are merged into one span, typed by the longest (``+1 415 555 2671`` is one
phone number, not an NHS number inside one). This module imports presidio (and, through it, spaCy): it is
imported only when a PII policy is configured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import phonenumbers
import tldextract
from presidio_analyzer import EntityRecognizer, LocalRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    EsNieRecognizer,
    EsNifRecognizer,
    FiPersonalIdentityCodeRecognizer,
    IbanRecognizer,
    IpRecognizer,
    ItFiscalCodeRecognizer,
    NhsRecognizer,
    PhoneRecognizer,
    PlPeselRecognizer,
    SePersonnummerRecognizer,
    UkNinoRecognizer,
    UsSsnRecognizer,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

__all__ = ["Detection", "Detector", "secret_recognizer"]

_DIGIT_RUN: Final = re.compile(r"\d(?:\D{0,4}\d)*")
"""Digits with at most four other characters between them: a superset of the runs a phone number
candidate can span (python-phonenumbers allows up to four punctuation characters between blocks)."""

#: Secrets: (name, pattern, score), case-sensitive.
SECRET_PATTERNS: Final = (
    ("Anthropic API key", r"\bsk-ant-[A-Za-z0-9]{2,10}-[A-Za-z0-9_\-]{20,}", 1.0),
    ("OpenAI API key", r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}", 0.9),
    ("AWS access key id", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b", 0.9),
    ("GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b", 1.0),
    ("Slack token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", 0.9),
    ("JSON Web Token", r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{16,}", 0.9),
    (
        "PEM private key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----",
        1.0,
    ),
)

#: ``password = "…"``, ``"api_key": "…"``: the value (group 1) is a secret, the key name is kept.
ASSIGNMENT: Final = re.compile(
    r"\b(?i:password|passwd|pwd|passphrase|secret|client_secret|api[_\-]?key|access[_\-]?token"
    r"|auth[_\-]?token|secret[_\-]?key|private[_\-]?key)\b[\"']?\s*[:=]\s*[\"']?([^\s\"',;<>]{4,})"
)


@dataclass(frozen=True, slots=True)
class Detection:
    entity: str
    start: int
    end: int
    score: float


class _OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recogniser with the public suffix list from tldextract's bundled snapshot."""

    def __init__(self) -> None:
        super().__init__()
        self._extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    def validate_result(self, pattern_text: str) -> bool:
        return bool(self._extract(pattern_text).fqdn)


class _DigitsPhoneRecognizer(PhoneRecognizer):
    """Presidio's phone recogniser, skipped when no run of digits is long enough to be a phone number.

    A valid number has at least :func:`min_phone_digits` digits, all in one candidate; a text whose
    digit runs (:data:`_DIGIT_RUN`) are all shorter cannot hold one: skipping it changes no result.
    """

    def __init__(self, *, supported_regions: tuple[str, ...]) -> None:
        super().__init__(supported_regions=supported_regions)
        self.min_digits = min_phone_digits(supported_regions)

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
        if not may_hold_phone_number(text, self.min_digits):
            return []
        return list(super().analyze(text, entities, nlp_artifacts))


def min_phone_digits(regions: Sequence[str]) -> int:
    """The fewest digits a valid phone number can have, written nationally for ``regions`` or
    internationally (``+`` country code) for any region; 1 when the metadata does not say."""
    lengths: list[int] = []
    for region in regions:
        national = _min_length(phonenumbers.PhoneMetadata.metadata_for_region(region.upper()))
        lengths.append(national or 1)
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        for region in phonenumbers.region_codes_for_country_code(code):
            metadata = (
                phonenumbers.PhoneMetadata.metadata_for_nongeo_region(code)
                if region in {phonenumbers.UNKNOWN_REGION, "001"}
                else phonenumbers.PhoneMetadata.metadata_for_region(region)
            )
            national = _min_length(metadata)
            lengths.append(len(str(code)) + national if national else 1)
    return max(1, min(lengths, default=1))


def _min_length(metadata: Any) -> int | None:
    lengths = [n for n in (metadata.general_desc.possible_length or ()) if n > 0] if metadata else []
    return min(lengths) if lengths else None


def may_hold_phone_number(text: str, min_digits: int) -> bool:
    """Whether some run of digits in ``text`` has ``min_digits`` digits or more."""
    return any(sum(ch.isdecimal() for ch in run.group(0)) >= min_digits for run in _DIGIT_RUN.finditer(text))


class _AssignmentRecognizer(LocalRecognizer):
    """The values of credential assignments (a look-behind pattern costs three times as much)."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["SECRET"], name="CredentialAssignmentRecognizer")

    def load(self) -> None:
        pass

    def analyze(
        self,
        text: str,
        entities: list[str],  # noqa: ARG002 - it finds one type
        nlp_artifacts: Any = None,  # noqa: ARG002 - needs none
    ) -> list[RecognizerResult]:
        return [
            RecognizerResult("SECRET", found.start(1), found.end(1), 0.8)
            for found in ASSIGNMENT.finditer(text)
        ]


def secret_recognizer() -> PatternRecognizer:
    """The ``SECRET`` recogniser: provider API keys, tokens, private key blocks, credential assignments."""
    return PatternRecognizer(
        supported_entity="SECRET",
        name="SecretRecognizer",
        patterns=[Pattern(name, regex, score) for name, regex, score in SECRET_PATTERNS],
        global_regex_flags=re.DOTALL | re.MULTILINE,
    )


def _recognizers(phone_regions: Sequence[str]) -> dict[str, Callable[[], EntityRecognizer]]:
    """A factory per entity type (SECRET's recognisers are one pattern recogniser and the assignments)."""

    def en(cls: Any) -> Callable[[], EntityRecognizer]:
        return lambda: cls(supported_language="en")

    return {
        "EMAIL_ADDRESS": _OfflineEmailRecognizer,
        "PHONE_NUMBER": lambda: _DigitsPhoneRecognizer(supported_regions=tuple(phone_regions)),
        "CREDIT_CARD": CreditCardRecognizer,
        "IBAN_CODE": IbanRecognizer,
        "IP_ADDRESS": IpRecognizer,
        "SECRET": secret_recognizer,
        "US_SSN": UsSsnRecognizer,
        "UK_NINO": UkNinoRecognizer,
        "UK_NHS": NhsRecognizer,
        "ES_NIF": en(EsNifRecognizer),
        "ES_NIE": en(EsNieRecognizer),
        "IT_FISCAL_CODE": en(ItFiscalCodeRecognizer),
        "PL_PESEL": en(PlPeselRecognizer),
        "FI_PERSONAL_IDENTITY_CODE": en(FiPersonalIdentityCodeRecognizer),
        "SE_PERSONNUMMER": en(SePersonnummerRecognizer),
    }


class Detector:
    """The recognisers of the entity types some policy acts on; :meth:`find` is pure, thread-safe."""

    def __init__(
        self, entities: Collection[str], *, min_score: float = 0.4, phone_regions: Sequence[str] = ("US",)
    ) -> None:
        factories = _recognizers(phone_regions)
        unknown = set(entities) - set(factories)
        if unknown:
            msg = f"unknown PII entity types: {', '.join(sorted(unknown))}"
            raise ValueError(msg)
        self.min_score = min_score
        self._recognizers = {entity: [factories[entity]()] for entity in sorted(entities)}
        if "SECRET" in self._recognizers:
            self._recognizers["SECRET"].append(_AssignmentRecognizer())

    @property
    def entities(self) -> frozenset[str]:
        return frozenset(self._recognizers)

    def find(self, text: str, entities: Collection[str]) -> list[Detection]:
        """The non-overlapping detections of ``entities`` in ``text``, in text order."""
        found: list[Detection] = []
        for entity in entities:
            for recognizer in self._recognizers.get(entity, ()):
                found.extend(
                    Detection(entity, result.start, result.end, result.score)
                    for result in recognizer.analyze(text, [entity], None)  # type: ignore[arg-type]  # none needed
                    if result.entity_type == entity
                    and result.score >= self.min_score
                    and result.end > result.start
                )
        return _without_overlaps(found)


def _without_overlaps(found: list[Detection]) -> list[Detection]:
    """Overlapping detections merged into one span covering them all, typed by its longest member
    (then the highest score): every character any recogniser found is masked, once."""
    merged: list[Detection] = []
    group: list[Detection] = []
    end = -1
    for detection in sorted(found, key=lambda d: (d.start, -d.end)):
        if group and detection.start >= end:
            merged.append(_merge(group, end))
            group = []
        group.append(detection)
        end = max(end, detection.end) if len(group) > 1 else detection.end
    if group:
        merged.append(_merge(group, end))
    return merged


def _merge(group: list[Detection], end: int) -> Detection:
    best = max(group, key=lambda d: (d.end - d.start, d.score))
    return Detection(best.entity, group[0].start, end, best.score)
