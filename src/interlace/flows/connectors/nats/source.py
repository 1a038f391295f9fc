"""NATS JetStream source: a durable pull consumer with explicit acks.

Each pull asks for at most the free in-flight slots, so the server keeps what the flow cannot take
(``max_ack_pending`` caps it across every process sharing the durable). ``Message.id`` is the
publisher's ``Nats-Msg-Id`` header when present, else ``<stream>:<stream sequence>``; ``position`` is the
stream sequence; ``redelivered`` comes from the delivery count in the ack metadata. A nack with requeue
asks for redelivery now (``NAK``); without requeue the message is terminated (``TERM``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import nats
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from interlace.core.errors import ConfigError
from interlace.flows.connectors._codec import decode_payload
from interlace.flows.connectors._delivery import BrokerDelivery
from interlace.flows.connectors._slots import Slots
from interlace.flows.message import Delivery, Message, header_map

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

    from interlace.flows.connectors.nats.config import NatsSourceConfig

__all__ = ["NatsDelivery", "NatsSource"]

log = logging.getLogger(__name__)
_RETRY_PAUSE = 0.5


class NatsDelivery(BrokerDelivery):
    def __init__(self, msg: Msg, message: Message, *, slots: Slots) -> None:
        super().__init__(message, redelivered=msg.metadata.num_delivered > 1, slots=slots)
        self._msg = msg

    async def _ack(self) -> None:
        await self._msg.ack()

    async def _nack(self, *, requeue: bool) -> None:
        if requeue:
            await self._msg.nak()
        else:
            await self._msg.term()


class NatsSource:
    def __init__(
        self, config: NatsSourceConfig, _services: object = None, *, name: str | None = None
    ) -> None:
        self.name = name or f"nats:{config.stream}"
        self.config = config
        self._nc: Client | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._closing = asyncio.Event()

    async def start(self) -> None:
        cfg = self.config
        try:
            self._nc = await nats.connect(cfg.url.split(","), max_reconnect_attempts=-1, connect_timeout=5)
        except (OSError, NatsError) as exc:
            raise ConfigError(
                f"flow source {self.name!r}: cannot connect to NATS at {cfg.url}: {exc}"
            ) from exc
        js = self._nc.jetstream()
        await self._ensure_stream(js)
        consumer = ConsumerConfig(
            durable_name=cfg.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=cfg.ack_wait,
            max_ack_pending=cfg.max_ack_pending,
            filter_subject=cfg.filter_subject,
        )
        self._sub = await self._bind(js, consumer)

    async def _bind(
        self, js: JetStreamContext, consumer: ConsumerConfig
    ) -> JetStreamContext.PullSubscription:
        cfg = self.config
        try:
            await js.consumer_info(cfg.stream, cfg.durable)
        except NotFoundError:
            await js.add_consumer(cfg.stream, consumer)
        return await js.pull_subscribe_bind(durable=cfg.durable, stream=cfg.stream)

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        cfg = self.config
        try:
            await js.stream_info(cfg.stream)
        except NotFoundError:
            if not cfg.create_stream or not cfg.subjects:
                raise ConfigError(
                    f"flow source {self.name!r}: JetStream stream {cfg.stream!r} does not exist — create it "
                    "or set create_stream: true with its subjects"
                ) from None
            await js.add_stream(
                StreamConfig(
                    name=cfg.stream,
                    subjects=list(cfg.subjects),
                    storage=StorageType.FILE,
                    duplicate_window=cfg.duplicate_window,
                )
            )

    async def deliveries(self, *, max_in_flight: int) -> AsyncIterator[Delivery]:
        if self._sub is None:
            raise RuntimeError("start() the source first")
        if max_in_flight > self.config.max_ack_pending:
            raise ConfigError(
                f"flow source {self.name!r}: max_in_flight {max_in_flight} exceeds the consumer's "
                f"max_ack_pending {self.config.max_ack_pending} — raise max_ack_pending"
            )
        slots = Slots(max_in_flight)
        while not self._closing.is_set():
            free = await slots.wait_free()
            try:
                batch = await self._sub.fetch(free, timeout=self.config.fetch_timeout)
            except (NatsTimeout, TimeoutError):  # nothing arrived within fetch_timeout
                continue
            except (NatsError, OSError) as exc:
                if self._closing.is_set():
                    return
                log.warning("flow source %s: fetch failed (%r); retrying", self.name, exc)
                await asyncio.sleep(_RETRY_PAUSE)
                continue
            for msg in batch:
                slots.take()
                yield NatsDelivery(msg, self._message(msg), slots=slots)

    def _message(self, msg: Msg) -> Message:
        seq = msg.metadata.sequence.stream
        headers = header_map(msg.headers)
        return Message(
            id=headers.get("Nats-Msg-Id") or f"{self.config.stream}:{seq}",
            payload=decode_payload(msg.data),
            key=msg.subject,
            headers=headers,
            source=f"nats:{self.config.stream}",
            position=str(seq),
        )

    async def aclose(self) -> None:
        self._closing.set()
        if self._nc is not None and not self._nc.is_closed:
            await _close(self._nc)
        self._nc = None
        self._sub = None


async def _close(nc: Client) -> None:
    """Flush what is buffered (acks, publishes), then close. Not ``drain()``: a pull subscription may
    hold messages that arrived after their fetch gave up, and draining would wait for them forever."""
    with contextlib.suppress(NatsError, OSError, TimeoutError):
        await nc.flush(timeout=2)
    await nc.close()
