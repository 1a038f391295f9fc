"""The Redis store's Lua scripts: reserve and settle every bucket of a request in one atomic step.

Layout per bucket (``KEYS[2i-1]``, ``KEYS[2i]``): a hash ``{prefix}:quota:{name}`` with ``t`` (amount
counted: reservations in the window, or a counter's settled spend plus its open reservations), ``s``
(a counter's settled spend) and ``r:{id}`` (each open reservation's amount); and, for a sliding window,
a sorted set ``{prefix}:quota:{name}:log`` of reservation ids scored by the time they were made (ms).
Expired reservations are trimmed in the same script that reads the total, so the total is exact.
Integers are written with ``%d``: Redis would render a Lua number with 14 significant digits.
"""

from __future__ import annotations

from typing import Final

__all__ = ["RESERVE", "SETTLE", "USED"]

_HEAD = """local now, id = tonumber(ARGV[1]), ARGV[2]
local field = 'r:' .. id
local function int(x) return string.format('%d', x) end
local function num(v) return tonumber(v) or 0 end
local function trim(h, z, window)  -- drop reservations that left the window; the total still in it
  local total = num(redis.call('HGET', h, 't'))
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', now - window)
  if #old > 0 then
    for _, member in ipairs(old) do
      total = total - num(redis.call('HGET', h, 'r:' .. member))
      redis.call('HDEL', h, 'r:' .. member)
    end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now - window)
    redis.call('HSET', h, 't', int(total))
  end
  return total
end
"""

RESERVE: Final = (
    _HEAD
    + """-- ARGV: now, id, then per bucket: limit, window (0: a counter), ends (0: never), amount
local function wait(h, z, window, total, limit, amount)  -- ms until amount fits; -1 never
  if amount > limit then return -1 end
  local need = total + amount - limit
  local entries = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    need = need - num(redis.call('HGET', h, 'r:' .. entries[i]))
    -- at most the window: another gateway's reservation may carry a clock a little ahead of now
    if need <= 0 then return math.min(tonumber(entries[i + 1]) + window - now, window) end
  end
  return window
end
local n = #KEYS / 2
local used, denied, longest = {}, 0, 0
for i = 1, n do
  local h, z, a = KEYS[2 * i - 1], KEYS[2 * i], 2 + 4 * (i - 1)
  local limit, window, ends, amount =
    tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local total
  if window > 0 then total = trim(h, z, window) else total = num(redis.call('HGET', h, 't')) end
  used[i] = total
  if total + amount > limit then
    local w = -1
    if window > 0 then
      w = wait(h, z, window, total, limit, amount)
    elseif ends > 0 and amount <= limit then
      w = ends - now
    end
    if denied == 0 then denied = i end
    if w < 0 or longest < 0 then longest = -1 else longest = math.max(longest, w) end
  end
end
if denied > 0 then return {0, denied - 1, used[denied], longest} end
local out = {1}
for i = 1, n do
  local h, z, a = KEYS[2 * i - 1], KEYS[2 * i], 2 + 4 * (i - 1)
  local window, ends, amount = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local total = used[i] + amount
  redis.call('HSET', h, field, int(amount), 't', int(total))
  local reset, settled = -1, 0
  if window > 0 then
    redis.call('ZADD', z, now, id)
    redis.call('PEXPIRE', h, window * 2)
    redis.call('PEXPIRE', z, window * 2)
    local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
    reset = math.min(tonumber(first[2]) + window - now, window)
  elseif ends > 0 then
    redis.call('PEXPIRE', h, int(ends - now + 86400000))  -- a day's grace for late settlements
    reset = ends - now
  end
  if window == 0 then settled = num(redis.call('HGET', h, 's')) end
  out[#out + 1] = total
  out[#out + 1] = reset
  out[#out + 1] = settled
end
return out
"""
)

SETTLE: Final = (
    _HEAD
    + """-- ARGV: now, id, then per bucket: window (0: a counter), actual amount
local out = {}
for i = 1, #KEYS / 2 do
  local h, z, a = KEYS[2 * i - 1], KEYS[2 * i], 2 + 2 * (i - 1)
  local window, actual = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  if window > 0 then trim(h, z, window) end  -- a reservation that left the window is not settled
  local reserved = redis.call('HGET', h, field)
  if not reserved then
    out[#out + 1] = -1
    out[#out + 1] = -1
  else
    redis.call('HINCRBY', h, 't', int(actual - tonumber(reserved)))
    if window > 0 then
      if actual > 0 then
        redis.call('HSET', h, field, int(actual))
      else
        redis.call('HDEL', h, field)
        redis.call('ZREM', z, id)
      end
      out[#out + 1] = 0
      out[#out + 1] = 0
    else
      redis.call('HDEL', h, field)
      local before = num(redis.call('HGET', h, 's'))
      redis.call('HSET', h, 's', int(before + actual))
      out[#out + 1] = before
      out[#out + 1] = before + actual
    end
  end
end
return out
"""
)

USED: Final = (
    _HEAD
    + """-- ARGV: now, '', window (0: a counter)
local window = tonumber(ARGV[3])
local total = num(redis.call('HGET', KEYS[1], 't'))
if window > 0 then total = trim(KEYS[1], KEYS[2], window) end
return {total, num(redis.call('HGET', KEYS[1], 's'))}
"""
)
