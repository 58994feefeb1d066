#!lua flags=no-writes,allow-key-locking
--[[
  Read a coupon's live counters (read-only).

  Input:
    KEYS[1] state      HASH total, remaining, seq, startsAt, endsAt, ...
    KEYS[2] queue      ZSET
    KEYS[3] inflight   ZSET
    KEYS[4] dead       ZSET

  Output:
    { -1 } when the coupon has no state in Redis, else
    { 1, total, remaining, seq, startsAt, endsAt, queued, inflight, deadLettered, nowMs }
]]
--@include redis-now

local s = redis.call("HMGET", KEYS[1], "total", "remaining", "seq", "startsAt", "endsAt")
if not s[1] then
  return { -1 }
end
return {
  1,
  tonumber(s[1]), tonumber(s[2]), tonumber(s[3]), tonumber(s[4]), tonumber(s[5]),
  redis.call("ZCARD", KEYS[2]), redis.call("ZCARD", KEYS[3]), redis.call("ZCARD", KEYS[4]),
  redisNowMs(),
}
