"""The ``batch`` step: ``size`` messages (or ``window`` seconds' worth) in one embed or classify call.

The engine batches it (:mod:`interlace.flows.batching`); acknowledgements stay per message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlace.flows.steps.ai import ClassifyStep, EmbedStep
from interlace.flows.steps.config import EmbedStepConfig

if TYPE_CHECKING:
    from collections.abc import Sequence

    from interlace.flows.message import Message
    from interlace.flows.services import FlowServices
    from interlace.flows.steps.config import BatchStepConfig

__all__ = ["BatchStep"]


class BatchStep:
    def __init__(self, config: BatchStepConfig, services: FlowServices) -> None:
        self.name = config.name or f"batch-{config.step.type}"
        self.size = config.size
        self.window = config.window
        self.inner: EmbedStep | ClassifyStep = (
            EmbedStep(config.step, services)
            if isinstance(config.step, EmbedStepConfig)
            else ClassifyStep(config.step, services)
        )

    async def process_batch(self, messages: Sequence[Message]) -> Sequence[Sequence[Message]]:
        return await self.inner.process_batch(messages)
