"""The Redis store's Lua: token buckets (``take``) and whole-request admission (``admit``).

``BUCKET_FUNCS`` are :func:`server.store.bucket.refill`, ``wait_time`` and ``settle`` (plus the
write), operation for operation: IEEE doubles agree bit for bit only when the same operations
run in the same order. ``BUCKET_LUA`` composes them like ``take_tokens``; ``ADMIT_LUA`` like
:func:`server.throttle.admit.admit_state`. Change both sides in the same commit;
``tests/store/test_redis_bucket.py`` and ``test_redis_admit.py`` check they agree exactly.

``take`` passes numbers as strings with 17 significant digits, which round-trip a double
exactly (Redis would otherwise truncate Lua numbers in replies to integers); ``admit`` packs
them as raw doubles (``struct``), cheaper on both sides. Every script reads everything
first and writes last, so an error reply (WRONGTYPE, a non-integer counter) leaves no partial
write, and it touches only the keys passed in KEYS (Redis Cluster).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = ["ADMIT", "ADMIT_LUA", "BUCKET", "BUCKET_FUNCS", "BUCKET_LUA", "Script"]


@dataclass(frozen=True)
class Script:
    """A Lua script and its SHA1, as EVALSHA wants it."""

    text: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.text.encode()).hexdigest())


BUCKET_FUNCS = """
local function fmt(x)
  return string.format('%.17g', x)
end
local function refill(saved_t, saved_s, rate, burst, now)
  local tokens = burst
  local stamp = now
  if saved_t and saved_s then
    tokens = tonumber(saved_t)
    stamp = tonumber(saved_s)
  end
  local added = 0
  if now > stamp then
    added = (now - stamp) * rate
    stamp = now
  end
  tokens = tokens + added
  if tokens > burst then
    tokens = burst
  end
  return tokens, stamp
end
local function wait_time(tokens, rate, burst, cost)
  if cost > burst or rate == 0 then
    return math.huge
  end
  return (cost - tokens) / rate
end
local function reset_after(tokens, rate, burst)
  if rate == 0 then
    return math.huge
  end
  return (burst - tokens) / rate
end
local function settle(key, tokens, stamp, rate, burst)
  if tokens >= burst then
    redis.call('DEL', key)
    return 0
  end
  redis.call('HSET', key, 't', fmt(tokens), 's', fmt(stamp))
  local wait = reset_after(tokens, rate, burst)
  local ms = math.ceil(wait * 1000)
  if ms < 4e15 then
    redis.call('PEXPIRE', key, ms)
  else
    redis.call('PERSIST', key)
  end
  return wait
end
"""

# ARGV: rate, burst, now, cost; KEYS: the bucket.
BUCKET_LUA = (
    BUCKET_FUNCS
    + """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local saved = redis.call('HMGET', KEYS[1], 't', 's')
local tokens, stamp = refill(saved[1], saved[2], rate, burst, now)
local allowed = cost <= tokens
local retry_after = 0
if allowed then
  tokens = tokens - cost
else
  retry_after = wait_time(tokens, rate, burst, cost)
end
local reset_after = settle(KEYS[1], tokens, stamp, rate, burst)
return {allowed and 1 or 0, fmt(tokens), fmt(retry_after), fmt(reset_after)}
"""
)

# ARGV[1]: little-endian doubles cost, now, quota allowed, quota TTL, usage TTL (TTLs in
# seconds, 0 when there is no quota or usage counter), then rate and burst of each bucket.
# KEYS: the buckets, then the quota counter, then the usage counter (each only if given).
# A bucket is a 16-byte string (tokens, stamp as doubles: exact, nothing to format or parse).
# One MGET reads every key. MGET sees a key of another type as absent (and SET then replaces
# it); a counter holding anything but an integer in [-2**53, 2**53] (where doubles are exact)
# is an error, raised before anything is written.
# Reply: {failed (0: none, i: bucket i, n + 1: the quota), quota count, doubles retry_after and
# the tokens of each bucket}.
ADMIT_LUA = (
    BUCKET_FUNCS
    + """
local function counter(raw)
  if not raw then
    return 0
  end
  local value = nil
  if #raw <= 17 and string.find(raw, '^%-?%d+$') then
    value = tonumber(raw)
  end
  -- The round trip rejects leading zeros, "-0" and digits a double cannot hold exactly.
  if not value or value > 9007199254740992 or value < -9007199254740992
      or string.format('%d', value) ~= raw then
    error({err = 'ERR value is not an integer or out of range'})
  end
  return value
end
local function bump(key, raw, cost, ms)
  if raw then
    redis.call('INCRBY', key, cost)
  else
    redis.call('SET', key, cost, 'PX', ms)
  end
end
local function ttl_ms(ttl)
  return math.max(1, math.ceil(ttl * 1000 - 1e-6))
end
local nums = {struct.unpack('<' .. string.rep('d', #ARGV[1] / 8), ARGV[1])}
local cost, now, allowed, quota_ttl, usage_ttl = nums[1], nums[2], nums[3], nums[4], nums[5]
local n = (#ARGV[1] / 8 - 5) / 2
local has_quota, has_usage = quota_ttl > 0, usage_ttl > 0
local saved = {}
if #KEYS > 0 then
  saved = redis.call('MGET', unpack(KEYS))
end
local quota_raw, usage_raw = false, saved[n + 1]
if has_quota then
  quota_raw, usage_raw = saved[n + 1], saved[n + 2]
end
local toks, stamps = {}, {}
local failed = 0
local retry_after = 0
for i = 1, n do
  local rate, burst = nums[4 + 2 * i], nums[5 + 2 * i]
  local saved_t, saved_s = nil, nil
  if saved[i] and #saved[i] == 16 then
    saved_t, saved_s = struct.unpack('<dd', saved[i])
  end
  local tokens, stamp = refill(saved_t, saved_s, rate, burst, now)
  toks[i], stamps[i] = tokens, stamp
  if failed == 0 and not (cost <= tokens) then
    failed = i
    retry_after = wait_time(tokens, rate, burst, cost)
  end
end
local count = 0
if has_quota then
  count = counter(quota_raw)
end
if has_usage then
  counter(usage_raw)
end
if has_quota and failed == 0 and cost > allowed - count then
  failed = n + 1
end
if failed == 0 then
  if cost > 0 then
    if has_quota then
      bump(KEYS[n + 1], quota_raw, cost, ttl_ms(quota_ttl))
      count = count + cost
    end
    if has_usage then
      bump(KEYS[#KEYS], usage_raw, cost, ttl_ms(usage_ttl))
    end
  end
  for i = 1, n do
    local rate, burst = nums[4 + 2 * i], nums[5 + 2 * i]
    local tokens = toks[i] - cost
    toks[i] = tokens
    if tokens >= burst then
      redis.call('DEL', KEYS[i])
    else
      local state = struct.pack('<dd', tokens, stamps[i])
      local ms = math.ceil(reset_after(tokens, rate, burst) * 1000)
      if ms < 4e15 then
        redis.call('SET', KEYS[i], state, 'PX', ms)
      else
        redis.call('SET', KEYS[i], state)
      end
    end
  end
end
return {failed, count, struct.pack('<' .. string.rep('d', n + 1), retry_after, unpack(toks))}
"""
)

BUCKET = Script(BUCKET_LUA)
ADMIT = Script(ADMIT_LUA)
