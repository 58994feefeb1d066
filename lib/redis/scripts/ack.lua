#!lua flags=allow-key-locking
--[[
  Acknowledge claimed items after the ledger has decided them: persisted ("I:<issuedAtMs>") or
  rejected by the ledger's cap ("R"). Called only after the DynamoDB write succeeded, which also ends
  any back-off of the coupon (release.lua).

  Idempotent: acknowledging an item twice (two drains raced after a lease expired) records the same
  outcome; an "I" is never overwritten by an "R". An outcome is recorded only for a user who holds an
  entry (a ticket): an outcome without a ticket would read as "never requested" while holding a unit.

  Input:
    KEYS[1] state      HASH ..., failures, backoffUntil, and u:<userId> -> entry
    KEYS[2] inflight   ZSET userId scored by lease deadline
    KEYS[3] queue      ZSET userId scored by ticket
    KEYS[4] dead       ZSET userId scored by ticket
    KEYS[5] attempts   HASH userId -> times the ledger refused the item on its own
    KEYS[6] errors     HASH userId -> last error

    ARGV[2k-1] userId, ARGV[2k] outcome ("I:<issuedAtMs>" | "R"), for each item

  Output:
    number of items whose outcome was recorded by this call
]]
--@include entry

local stateKey = KEYS[1]
local inflightKey = KEYS[2]
local queueKey = KEYS[3]
local deadKey = KEYS[4]
local attemptsKey = KEYS[5]
local errorsKey = KEYS[6]

local recorded = 0
for i = 1, #ARGV, 2 do
  local userId = ARGV[i]
  local outcome = ARGV[i + 1]
  redis.call("ZREM", inflightKey, userId)
  redis.call("ZREM", deadKey, userId)
  redis.call("ZREM", queueKey, userId)
  redis.call("HDEL", attemptsKey, userId)
  redis.call("HDEL", errorsKey, userId)
  local field = userField(userId)
  local entry = redis.call("HGET", stateKey, field)
  if entry then
    local ticket, requestedAt, previous = parseEntry(entry)
    if not previous or (previous == "R" and outcome ~= "R") then
      redis.call("HSET", stateKey, field, entryOf(ticket, requestedAt, outcome))
      recorded = recorded + 1
    end
  end
end
if redis.call("HEXISTS", stateKey, "total") == 1 then
  redis.call("HDEL", stateKey, "failures", "backoffUntil")
end
return recorded
