"""NATS JetStream sink: publish and wait for the stream's ack.

Each message carries ``Nats-Msg-Id`` = ``Message.id``, so a redelivered message published again within
the stream's duplicate window is dropped by the server; its headers are carried.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import nats
from nats.errors import Error as NatsError

from interlace.core.errors import ConfigError
from interlace.flows.connectors._codec import encode_payload

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nats.aio.client import Client
    from nats.js import JetStreamContext

    from interlace.flows.connectors.nats.config import NatsSinkConfig
    from interlace.flows.message import Message

__all__ = ["NatsSink"]


class NatsSink:
    def __init__(self, config: NatsSinkConfig, _services: object = None, *, name: str | None = None) -> None:
        self.name = name or f"nats:{config.subject}"
        self.config = config
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    async def start(self) -> None:
        try:
            self._nc = await nats.connect(
                self.config.url.split(","), max_reconnect_attempts=-1, connect_timeout=5
            )
        except (OSError, NatsError) as exc:
            raise ConfigError(
                f"flow sink {self.name!r}: cannot connect to NATS at {self.config.url}: {exc}"
            ) from exc
        self._js = self._nc.jetstream()

    async def write(self, messages: Sequence[Message]) -> None:
        if self._js is None:
            raise RuntimeError("start() the sink first")
        js = self._js
        await asyncio.gather(
            *(
                js.publish(
                    self.config.subject,
                    encode_payload(m.payload),
                    timeout=self.config.timeout,
                    headers={**m.headers, "Nats-Msg-Id": m.id},
                )
                for m in messages
            )
        )

    async def aclose(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await _close(self._nc)
        self._nc = None
        self._js = None


async def _close(nc: Client) -> None:
    """Flush what is buffered (acks, publishes), then close. Not ``drain()``: a pull subscription may
    hold messages that arrived after their fetch gave up, and draining would wait for them forever."""
    with contextlib.suppress(NatsError, OSError, TimeoutError):
        await nc.flush(timeout=2)
    await nc.close()
