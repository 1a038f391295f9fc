"""In-memory fakes of the flow ports, for the engine's semantics only (never a real connector).

:class:`MemorySource` hands out a list of messages and records every ack and nack (and the most
deliveries it ever had unacknowledged at once); :class:`MemorySink` keeps what it was given and can
fail, refuse or block on demand; :class:`FunctionStep` makes a step of a plain function. Tests of
the engine (ack after sink, backpressure, retries, dead letters, dedupe, ordering, drain, batches)
run on these without any service; the real connectors have their own tests and the contract suite.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from interlace.core.errors import MessageRejected
from interlace.flows.message import Message

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence

__all__ = ["FunctionStep", "MemoryDelivery", "MemorySink", "MemorySource", "messages"]


def messages(payloads: Iterable[Any], *, key: Callable[[Any], str | None] | None = None) -> list[Message]:
    """Messages ``m0``, ``m1`` … with the given payloads (and keys)."""
    return [
        Message(id=f"m{index}", payload=payload, key=key(payload) if key else None, source="memory")
        for index, payload in enumerate(payloads)
    ]


@dataclass(slots=True)
class MemoryDelivery:
    owner: MemorySource
    message: Message
    redelivered: bool = False
    settled: bool = False

    async def ack(self) -> None:
        self.owner._settle(self, acked=True)  # noqa: SLF001

    async def nack(self, *, requeue: bool = True) -> None:
        self.owner._settle(self, acked=False, requeue=requeue)  # noqa: SLF001


@dataclass(slots=True, eq=False)
class MemorySource:
    """Delivers ``initial`` (and what :meth:`put` adds); ends when empty if ``finite``."""

    initial: list[Message] = field(default_factory=list)
    name: str = "memory"
    finite: bool = True
    redeliver_nacked: bool = False
    """Put nacked messages back at the end of the queue (as a broker would)."""
    acked: list[str] = field(default_factory=list)
    nacked: list[str] = field(default_factory=list)
    unacked: int = 0
    peak_unacked: int = 0
    started: bool = False
    closed: bool = False
    on_settle: Callable[[Message, bool], None] | None = None
    """Called with each message and whether it was acked, as it is settled."""
    _queue: deque[tuple[Message, bool]] = field(default_factory=deque)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._queue.extend((m, False) for m in self.initial)

    def put(self, message: Message) -> None:
        self._queue.append((message, False))
        self._wake.set()

    async def start(self) -> None:
        self.started = True

    async def deliveries(self, *, max_in_flight: int) -> AsyncIterator[MemoryDelivery]:
        while True:
            while not self._queue:
                if self.finite and self.unacked == 0:
                    return
                self._wake.clear()
                await self._wake.wait()
            message, redelivered = self._queue.popleft()
            self.unacked += 1
            self.peak_unacked = max(self.peak_unacked, self.unacked)
            if self.unacked > max_in_flight:
                msg = f"{self.unacked} deliveries unacknowledged, more than max_in_flight={max_in_flight}"
                raise AssertionError(msg)
            yield MemoryDelivery(self, message, redelivered)

    def _settle(self, delivery: MemoryDelivery, *, acked: bool, requeue: bool = True) -> None:
        if delivery.settled:
            msg = f"delivery {delivery.message.id} settled twice"
            raise AssertionError(msg)
        delivery.settled = True
        if self.on_settle is not None:
            self.on_settle(delivery.message, acked)
        self.unacked -= 1
        (self.acked if acked else self.nacked).append(delivery.message.id)
        if not acked and requeue and self.redeliver_nacked:
            self._queue.append((delivery.message, True))
        self._wake.set()

    async def aclose(self) -> None:
        self.closed = True


@dataclass(slots=True, eq=False)
class MemorySink:
    """Keeps every message written; ``fail`` transient failures first, ``reject`` ids refused for good."""

    name: str = "memory"
    written: list[Message] = field(default_factory=list)
    fail: int = 0
    reject: set[str] = field(default_factory=set)
    hold: asyncio.Event | None = None
    """When set to an unset event, writes wait for it (to keep messages in flight)."""
    writes: int = 0
    started: bool = False
    closed: bool = False

    @property
    def payloads(self) -> list[Any]:
        return [m.payload for m in self.written]

    async def start(self) -> None:
        self.started = True

    async def write(self, messages: Sequence[Message]) -> None:
        self.writes += 1
        if self.hold is not None:
            await self.hold.wait()
        if self.fail > 0:
            self.fail -= 1
            msg = "the sink is down (fake)"
            raise ConnectionError(msg)
        refused = [m.id for m in messages if m.id in self.reject]
        if refused:
            msg = f"message {refused[0]} refused (fake)"
            raise MessageRejected(msg)
        self.written.extend(messages)

    async def aclose(self) -> None:
        self.closed = True


class FunctionStep:
    """A step from a function of a message: returns a payload, a message, a list of them, or None."""

    def __init__(self, name: str, function: Callable[[Message], Any | Awaitable[Any]]) -> None:
        self.name = name
        self.function = function
        self.calls = 0

    async def process(self, message: Message) -> Sequence[Message]:
        self.calls += 1
        result = self.function(message)
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            return []
        if isinstance(result, Message):
            return [result]
        if isinstance(result, list) and all(isinstance(r, Message) for r in result):
            return result
        return [message.derive(result)]
