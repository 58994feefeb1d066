--[[
  Undo an ISSUED mark that the ledger does not back (found by reconcile): the winner goes back in the
  queue so the drain persists it. Only an "I" outcome is undone; a winner already queued or in flight
  is not queued twice. The coupon is indexed in the same step, as in requeue.lua.

  Input:
    KEYS[1] outcomes   HASH userId -> "I:<issuedAtMs>" | "R"
    KEYS[2] queue      ZSET userId scored by ticket
    KEYS[3] inflight   ZSET userId scored by lease deadline
    KEYS[4] tickets    HASH userId -> "<ticket>:<requestedAtMs>"
    KEYS[5] index      SET of coupon ids with state (not hash-tagged: see keys.ts)

    ARGV[1] couponId
    ARGV[2..] userIds

  Output:
    number of winners put back in the queue
]]
local outcomesKey = KEYS[1]
local queueKey = KEYS[2]
local inflightKey = KEYS[3]
local ticketsKey = KEYS[4]
local indexKey = KEYS[5]

local requeued = 0
for i = 2, #ARGV do
  local userId = ARGV[i]
  local outcome = redis.call("HGET", outcomesKey, userId)
  local ticket = tonumber(string.match(redis.call("HGET", ticketsKey, userId) or "", "^(%d+)"))
  if outcome and string.sub(outcome, 1, 2) == "I:" and ticket then
    redis.call("HDEL", outcomesKey, userId)
    if not redis.call("ZSCORE", inflightKey, userId) then
      redis.call("ZADD", queueKey, ticket, userId)
    end
    requeued = requeued + 1
  end
end
if requeued > 0 then
  redis.call("SADD", indexKey, ARGV[1])
end
return requeued
