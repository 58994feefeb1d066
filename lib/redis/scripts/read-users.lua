#!lua flags=no-writes,allow-key-locking
--[[
  Read some users' standing on one coupon at one instant (read-only): what reconcile checks again after
  its ledger scan, before it reports a difference.

  Input:
    KEYS[1] state      HASH u:<userId> -> entry, ...
    KEYS[2] queue      ZSET userId scored by ticket
    KEYS[3] inflight   ZSET userId scored by lease deadline
    KEYS[4] dead       ZSET userId scored by ticket

    ARGV[1..] userIds

  Output:
    { nowMs, then for each user, in order, four values: entry or false, 1 when queued else 0, lease
      deadline when in flight else false, 1 when dead-lettered else 0 }
]]
--@include redis-now
--@include entry

local result = { redisNowMs() }
for _, userId in ipairs(ARGV) do
  result[#result + 1] = redis.call("HGET", KEYS[1], userField(userId))
  result[#result + 1] = redis.call("ZSCORE", KEYS[2], userId) and 1 or 0
  local lease = redis.call("ZSCORE", KEYS[3], userId)
  result[#result + 1] = lease and tonumber(lease) or false
  result[#result + 1] = redis.call("ZSCORE", KEYS[4], userId) and 1 or 0
end
return result
