#!lua flags=no-writes,allow-key-locking
--[[
  Read a coupon's live counters in this shard (read-only).

  Input:
    KEYS[1] state      HASH total, remaining, seq, startsAt, endsAt, shard, shards, ...
    KEYS[2] queue      ZSET
    KEYS[3] inflight   ZSET
    KEYS[4] dead       ZSET
    KEYS[5] transfers  HASH transferId -> "out:<units>:<toShard>:<atMs>" | "in:..."

  Output:
    { -1 } when the coupon has no state in Redis, else
    { 1, total, remaining, seq, startsAt, endsAt, queued, inflight, deadLettered, nowMs, shard, shards,
      inTransit }
    inTransit: units this shard gave that no recipient has taken yet (see give-units.lua)
]]
--@include redis-now

local s = redis.call("HMGET", KEYS[1], "total", "remaining", "seq", "startsAt", "endsAt", "shard", "shards")
if not s[1] then
  return { -1 }
end
local inTransit = 0
for _, record in ipairs(redis.call("HVALS", KEYS[5])) do
  local units = string.match(record, "^out:(%d+):")
  if units then
    inTransit = inTransit + tonumber(units)
  end
end
return {
  1,
  tonumber(s[1]), tonumber(s[2]), tonumber(s[3]), tonumber(s[4]), tonumber(s[5]),
  redis.call("ZCARD", KEYS[2]), redis.call("ZCARD", KEYS[3]), redis.call("ZCARD", KEYS[4]),
  redisNowMs(), tonumber(s[6]) or 0, tonumber(s[7]) or 1, inTransit,
}
