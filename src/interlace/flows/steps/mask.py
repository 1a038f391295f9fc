"""``mask`` and ``unmask``: personal data in a message's strings replaced by placeholders, and back.

``mask`` runs the gateway's offline detector (:mod:`interlace.security.pii.detector`, presidio's
pattern recognisers, loaded in a worker thread on first use) over the chosen payload fields (every
string, nested ones included, by default) and writes ``<EMAIL_ADDRESS_1>``-style placeholders. With
``reversible: true`` the mapping travels with the message (``Message.attributes``, never sent to a
sink) and an ``unmask`` step later puts the values back — e.g. after an AI step saw only placeholders.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from interlace.config.pii import expand_entities
from interlace.security.pii import Masker

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from interlace.flows.message import Message
    from interlace.flows.services import FlowServices
    from interlace.flows.steps.config import MaskStepConfig, UnmaskStepConfig
    from interlace.security.pii.detector import Detector

__all__ = ["MASKER_ATTRIBUTE", "MaskStep", "UnmaskStep"]

MASKER_ATTRIBUTE = "pii:masker"


def _walk(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: _walk(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, change) for v in value]
    return value


class MaskStep:
    def __init__(self, config: MaskStepConfig, services: FlowServices | None = None) -> None:
        del services
        self.config = config
        self.name = config.name or "mask"
        self.entities = expand_entities(list(config.entities))
        self._detector: Detector | None = None
        self._loading: asyncio.Future[Detector] | None = None

    async def _ready(self) -> Detector:
        if self._detector is None:
            if self._loading is None:
                self._loading = asyncio.ensure_future(asyncio.to_thread(self._build))
            self._detector = await asyncio.shield(self._loading)
        return self._detector

    def _build(self) -> Detector:
        from interlace.security.pii.detector import Detector  # noqa: PLC0415 - presidio only when used

        return Detector(
            self.entities, min_score=self.config.min_score, phone_regions=self.config.phone_regions
        )

    async def process(self, message: Message) -> Sequence[Message]:
        detector = await self._ready()
        payload = message.payload
        existing = message.attributes.get(MASKER_ATTRIBUTE)
        masker = existing if isinstance(existing, Masker) else Masker()

        def mask(text: str) -> str:
            return masker.mask(text, detector.find(text, self.entities))

        fields = self.config.fields
        if fields is None or not isinstance(payload, dict):
            masked = await asyncio.to_thread(_walk, payload, mask)
        else:
            masked = dict(payload)
            for name in fields:
                if name in masked:
                    masked[name] = await asyncio.to_thread(_walk, masked[name], mask)
        attributes = dict(message.attributes)
        if self.config.reversible:
            attributes[MASKER_ATTRIBUTE] = masker
        return [message.derive(masked, attributes=attributes)]


class UnmaskStep:
    def __init__(self, config: UnmaskStepConfig, services: FlowServices | None = None) -> None:
        del services
        self.name = config.name or "unmask"

    async def process(self, message: Message) -> Sequence[Message]:
        masker = message.attributes.get(MASKER_ATTRIBUTE)
        if not isinstance(masker, Masker):
            return [message]
        attributes = {k: v for k, v in message.attributes.items() if k != MASKER_ATTRIBUTE}
        return [message.derive(_walk(message.payload, masker.restore), attributes=attributes)]
