"""Where breaker state lives: in this process, or in Redis shared by every gateway process.

A :class:`BreakerStore` offers one operation per transition of one key's breaker (allow, record,
release, cool_down, snapshot); each is atomic. :class:`MemoryBreakerStore` runs
:class:`~interlace.resilience.breaker.Circuit` inside the event loop (no await inside a transition, so
no lock). :class:`RedisBreakerStore` runs the same state machine as one Lua script per operation, so
two processes never both take the only half-open probe and never lose an outcome.

Redis layout: one hash per key, ``{prefix}:breaker:{key}``, fields ``st`` (``open`` while open or
half-open, absent while closed), ``oa`` (opened at), ``cu`` (cooling until), ``pr`` (probe slots,
``token=expires;``...), ``hd`` (newest window epoch, ``now // bucket width``), ``tf`` / ``ts`` (window
totals) and ``f0``-``f9`` / ``s0``-``s9`` (failures and successes per bucket). Times are integer
milliseconds of the caller's wall clock. Transitions, probe grants and the first outcome of each
bucket keep the key alive at least ``2 * max(window, open_for)`` (a cool-down: until it ends) more,
so idle keys expire. An allow while closed reads four fields and writes nothing; an outcome in the
current bucket reads seven fields and writes five.

The breaker is advisory: when Redis errors or does not answer within ``timeout``, the operation runs
on an in-process fallback store, :attr:`RedisBreakerStore.degraded` turns true, a warning is logged at
most once per ``warn_every`` seconds and Redis is tried again after ``recheck`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING, Any, Protocol

from interlace.resilience.breaker import (
    BUCKETS,
    BreakerSnapshot,
    BreakerState,
    Circuit,
    Permit,
    Refusal,
    RefusalReason,
    bucket_width,
    millis,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

    from interlace.config.schema import BreakerConfig

__all__ = ["BreakerStore", "MemoryBreakerStore", "RedisBreakerStore"]

log = logging.getLogger("interlace.resilience")


class BreakerStore(Protocol):
    """One atomic transition per method; ``now`` is wall-clock seconds from the caller's clock."""

    async def allow(self, key: str, config: BreakerConfig, now: float) -> Permit | Refusal: ...

    async def record(self, permit: Permit, config: BreakerConfig, now: float, *, success: bool) -> None: ...

    async def release(self, permit: Permit, now: float) -> None: ...

    async def cool_down(self, key: str, until: float, now: float) -> None: ...

    async def snapshot(self, key: str, config: BreakerConfig, now: float) -> BreakerSnapshot: ...


class MemoryBreakerStore:
    """Breaker state of this process only. Holds one small :class:`Circuit` per key ever seen."""

    __slots__ = ("_circuits",)

    def __init__(self) -> None:
        self._circuits: dict[str, Circuit] = {}

    def circuit(self, key: str) -> Circuit:
        circuit = self._circuits.get(key)
        if circuit is None:
            circuit = self._circuits[key] = Circuit(key)
        return circuit

    def holds(self, permit: Permit) -> bool:
        """Whether ``permit`` is a probe this store granted and still counts."""
        circuit = self._circuits.get(permit.key)
        return circuit is not None and circuit.holds(permit)

    async def allow(self, key: str, config: BreakerConfig, now: float) -> Permit | Refusal:
        return self.circuit(key).allow(millis(now), config)

    async def record(self, permit: Permit, config: BreakerConfig, now: float, *, success: bool) -> None:
        self.circuit(permit.key).record(permit, millis(now), config, success=success)

    async def release(self, permit: Permit, now: float) -> None:  # noqa: ARG002 - the protocol's shape
        self.circuit(permit.key).release(permit)

    async def cool_down(self, key: str, until: float, now: float) -> None:  # noqa: ARG002
        self.circuit(key).cool_down(millis(until))

    async def snapshot(self, key: str, config: BreakerConfig, now: float) -> BreakerSnapshot:
        return self.circuit(key).snapshot(millis(now), config)


