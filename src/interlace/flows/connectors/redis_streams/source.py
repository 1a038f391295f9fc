"""Redis Streams source: a consumer group with pending-entry recovery.

``XREADGROUP COUNT`` never asks for more than the free in-flight slots; an entry is ``XACK``-ed once
the sinks confirmed it. Recovery: at start the consumer re-reads its own pending entries (a restart
under the same name), and at start and every ``claim_interval`` it takes over entries idle longer than
``claim_idle`` from any consumer (``XAUTOCLAIM``: a dead process's messages are not stranded). A nack
with requeue re-delivers the entry to this consumer on the next read (``XCLAIM``); without requeue the
entry is acknowledged and dropped.

An entry written by the Redis Streams sink (fields ``id``, ``payload``, ``key``, ``headers``) decodes
back to that message; any other entry's fields become the payload (``Message.id`` = the entry id).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from typing import TYPE_CHECKING, Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from interlace.core.errors import ConfigError
from interlace.flows.connectors._codec import decode_payload
from interlace.flows.connectors._delivery import BrokerDelivery
from interlace.flows.connectors._slots import Slots
from interlace.flows.message import Delivery, Message

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from interlace.flows.connectors.redis_streams.config import RedisStreamSourceConfig

__all__ = ["RedisStreamDelivery", "RedisStreamSource"]

Entry = tuple[bytes, dict[bytes, bytes] | None]


class RedisStreamDelivery(BrokerDelivery):
    def __init__(self, source: RedisStreamSource, entry_id: bytes, message: Message, **kw: Any) -> None:
        super().__init__(message, **kw)
        self._source = source
        self._entry_id = entry_id

    async def _ack(self) -> None:
        await self._source.settle(self._entry_id, requeue=False)

    async def _nack(self, *, requeue: bool) -> None:
        await self._source.settle(self._entry_id, requeue=requeue)


class RedisStreamSource:
    def __init__(
        self, config: RedisStreamSourceConfig, _services: object = None, *, name: str | None = None
    ) -> None:
        self.name = name or f"redis-streams:{config.stream}"
        self.config = config
        self.consumer = config.consumer or f"{socket.gethostname()}-{os.getpid()}"
        self._redis: aioredis.Redis | None = None
        self._closing = asyncio.Event()
        self._in_flight: set[bytes] = set()
        self._retry: list[bytes] = []

    async def start(self) -> None:
        cfg = self.config
        self._redis = aioredis.Redis.from_url(cfg.url)
        try:
            await self._redis.xgroup_create(cfg.stream, cfg.group, id=cfg.start_id, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise ConfigError(f"flow source {self.name!r}: Redis stream {cfg.stream!r}: {exc}") from exc
        except (OSError, RedisError) as exc:
            await self.aclose()
            raise ConfigError(f"flow source {self.name!r}: cannot reach Redis at {cfg.url}: {exc}") from exc

    async def deliveries(self, *, max_in_flight: int) -> AsyncIterator[Delivery]:
        if self._redis is None:
            raise RuntimeError("start() the source first")
        slots = Slots(max_in_flight)
        own_cursor: bytes | None = b"0"
        next_claim = 0.0
        while not self._closing.is_set():
            free = await slots.wait_free()
            redelivered = True
            if self._retry:
                entries = await self._reclaim(free)
            elif own_cursor is not None:
                entries = await self._read(own_cursor, free, block=None)
                own_cursor = entries[-1][0] if entries else None
            elif time.monotonic() >= next_claim:
                entries = await self._autoclaim(free)
                next_claim = time.monotonic() + self.config.claim_interval
            else:
                entries = []
            if not entries:
                entries = await self._read(b">", free, block=self.config.block)
                redelivered = False
            for entry_id, fields in entries:
                if entry_id in self._in_flight:
                    continue
                if not fields:  # trimmed away while pending: nothing left to deliver
                    await self._redis.xack(self.config.stream, self.config.group, entry_id)
                    continue
                slots.take()
                self._in_flight.add(entry_id)
                message = self._message(entry_id, fields)
                yield RedisStreamDelivery(self, entry_id, message, redelivered=redelivered, slots=slots)

    async def _read(self, cursor: bytes, count: int, *, block: float | None) -> list[Entry]:
        assert self._redis is not None
        cfg = self.config
        reply = await self._redis.xreadgroup(
            cfg.group,
            self.consumer,
            {cfg.stream: cursor},
            count=count,
            block=None if block is None else int(block * 1000),
        )
        batches = cast("list[tuple[bytes, list[Entry]]]", reply or [])
        return [entry for _, entries in batches for entry in entries]

    async def _autoclaim(self, count: int) -> list[Entry]:
        assert self._redis is not None
        cfg = self.config
        reply = await self._redis.xautoclaim(
            cfg.stream, cfg.group, self.consumer, int(cfg.claim_idle * 1000), start_id="0-0", count=count
        )
        return list(cast("list[Entry]", reply[1]))

    async def _reclaim(self, count: int) -> list[Entry]:
        assert self._redis is not None
        ids, self._retry = self._retry[:count], self._retry[count:]
        cfg = self.config
        reply = await self._redis.xclaim(cfg.stream, cfg.group, self.consumer, 0, list[Any](ids))
        return list(cast("list[Entry]", reply))

    async def settle(self, entry_id: bytes, *, requeue: bool) -> None:
        """Acknowledge an entry, or (``requeue``) hand it out again on the next read."""
        self._in_flight.discard(entry_id)
        if requeue:
            self._retry.append(entry_id)
        elif self._redis is not None:
            await self._redis.xack(self.config.stream, self.config.group, entry_id)

    def _message(self, entry_id: bytes, fields: dict[bytes, bytes]) -> Message:
        text = {k.decode("utf-8", "replace"): v for k, v in fields.items()}
        source = f"redis-streams:{self.config.stream}"
        if "payload" in text:
            key = text.get("key")
            headers = json.loads(text["headers"]) if "headers" in text else {}
            return Message(
                id=text["id"].decode() if "id" in text else entry_id.decode(),
                payload=decode_payload(text["payload"]),
                key=key.decode() if key else None,
                headers={str(k): str(v) for k, v in headers.items()},
                source=source,
                position=entry_id.decode(),
            )
        payload = {k: v.decode("utf-8", "replace") for k, v in text.items()}
        return Message(id=entry_id.decode(), payload=payload, source=source, position=entry_id.decode())

    async def aclose(self) -> None:
        self._closing.set()
        if self._redis is not None:
            await self._redis.aclose()
        self._redis = None
