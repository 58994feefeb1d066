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
--@include variadic

local stateKey = KEYS[1]
local inflightKey = KEYS[2]
local queueKey = KEYS[3]
local deadKey = KEYS[4]
local attemptsKey = KEYS[5]
local errorsKey = KEYS[6]

local users, outcomes = {}, {}
for i = 1, #ARGV, 2 do
  users[#users + 1] = ARGV[i]
  outcomes[#outcomes + 1] = ARGV[i + 1]
end

callVariadic("ZREM", inflightKey, users)
callVariadic("ZREM", queueKey, users)
-- Dead letters, attempts and errors exist only after the ledger refused something: one EXISTS spares
-- three calls in the usual case.
if redis.call("EXISTS", deadKey, attemptsKey, errorsKey) > 0 then
  callVariadic("ZREM", deadKey, users)
  callVariadic("HDEL", attemptsKey, users)
  callVariadic("HDEL", errorsKey, users)
end

-- The coupon's own fields come with the entries, in the same call.
local fields = userFields(users)
fields[#fields + 1] = "total"
fields[#fields + 1] = "failures"
local values = callVariadic("HMGET", stateKey, fields) or {}
local recorded = 0
local updates = {}
for i, userId in ipairs(users) do
  local entry = values[i]
  if entry then
    local outcome = outcomes[i]
    local ticket, requestedAt, previous = parseEntry(entry)
    if not previous or (previous == "R" and outcome ~= "R") then
      updates[#updates + 1] = userField(userId)
      updates[#updates + 1] = entryOf(ticket, requestedAt, outcome)
      recorded = recorded + 1
    end
  end
end
callVariadic("HSET", stateKey, updates)
if values[#users + 1] and values[#users + 2] then
  redis.call("HDEL", stateKey, "failures", "backoffUntil")
end
return recorded
