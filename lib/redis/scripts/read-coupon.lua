--[[
  Read a coupon's live counters (read-only).

  Input:
    KEYS[1] meta       HASH total, remaining, seq, startsAt, endsAt
    KEYS[2] queue      ZSET
    KEYS[3] inflight   ZSET
    KEYS[4] dead       ZSET

  Output:
    { -1 } when the coupon has no state in Redis, else
    { 1, total, remaining, seq, startsAt, endsAt, queued, inflight, deadLettered, nowMs }
]]
local meta = redis.call("HMGET", KEYS[1], "total", "remaining", "seq", "startsAt", "endsAt")
if not meta[1] then
  return { -1 }
end
local time = redis.call("TIME")
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
return {
  1,
  tonumber(meta[1]), tonumber(meta[2]), tonumber(meta[3]), tonumber(meta[4]), tonumber(meta[5]),
  redis.call("ZCARD", KEYS[2]), redis.call("ZCARD", KEYS[3]), redis.call("ZCARD", KEYS[4]),
  nowMs,
}
