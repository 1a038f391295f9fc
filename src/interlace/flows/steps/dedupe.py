"""The ``dedupe`` step: drop a message whose key was delivered within the window.

The key (CEL over the message) is checked when the message passes and recorded only once the sinks
confirmed the message's outputs (the engine calls :meth:`DedupeStep.confirmed`): a message that
failed or was lost in a crash never blocks its retry. State is per process in memory, or in Redis
(``SET key 1 PX window``) shared by every process of the flow. Two copies in flight at the same
moment may both pass; ``ordering: key`` with the same key serialises them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from interlace.flows.steps.transform import cel_value, compile_cel

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.asyncio import Redis

    from interlace.flows.message import Message
    from interlace.flows.services import FlowServices
    from interlace.flows.steps.config import DedupeStepConfig

__all__ = ["DedupeStep"]

_ATTRIBUTE = "dedupe:"
_SWEEP_AT = 10_000
"""Remembered keys past which expired ones are swept (memory store)."""


class DedupeStep:
    def __init__(self, config: DedupeStepConfig, services: FlowServices) -> None:
        self.config = config
        self.name = config.name or "dedupe"
        self._program = compile_cel(config.key)
        self._attribute = f"{_ATTRIBUTE}{self.name}"
        self._memory: dict[str, float] = {}
        self._redis: Redis | None = None
        self._prefix = f"{services.redis_prefix}:flow:{services.flow}:{self.name}:"
        if config.store == "redis":
            self._redis = services.need(services.redis, "Redis", "add a top-level redis: {url: …}")

    async def process(self, message: Message) -> Sequence[Message]:
        key = str(cel_value(self._program, message, "dedupe key"))
        if await self._seen(key):
            return []
        return [message.derive(message.payload, attributes={**message.attributes, self._attribute: key})]

    async def confirmed(self, outputs: Sequence[Message]) -> None:
        keys = {str(m.attributes[self._attribute]) for m in outputs if self._attribute in m.attributes}
        if self._redis is not None:
            window_ms = int(self.config.window * 1000)
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    _ = pipe.set(self._prefix + key, b"1", px=window_ms)
                await pipe.execute()
            return
        expires = time.monotonic() + self.config.window
        for key in keys:
            self._memory[key] = expires

    async def _seen(self, key: str) -> bool:
        if self._redis is not None:
            return bool(await self._redis.exists(self._prefix + key))
        now = time.monotonic()
        if len(self._memory) > _SWEEP_AT:  # forget expired keys now and then
            self._memory = {k: t for k, t in self._memory.items() if t > now}
        expires = self._memory.get(key)
        return expires is not None and expires > now
