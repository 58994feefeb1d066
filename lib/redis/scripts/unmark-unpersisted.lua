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

local stateKey = KEYS[1]
local queueKey = KEYS[2]
local inflightKey = KEYS[3]
local indexKey = KEYS[4]

local requeued = 0
for i = 2, #ARGV do
  local userId = ARGV[i]
  local field = userField(userId)
  local entry = redis.call("HGET", stateKey, field)
  if entry then
    local ticket, requestedAt, outcome = parseEntry(entry)
    if outcome and string.sub(outcome, 1, 2) == "I:" then
      redis.call("HSET", stateKey, field, entryOf(ticket, requestedAt, nil))
      if not redis.call("ZSCORE", inflightKey, userId) then
        redis.call("ZADD", queueKey, ticket, userId)
      end
      requeued = requeued + 1
    end
  end
end
if requeued > 0 then
  redis.call("SADD", indexKey, ARGV[1])
end
return requeued
