#!lua flags=allow-key-locking
--[[
  Give back a claim the ledger refused as stale: it was claimed in an older epoch than the ledger's
  (see Ledger.persistBatch), so nothing of it was written.

  - If Redis' state is still the one the claim was made from (same epoch), Redis is right and only the
    ledger moved on (a rebuild found the state present after all, or stopped before loading it): the
    state adopts the ledger's epoch and the items go back in the queue, to be claimed and written again.
  - If the state was rebuilt since the claim, it knows nothing of these winners (they were accepted and
    not yet persisted when the state was lost). Each is admitted again in the rebuilt state, in the order
    given, with a new ticket (tickets handed out before the loss may be handed out again, so the old
    numbers cannot be kept) while units are left; once none is left, the winner is recorded as rejected,
    as the ledger's cap would have. A user the rebuilt state already knows (restored from the ledger, or
    admitted again since) is left as they are.

  Input:
    KEYS[1] state      HASH remaining, seq, epoch, shard, shards, ... and u:<userId> -> entry
    KEYS[2] queue      ZSET userId scored by ticket
    KEYS[3] inflight   ZSET userId scored by lease deadline
    KEYS[4] index      SET of coupon ids with state (not hash-tagged: see keys.ts)

    ARGV[1] the claim's epoch
    ARGV[2] the ledger's epoch
    ARGV[3] the claim's lease deadline
    ARGV[4] couponId
    ARGV[5..] userId, requestedAtMs, for each stale item, in ticket order

  Output: (codes: lib/redis/replies.ts)
    { -1 }                      NO_STATE    the coupon has no state in Redis: restore it, then call again
    { 1, requeued }             REQUEUED    same epoch: the ledger's epoch adopted, items put back in the
                                            queue
    { 2, readmitted, rejected } READMITTED  rebuilt since the claim
]]
--@include entry
--@include variadic
--@include lease

local stateKey = KEYS[1]
local queueKey = KEYS[2]
local inflightKey = KEYS[3]
local indexKey = KEYS[4]

local claimEpoch = tonumber(ARGV[1])
local ledgerEpoch = tonumber(ARGV[2])
local leaseDeadline = tonumber(ARGV[3])
local couponId = ARGV[4]
local users = {}
for i = 5, #ARGV, 2 do
  users[#users + 1] = ARGV[i]
end

local s = redis.call("HMGET", stateKey, "remaining", "seq", "epoch", "shard", "shards")
local remaining = tonumber(s[1])
if remaining == nil then
  return { -1 }
end
local seq = tonumber(s[2])
local epoch = tonumber(s[3]) or 0
local shard = tonumber(s[4]) or 0
local shards = tonumber(s[5]) or 1
redis.call("SADD", indexKey, couponId)

if epoch == claimEpoch then
  if ledgerEpoch > epoch then
    redis.call("HSET", stateKey, "epoch", ledgerEpoch)
  end
  local held = takeHeld(inflightKey, users, leaseDeadline)
  local requeued = 0
  if #held > 0 then
    requeued = requeueUndecided(stateKey, queueKey, held)
  end
  return { 1, requeued }
end

local readmitted = 0
local rejected = 0
local known = callVariadic("HMGET", stateKey, userFields(users)) or {}
local updates, toQueue = {}, {}
for k, userId in ipairs(users) do
  local requestedAt = ARGV[4 + 2 * k]
  if not known[k] then
    seq = seq + 1
    local ticket = (seq - 1) * shards + shard + 1
    updates[#updates + 1] = userField(userId)
    if remaining > 0 then
      remaining = remaining - 1
      updates[#updates + 1] = entryOf(ticket, requestedAt, nil)
      toQueue[#toQueue + 1] = ticket
      toQueue[#toQueue + 1] = userId
      readmitted = readmitted + 1
    else
      updates[#updates + 1] = entryOf(ticket, requestedAt, "R")
      rejected = rejected + 1
    end
  end
end
updates[#updates + 1] = "remaining"
updates[#updates + 1] = remaining
updates[#updates + 1] = "seq"
updates[#updates + 1] = seq
callVariadic("HSET", stateKey, updates)
callVariadic("ZADD", queueKey, toQueue)
return { 2, readmitted, rejected }
