#!lua flags=allow-key-locking
--[[
  Put winners back in the queue: dead-lettered ones (an operator's requeue) or ones no structure
  tracks any more (found by reconcile). A winner that is queued, in flight or already decided is left
  alone, so a requeue racing a live drain never duplicates work. The coupon is indexed in the same step,
  so the scheduled drain always visits what was queued here.

  Input:
    KEYS[1] state      HASH u:<userId> -> entry, ...
    KEYS[2] queue      ZSET userId scored by ticket
    KEYS[3] inflight   ZSET userId scored by lease deadline
    KEYS[4] dead       ZSET userId scored by ticket
    KEYS[5] attempts   HASH userId -> times the ledger refused the item on its own
    KEYS[6] errors     HASH userId -> last error
    KEYS[7] index      SET of coupon ids with state (not hash-tagged: see keys.ts)

    ARGV[1] couponId
    ARGV[2..] userIds; none = every dead-lettered winner

  Output:
    number of winners put back in the queue (their attempt count starts again)
]]
--@include entry
--@include variadic

local stateKey = KEYS[1]
local queueKey = KEYS[2]
local inflightKey = KEYS[3]
local deadKey = KEYS[4]
local attemptsKey = KEYS[5]
local errorsKey = KEYS[6]
local indexKey = KEYS[7]

local userIds = {}
for i = 2, #ARGV do
  userIds[#userIds + 1] = ARGV[i]
end
if #userIds == 0 then
  userIds = redis.call("ZRANGE", deadKey, 0, -1)
end
if #userIds == 0 then
  return 0
end

local entries = callVariadic("HMGET", stateKey, userFields(userIds))
local queued = callVariadic("ZMSCORE", queueKey, userIds)
local leased = callVariadic("ZMSCORE", inflightKey, userIds)
local back, toQueue = {}, {}
for i, userId in ipairs(userIds) do
  if entries[i] and not queued[i] and not leased[i] then
    local ticket, _, outcome = parseEntry(entries[i])
    if not outcome then
      back[#back + 1] = userId
      toQueue[#toQueue + 1] = ticket
      toQueue[#toQueue + 1] = userId
    end
  end
end
if #back > 0 then
  callVariadic("ZREM", deadKey, back)
  callVariadic("ZADD", queueKey, toQueue)
  callVariadic("HDEL", attemptsKey, back)
  callVariadic("HDEL", errorsKey, back)
  redis.call("SADD", indexKey, ARGV[1])
end
return #back
