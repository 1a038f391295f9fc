"""The webhook source: events from the flow inbox, leased while in flight, deleted on ack.

Delivery is at least once: an event whose process dies is handed out again when its lease expires
(``redelivered`` is true when it was handed out before). Leases of events still in flight are renewed
every ``lease / 3`` seconds. At most ``max_in_flight`` events are leased by one process at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import TYPE_CHECKING

from interlace.flows.connectors.webhook.inbox import Inbox, InboxEvent
from interlace.flows.message import Message

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from interlace.flows.connectors.webhook.config import WebhookSourceConfig
    from interlace.flows.services import FlowServices

__all__ = ["WebhookDelivery", "WebhookSource"]

log = logging.getLogger("interlace.flows.webhook")


class WebhookDelivery:
    __slots__ = ("_event", "_message", "_source")

    def __init__(self, source: WebhookSource, event: InboxEvent, message: Message) -> None:
        self._source = source
        self._event = event
        self._message = message

    @property
    def message(self) -> Message:
        return self._message

    @property
    def redelivered(self) -> bool:
        return self._event.attempts > 1

    async def ack(self) -> None:
        try:
            await self._source.inbox.ack(self._event.row, self._source.owner)
        finally:
            self._source._settled(self._event.row)  # noqa: SLF001

    async def nack(self, *, requeue: bool = True) -> None:
        del requeue  # the inbox has no dead letters of its own: a nacked event is handed out again
        try:
            await self._source.inbox.nack(self._event.row, self._source.owner)
        finally:
            self._source._settled(self._event.row)  # noqa: SLF001


class WebhookSource:
    def __init__(self, config: WebhookSourceConfig, services: FlowServices) -> None:
        self.config = config
        self.flow = services.flow
        self.name = f"webhook:{services.flow}"
        database = services.need(services.database, "the state database", "run it with a runtime")
        self.inbox = Inbox(database)
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{os.urandom(3).hex()}"
        self._held: set[int] = set()
        self._freed = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._renewer = asyncio.create_task(self._renew())

    async def lag(self) -> int:
        return await self.inbox.pending(self.flow)

    async def deliveries(self, *, max_in_flight: int) -> AsyncIterator[WebhookDelivery]:
        while True:
            free = max_in_flight - len(self._held)
            if free <= 0:
                self._freed.clear()
                await self._freed.wait()
                continue
            events = await self.inbox.lease(self.flow, self.owner, limit=free, seconds=self.config.lease)
            if not events:
                await asyncio.sleep(self.config.poll_interval)
                continue
            for event in events:
                self._held.add(event.row)
                yield WebhookDelivery(self, event, self._message(event))

    def _message(self, event: InboxEvent) -> Message:
        payload = event.payload
        key = event.key
        field = self.config.key_field
        if key is None and field is not None and isinstance(payload, dict) and payload.get(field) is not None:
            key = str(payload[field])
        return Message(
            id=event.event_id,
            payload=payload,
            key=key,
            headers=dict(event.headers),
            source=self.name,
            position=str(event.row),
        )

    def _settled(self, row: int) -> None:
        self._held.discard(row)
        self._freed.set()

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.config.lease / 3)
            try:
                await self.inbox.renew(sorted(self._held), self.owner, seconds=self.config.lease)
            except Exception:  # a lease that lapses only means a possible redelivery
                log.exception("flow %s: could not renew webhook leases", self.flow)

    async def aclose(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        for row in sorted(self._held):  # leased but never handed to the engine: free them now
            with contextlib.suppress(Exception):
                await self.inbox.nack(row, self.owner)
        self._held.clear()