# --- Lua: the transitions of Circuit, one script per operation. KEYS[1] is the hash, ARGV[1] now (ms).

_BUCKET_FIELDS = ", ".join(f"'f{i}', 's{i}'" for i in range(BUCKETS))

_HEAD = """local key, now = KEYS[1], tonumber(ARGV[1])
local function num(v) return tonumber(v) or 0 end
local function keep(ms)  -- time to live at least ms from now; never shortened
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
local function effective(st, oa, open_for)
  if st ~= 'open' then return 'closed' end
  if now < oa + open_for then return 'open' end
  return 'half_open'
end
local function live_probes(raw)  -- {token, expires} of the slots not expired at now
  local live = {}
  for token, expires in string.gmatch(raw or '', '(%w+)=(%d+);') do
    expires = tonumber(expires)
    if expires > now then live[#live + 1] = {token, expires} end
  end
  return live
end
"""

_WINDOW = (
    f"local N = {BUCKETS}\nlocal BUCKETS = {{{_BUCKET_FIELDS}}}\n"
    """local function slide(head, epoch)  -- as Circuit._advance: bucket fields that fall out, nil for all
  if epoch <= head and epoch > head - N then return {} end
  if epoch <= head or epoch - head >= N then return nil end
  local out = {}
  for e = head + 1, epoch do out[#out + 1] = 'f' .. e % N; out[#out + 1] = 's' .. e % N end
  return out
end
local function minus(failures, successes, fields)  -- totals without the buckets in fields
  if fields == nil then return 0, 0 end
  if #fields == 0 then return failures, successes end
  local old = redis.call('HMGET', key, unpack(fields))
  for i = 1, #old, 2 do failures, successes = failures - num(old[i]), successes - num(old[i + 1]) end
  return failures, successes
end
"""
)

_ALLOW = """-- ARGV: now, enabled, open_for, half_open_probes, ttl, token
local st, oa, cu, pr = unpack(redis.call('HMGET', key, 'st', 'oa', 'cu', 'pr'))
oa, cu = num(oa), num(cu)
local open_for = tonumber(ARGV[3])
local state = effective(st, oa, open_for)
if cu > now then
  if state == 'open' and ARGV[2] == '1' then cu = math.max(cu, oa + open_for) end
  return {'cooling_down', state, cu}
end
if state == 'closed' or ARGV[2] == '0' then return {'permit', state, 0} end
if state == 'open' then return {'open', state, oa + open_for} end
local probes = live_probes(pr)
if #probes < tonumber(ARGV[4]) then
  local out = {}
  probes[#probes + 1] = {ARGV[6], now + open_for}
  for i, p in ipairs(probes) do out[i] = p[1] .. '=' .. string.format('%d', p[2]) .. ';' end
  redis.call('HSET', key, 'pr', table.concat(out))
  keep(tonumber(ARGV[5]))
  return {'probe', state, 0}
end
local earliest = probes[1][2]
for _, p in ipairs(probes) do earliest = math.min(earliest, p[2]) end
return {'probing', state, earliest}
"""

