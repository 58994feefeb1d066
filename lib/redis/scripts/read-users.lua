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
--@include variadic

local users = {}
for i, userId in ipairs(ARGV) do
  users[i] = userId
end
local result = { redisNowMs() }
if #users == 0 then
  return result
end
-- One call per structure for all the users (not one per user and structure).
local entries = callVariadic("HMGET", KEYS[1], userFields(users))
local queued = callVariadic("ZMSCORE", KEYS[2], users)
local leases = callVariadic("ZMSCORE", KEYS[3], users)
local dead = callVariadic("ZMSCORE", KEYS[4], users)
for i = 1, #users do
  result[#result + 1] = entries[i]
  result[#result + 1] = queued[i] and 1 or 0
  result[#result + 1] = leases[i] and tonumber(leases[i]) or false
  result[#result + 1] = dead[i] and 1 or 0
end
return result
