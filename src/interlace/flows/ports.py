"""What the flow engine calls: sources, sinks and steps, each a small interface.

Every connector package (``flows/connectors/nats/``, ``…/rabbitmq/``, ``…/postgres/`` …) implements
these with the same file names, and one contract suite (``tests/flows/contract/``) runs against each.

Backpressure: the engine never holds more than ``max_in_flight`` unacknowledged deliveries per flow.
A source must not fetch far ahead of what the engine asks for (JetStream pull batches, AMQP prefetch /
QoS, ``XREADGROUP COUNT``, MQTT receive maximum): when the engine stops pulling, the broker holds the
rest, and memory stays flat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from interlace.flows.message import Delivery, Message

__all__ = ["Sink", "Source", "Step"]


class Source(Protocol):
    name: str

    async def start(self) -> None:
        """Connect, create what the source needs (durable consumer, queue binding, consumer group,
        replication slot …); raise a :class:`~interlace.core.errors.ConfigError`-like error naming the
        fix when the service refuses."""
        ...

    def deliveries(self, *, max_in_flight: int) -> AsyncIterator[Delivery]:
        """Deliveries as they arrive; never more than ``max_in_flight`` fetched and unacknowledged."""
        ...

    async def aclose(self) -> None:
        """Stop fetching; deliveries already handed out may still be acknowledged until this returns
        (drain first: the engine acks or nacks every in-flight delivery before calling it)."""
        ...


class Sink(Protocol):
    name: str

    async def start(self) -> None: ...

    async def write(self, messages: Sequence[Message]) -> None:
        """Deliver ``messages`` and return only when the destination confirmed them durably (publisher
        confirms, JetStream ack, a committed transaction, a 2xx, an fsync). Raise on failure: the
        engine retries, then dead-letters. Idempotent where the destination allows it (by
        ``Message.id`` / ``Message.position``), so redelivery after a crash never double-applies."""
        ...

    async def aclose(self) -> None: ...


class Step(Protocol):
    name: str

    async def process(self, message: Message) -> Sequence[Message]:
        """Zero messages (filtered out, deduplicated), one (mapped, enriched, an AI answer added) or
        several (split). Raise to fail the message: the engine retries per the step's policy, then
        dead-letters it with the step's name and the error."""
        ...
