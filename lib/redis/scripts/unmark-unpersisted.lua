#!lua flags=allow-key-locking
--[[
  Undo an ISSUED mark that the ledger does not back (found by reconcile): the winner goes back in the
  queue so the drain persists it. Only an ISSUED outcome is undone; a winner already queued or in flight
  is not queued twice. The coupon is indexed in the same step, as in requeue.lua.

  Input:
    KEYS[1] state      HASH u:<userId> -> entry, ...
    KEYS[2] queue      ZSET userId scored by ticket
    KEYS[3] inflight   ZSET userId scored by lease deadline
    KEYS[4] index      SET of coupon ids with state (not hash-tagged: see keys.ts)

    ARGV[1] couponId
    ARGV[2..] userIds

  Output:
    number of winners put back in the queue
]]
--@include entry
--@include variadic

local stateKey = KEYS[1]
local queueKey = KEYS[2]
local inflightKey = KEYS[3]
local indexKey = KEYS[4]

local users = {}
for i = 2, #ARGV do
  users[#users + 1] = ARGV[i]
end
local entries = callVariadic("HMGET", stateKey, userFields(users)) or {}
local leases = callVariadic("ZMSCORE", inflightKey, users) or {}
local requeued = 0
local updates, toQueue = {}, {}
for i, userId in ipairs(users) do
  if entries[i] then
    local ticket, requestedAt, outcome = parseEntry(entries[i])
    if outcome and string.sub(outcome, 1, 2) == "I:" then
      updates[#updates + 1] = userField(userId)
      updates[#updates + 1] = entryOf(ticket, requestedAt, nil)
      if not leases[i] then
        toQueue[#toQueue + 1] = ticket
        toQueue[#toQueue + 1] = userId
      end
      requeued = requeued + 1
    end
  end
end
callVariadic("HSET", stateKey, updates)
callVariadic("ZADD", queueKey, toQueue)
if requeued > 0 then
  redis.call("SADD", indexKey, ARGV[1])
end
return requeued