_RECORD = """-- ARGV: now, success, probe token or '', bucket width, min_requests, failure_rate, ttl
local epoch = math.floor(now / tonumber(ARGV[4]))
local fs, ss = 'f' .. epoch % N, 's' .. epoch % N
local st, pr, hd, tf, ts, f, s = unpack(redis.call('HMGET', key, 'st', 'pr', 'hd', 'tf', 'ts', fs, ss))
local success, ttl = ARGV[2] == '1', tonumber(ARGV[7])
if ARGV[3] ~= '' then
  for _, p in ipairs(live_probes(pr)) do
    if p[1] == ARGV[3] then
      if success then
        redis.call('HDEL', key, 'st', 'oa', 'pr', 'hd', 'tf', 'ts', unpack(BUCKETS))
      else
        redis.call('HSET', key, 'st', 'open', 'oa', now)
        redis.call('HDEL', key, 'pr')
      end
      keep(ttl)
      return 1
    end
  end
end
if st == 'open' then return 0 end
local head = num(hd)
local drop = slide(head, epoch)
local failures, successes = minus(num(tf), num(ts), drop)
f, s = num(f), num(s)
if drop == nil or #drop > 0 then
  redis.call('HDEL', key, unpack(drop or BUCKETS))
  head, f, s = epoch, 0, 0
elseif head ~= epoch then  -- the clock stepped back a little: count in the newest bucket
  fs, ss = 'f' .. head % N, 's' .. head % N
  f, s = unpack(redis.call('HMGET', key, fs, ss))
  f, s = num(f), num(s)
end
if success then s, successes = s + 1, successes + 1 else f, failures = f + 1, failures + 1 end
redis.call('HSET', key, 'hd', head, 'tf', failures, 'ts', successes, fs, f, ss, s)
local total = failures + successes
if total >= tonumber(ARGV[5]) and failures / total >= tonumber(ARGV[6]) then
  redis.call('HSET', key, 'st', 'open', 'oa', now)
  redis.call('HDEL', key, 'pr')
  keep(ttl)
elseif head ~= num(hd) then
  keep(ttl)  -- once per bucket is enough: the key outlives the window
end
return 2
"""

_RELEASE = """-- ARGV: now, token
local out = {}
for _, p in ipairs(live_probes(redis.call('HGET', key, 'pr'))) do
  if p[1] ~= ARGV[2] then out[#out + 1] = p[1] .. '=' .. string.format('%d', p[2]) .. ';' end
end
if #out > 0 then redis.call('HSET', key, 'pr', table.concat(out)) else redis.call('HDEL', key, 'pr') end
return #out
"""

_COOL_DOWN = """-- ARGV: now, until
local ends = tonumber(ARGV[2])
if ends > num(redis.call('HGET', key, 'cu')) then
  redis.call('HSET', key, 'cu', ends)
  keep(ends - now + 1000)
end
return 1
"""

_SNAPSHOT = """-- ARGV: now, bucket width, open_for
local st, oa, cu, hd, tf, ts = unpack(redis.call('HMGET', key, 'st', 'oa', 'cu', 'hd', 'tf', 'ts'))
local drop = slide(num(hd), math.floor(now / tonumber(ARGV[2])))
local failures, successes = minus(num(tf), num(ts), drop)
local opened = -1
if st == 'open' then opened = num(oa) end
return {effective(st, num(oa), tonumber(ARGV[3])), failures, successes, opened, num(cu)}
"""


