"""The shared half of every connector's :class:`~interlace.flows.message.Delivery`.

A delivery is settled once: the first ``ack`` or ``nack`` reaches the broker and gives the in-flight
slot back; later calls are no-ops (the engine may nack after a failed ack during shutdown).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from interlace.flows.connectors._slots import Slots
    from interlace.flows.message import Message

__all__ = ["BrokerDelivery"]


class BrokerDelivery(ABC):
    def __init__(self, message: Message, *, redelivered: bool, slots: Slots | None) -> None:
        self._message = message
        self._redelivered = redelivered
        self._slots = slots
        self._settled = False

    @property
    def message(self) -> Message:
        return self._message

    @property
    def redelivered(self) -> bool:
        return self._redelivered

    @property
    def settled(self) -> bool:
        return self._settled

    async def ack(self) -> None:
        if self._settled:
            return
        self._settled = True
        try:
            await self._ack()
        finally:
            self._release()

    async def nack(self, *, requeue: bool = True) -> None:
        if self._settled:
            return
        self._settled = True
        try:
            await self._nack(requeue=requeue)
        finally:
            self._release()

    def _release(self) -> None:
        """The slot comes back once the broker has the answer, so fetching never runs ahead of it."""
        if self._slots is not None:
            self._slots.give()

    @abstractmethod
    async def _ack(self) -> None: ...

    @abstractmethod
    async def _nack(self, *, requeue: bool) -> None: ...
