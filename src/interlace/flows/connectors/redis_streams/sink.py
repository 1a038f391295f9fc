"""Redis Streams sink: ``XADD`` once per ``Message.id``.

One Lua script per message sets a marker key (``SET NX EX dedupe_ttl``) and adds the entry only when
the marker was new, atomically: a redelivered message within ``dedupe_ttl`` is not added twice. The
entry's fields are ``id``, ``payload`` (JSON), ``key`` and ``headers`` (JSON).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from interlace.core.errors import ConfigError
from interlace.flows.connectors._codec import encode_payload

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.commands.core import AsyncScript

    from interlace.flows.connectors.redis_streams.config import RedisStreamSinkConfig
    from interlace.flows.message import Message

__all__ = ["RedisStreamSink"]

_XADD_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  local args = {KEYS[1]}
  if ARGV[2] ~= '' then
    args[#args + 1] = 'MAXLEN'
    args[#args + 1] = '~'
    args[#args + 1] = ARGV[2]
  end
  args[#args + 1] = '*'
  for i = 3, #ARGV do args[#args + 1] = ARGV[i] end
  return redis.call('XADD', unpack(args))
end
return false
"""


class RedisStreamSink:
    def __init__(
        self, config: RedisStreamSinkConfig, _services: object = None, *, name: str | None = None
    ) -> None:
        self.name = name or f"redis-streams:{config.stream}"
        self.config = config
        self._redis: aioredis.Redis | None = None
        self._script: AsyncScript | None = None

    async def start(self) -> None:
        self._redis = aioredis.Redis.from_url(self.config.url)
        try:
            await self._redis.ping()
        except (OSError, RedisError) as exc:
            await self.aclose()
            raise ConfigError(
                f"flow sink {self.name!r}: cannot reach Redis at {self.config.url}: {exc}"
            ) from exc
        self._script = self._redis.register_script(_XADD_ONCE)

    async def write(self, messages: Sequence[Message]) -> None:
        if self._redis is None or self._script is None:
            raise RuntimeError("start() the sink first")
        cfg = self.config
        async with self._redis.pipeline(transaction=False) as pipe:
            for m in messages:
                fields: list[Any] = [
                    "id",
                    m.id,
                    "payload",
                    encode_payload(m.payload),
                    "headers",
                    json.dumps(m.headers),
                ]
                if m.key is not None:
                    fields += ["key", m.key]
                await self._script(
                    keys=[cfg.stream, f"{cfg.stream}:written:{m.id}"],
                    args=[cfg.dedupe_ttl, cfg.maxlen or "", *fields],
                    client=pipe,
                )
            await pipe.execute()

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        self._redis = None
        self._script = None
