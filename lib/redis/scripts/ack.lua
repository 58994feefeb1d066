--[[
  Acknowledge claimed items after the ledger has decided them: persisted ("I:<issuedAtMs>") or
  rejected by the ledger's cap ("R"). Called only after the DynamoDB write succeeded, which also ends
  any back-off of the coupon (release.lua).

  Idempotent: acknowledging an item twice (two drains raced after a lease expired) records the same
  outcome; an "I" is never overwritten by an "R". An outcome is recorded only for a user who holds a
  ticket: an outcome without a ticket would read as "never requested" while holding a unit.

  Input:
    KEYS[1] inflight   ZSET userId scored by lease deadline
    KEYS[2] outcomes   HASH userId -> "I:<issuedAtMs>" | "R"
    KEYS[3] attempts   HASH userId -> times the ledger refused the item on its own
    KEYS[4] errors     HASH userId -> last error
    KEYS[5] dead       ZSET userId scored by ticket
    KEYS[6] queue      ZSET userId scored by ticket
    KEYS[7] tickets    HASH userId -> "<ticket>:<requestedAtMs>"
    KEYS[8] meta       HASH ..., failures, backoffUntil

    ARGV[2k-1] userId, ARGV[2k] outcome, for each item

  Output:
    number of items whose outcome was recorded by this call
]]
local inflightKey = KEYS[1]
local outcomesKey = KEYS[2]
local attemptsKey = KEYS[3]
local errorsKey = KEYS[4]
local deadKey = KEYS[5]
local queueKey = KEYS[6]
local ticketsKey = KEYS[7]
local metaKey = KEYS[8]

local recorded = 0
for i = 1, #ARGV, 2 do
  local userId = ARGV[i]
  local outcome = ARGV[i + 1]
  redis.call("ZREM", inflightKey, userId)
  redis.call("ZREM", deadKey, userId)
  redis.call("ZREM", queueKey, userId)
  redis.call("HDEL", attemptsKey, userId)
  redis.call("HDEL", errorsKey, userId)
  if redis.call("HEXISTS", ticketsKey, userId) == 1 then
    local previous = redis.call("HGET", outcomesKey, userId)
    if not previous or (previous == "R" and outcome ~= "R") then
      redis.call("HSET", outcomesKey, userId, outcome)
      recorded = recorded + 1
    end
  end
end
redis.call("HDEL", metaKey, "failures", "backoffUntil")
return recorded
