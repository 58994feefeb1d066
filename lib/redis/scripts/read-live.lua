#!lua flags=no-writes,allow-key-locking
--[[
  Everything the live operator page shows of a coupon in this shard, at one instant (read-only): its
  counters, how long the oldest queued winner has waited, and the reports of containers and drains.

  Input:
    KEYS[1] state      HASH total, remaining, seq, ... and u:<userId> -> entry
    KEYS[2] queue      ZSET userId scored by ticket
    KEYS[3] inflight   ZSET userId scored by lease deadline
    KEYS[4] dead       ZSET userId scored by ticket
    KEYS[5] transfers  HASH transferId -> "out:..." | "in:..."
    KEYS[6] live       HASH c:<containerId> -> decision report (DecisionTally), drain counters and
                       lag:<shard> (record-drain.lua)

  Output: (codes: lib/redis/replies.ts)
    { -1 } NO_STATE when the coupon has no state in Redis, else
    { 1 FOUND, ... } the 13 values of read-coupon.lua, then
    oldestQueuedRequestedAtMs (0 when the queue is empty), then the live hash as field, value, ...
]]
--@include redis-now
--@include entry
--@include coupon-counters

local result = couponCounters(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
if result[1] == -1 then
  return result
end
local oldest = 0
local head = redis.call("ZRANGE", KEYS[2], 0, 0)
if head[1] then
  local entry = redis.call("HGET", KEYS[1], userField(head[1]))
  if entry then
    local _, requestedAt = parseEntry(entry)
    oldest = tonumber(requestedAt)
  end
end
result[#result + 1] = oldest
for _, value in ipairs(redis.call("HGETALL", KEYS[6])) do
  result[#result + 1] = value
end
return result
