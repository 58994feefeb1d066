-- A coupon's live counters in this shard (read-only; read-coupon.lua and read-live.lua):
--   { -1 } when the coupon has no state in Redis, else
--   { 1, total, remaining, seq, startsAt, endsAt, queued, inflight, deadLettered, nowMs, shard, shards,
--     inTransit }
--   inTransit: units this shard gave that no recipient has taken yet (see give-units.lua)
-- Needs redis-now.
local function couponCounters(stateKey, queueKey, inflightKey, deadKey, transfersKey)
  local s = redis.call("HMGET", stateKey, "total", "remaining", "seq", "startsAt", "endsAt", "shard", "shards")
  if not s[1] then
    return { -1 }
  end
  local inTransit = 0
  for _, record in ipairs(redis.call("HVALS", transfersKey)) do
    local units = string.match(record, "^out:(%d+):")
    if units then
      inTransit = inTransit + tonumber(units)
    end
  end
  return {
    1,
    tonumber(s[1]), tonumber(s[2]), tonumber(s[3]), tonumber(s[4]), tonumber(s[5]),
    redis.call("ZCARD", queueKey), redis.call("ZCARD", inflightKey), redis.call("ZCARD", deadKey),
    redisNowMs(), tonumber(s[6]) or 0, tonumber(s[7]) or 1, inTransit,
  }
end