class RedisBreakerStore:
    """Breaker state shared through Redis; falls back to in-process state while Redis fails."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        timeout: float = 0.5,
        recheck: float = 1.0,
        warn_every: float = 60.0,
    ) -> None:
        self._prefix = prefix
        self._allow = redis.register_script(_HEAD + _ALLOW)
        self._record = redis.register_script(_HEAD + _WINDOW + _RECORD)
        self._release = redis.register_script(_HEAD + _RELEASE)
        self._cool_down = redis.register_script(_HEAD + _COOL_DOWN)
        self._snapshot = redis.register_script(_HEAD + _WINDOW + _SNAPSHOT)
        self._fallback = MemoryBreakerStore()
        self._timeout = timeout
        self._recheck = recheck
        self._warn_every = warn_every
        self._degraded = False
        self._retry_at = float("-inf")  # while degraded: Redis is not asked before this (wall time)
        self._warned_at = float("-inf")

    @property
    def degraded(self) -> bool:
        """True since an operation fell back to in-process state, until Redis answers again."""
        return self._degraded

    def redis_key(self, key: str) -> str:
        return f"{self._prefix}:breaker:{key}"

    async def allow(self, key: str, config: BreakerConfig, now: float) -> Permit | Refusal:
        token = secrets.token_hex(8)  # used only if a probe slot is granted
        ttl = _ttl(config)
        args = (
            millis(now),
            int(config.enabled),
            millis(config.open_for),
            config.half_open_probes,
            ttl,
            token,
        )
        reply = await self._run(self._allow, key, args, now)
        if reply is None:
            return await self._fallback.allow(key, config, now)
        kind = _text(reply[0])
        if kind == "permit":
            return Permit(key, probe=False, token=None)
        if kind == "probe":
            return Permit(key, probe=True, token=token)
        return Refusal(key, BreakerState(_text(reply[1])), int(reply[2]) / 1000, _reason(kind))

    async def record(self, permit: Permit, config: BreakerConfig, now: float, *, success: bool) -> None:
        if permit.probe and self._fallback.holds(permit):
            await self._fallback.record(permit, config, now, success=success)
            return
        token = permit.token if permit.probe and permit.token is not None else ""
        args = (
            millis(now),
            int(success),
            token,
            bucket_width(config),
            config.min_requests,
            config.failure_rate,
            _ttl(config),
        )
        if await self._run(self._record, permit.key, args, now) is None:
            await self._fallback.record(permit, config, now, success=success)

    async def release(self, permit: Permit, now: float) -> None:
        if permit.token is None:
            return
        if (
            self._fallback.holds(permit)
            or await self._run(self._release, permit.key, (millis(now), permit.token), now) is None
        ):
            await self._fallback.release(permit, now)

    async def cool_down(self, key: str, until: float, now: float) -> None:
        if await self._run(self._cool_down, key, (millis(now), millis(until)), now) is None:
            await self._fallback.cool_down(key, until, now)

    async def snapshot(self, key: str, config: BreakerConfig, now: float) -> BreakerSnapshot:
        now_ms = millis(now)
        args = (now_ms, bucket_width(config), millis(config.open_for))
        reply = await self._run(self._snapshot, key, args, now)
        if reply is None:
            return await self._fallback.snapshot(key, config, now)
        failures, successes, opened_at, cooling_until = (int(value) for value in reply[1:5])
        total = failures + successes
        return BreakerSnapshot(
            key=key,
            state=BreakerState(_text(reply[0])),
            failures=failures,
            successes=successes,
            failure_rate=failures / total if total else 0.0,
            opened_at=opened_at / 1000 if opened_at >= 0 else None,
            cooling_until=cooling_until / 1000 if cooling_until > now_ms else None,
        )

    async def _run(
        self, script: AsyncScript, key: str, args: tuple[str | int | float, ...], now: float
    ) -> Any:
        """The script's reply, or None when Redis failed (or failed moments ago): use the fallback."""
        from redis.exceptions import RedisError  # noqa: PLC0415 - redis is imported only when configured

        if self._retry_at - self._recheck <= now < self._retry_at:
            return None
        try:
            async with asyncio.timeout(self._timeout):
                reply = await script(keys=[self.redis_key(key)], args=args)
        except (RedisError, OSError) as error:  # TimeoutError is an OSError
            self._failed(error, now)
            return None
        if self._degraded:
            self._degraded = False
            log.info("Breaker state in Redis is reachable again.")
        return reply

    def _failed(self, error: Exception, now: float) -> None:
        self._degraded = True
        self._retry_at = now + self._recheck
        if not self._warned_at <= now < self._warned_at + self._warn_every:
            self._warned_at = now
            log.warning(
                "Breaker state in Redis is unavailable (%s: %s); using this process's state meanwhile.",
                type(error).__name__,
                str(error) or f"no answer within {self._timeout}s",
            )


def _ttl(config: BreakerConfig) -> int:
    return 2 * max(millis(config.window), millis(config.open_for))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _reason(kind: str) -> RefusalReason:
    if kind == "open":
        return "open"
    if kind == "probing":
        return "probing"
    return "cooling_down"
