--[[
  Put winners back in the queue: dead-lettered ones (an operator's requeue) or ones no structure
  tracks any more (found by reconcile). A winner that is queued, in flight or already decided is left
  alone, so a requeue racing a live drain never duplicates work. The coupon is indexed in the same step,
  so the scheduled drain always visits what was queued here.

  Input:
    KEYS[1] queue      ZSET userId scored by ticket
    KEYS[2] inflight   ZSET userId scored by lease deadline
    KEYS[3] dead       ZSET userId scored by ticket
    KEYS[4] tickets    HASH userId -> "<ticket>:<requestedAtMs>"
    KEYS[5] outcomes   HASH userId -> "I:<issuedAtMs>" | "R"
    KEYS[6] attempts   HASH userId -> times the ledger refused the item on its own
    KEYS[7] errors     HASH userId -> last error
    KEYS[8] index      SET of coupon ids with state (not hash-tagged: see keys.ts)

    ARGV[1] couponId
    ARGV[2..] userIds; none = every dead-lettered winner

  Output:
    number of winners put back in the queue (their attempt count starts again)
]]
local queueKey = KEYS[1]
local inflightKey = KEYS[2]
local deadKey = KEYS[3]
local ticketsKey = KEYS[4]
local outcomesKey = KEYS[5]
local attemptsKey = KEYS[6]
local errorsKey = KEYS[7]
local indexKey = KEYS[8]

local userIds = { unpack(ARGV, 2) }
if #userIds == 0 then
  userIds = redis.call("ZRANGE", deadKey, 0, -1)
end

local requeued = 0
for _, userId in ipairs(userIds) do
  local ticket = tonumber(string.match(redis.call("HGET", ticketsKey, userId) or "", "^(%d+)"))
  local tracked = redis.call("ZSCORE", queueKey, userId) or redis.call("ZSCORE", inflightKey, userId)
  if ticket and not tracked and redis.call("HEXISTS", outcomesKey, userId) == 0 then
    redis.call("ZREM", deadKey, userId)
    redis.call("ZADD", queueKey, ticket, userId)
    redis.call("HDEL", attemptsKey, userId)
    redis.call("HDEL", errorsKey, userId)
    requeued = requeued + 1
  end
end
if requeued > 0 then
  redis.call("SADD", indexKey, ARGV[1])
end
return requeued
