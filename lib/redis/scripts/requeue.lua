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

local stateKey = KEYS[1]
local queueKey = KEYS[2]
local inflightKey = KEYS[3]
local deadKey = KEYS[4]
local attemptsKey = KEYS[5]
local errorsKey = KEYS[6]
local indexKey = KEYS[7]

local userIds = { unpack(ARGV, 2) }
if #userIds == 0 then
  userIds = redis.call("ZRANGE", deadKey, 0, -1)
end

local requeued = 0
for _, userId in ipairs(userIds) do
  local entry = redis.call("HGET", stateKey, userField(userId))
  local tracked = redis.call("ZSCORE", queueKey, userId) or redis.call("ZSCORE", inflightKey, userId)
  if entry and not tracked then
    local ticket, _, outcome = parseEntry(entry)
    if not outcome then
      redis.call("ZREM", deadKey, userId)
      redis.call("ZADD", queueKey, ticket, userId)
      redis.call("HDEL", attemptsKey, userId)
      redis.call("HDEL", errorsKey, userId)
      requeued = requeued + 1
    end
  end
end
if requeued > 0 then
  redis.call("SADD", indexKey, ARGV[1])
end
return requeued
