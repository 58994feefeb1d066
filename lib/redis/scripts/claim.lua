#!lua flags=allow-key-locking
--[[
  Claim a batch of queued winners for persistence, first returning expired claims to the queue.

  Nothing is ever popped and forgotten: a claimed item moves to the in-flight set with a lease
  deadline and stays there until the drain acknowledges it (ack.lua) or gives it back (release.lua,
  readmit-stale.lua). If the drain dies, the lease expires and the next claim puts the item back in the
  queue in ticket order. A lease that expires costs the item nothing: attempts count only what the
  ledger refuses (release.lua).

  While the coupon backs off from a failed ledger write (release.lua), nothing is claimed: the drain
  waits until backoffUntil instead of retrying at once, and the drain mark lives at least that long so
  that admissions do not start drains that would only fail again.

  Input:
    KEYS[1] state      HASH total, epoch, backoffUntil, drain, shard, ... and u:<userId> -> entry
    KEYS[2] queue      ZSET userId scored by ticket
    KEYS[3] inflight   ZSET userId scored by lease deadline (epoch ms)

    ARGV[1] batch size (items to claim at most)
    ARGV[2] claim lease in ms
    ARGV[3] drain mark lifetime in ms

  Output:
    { leaseDeadlineMs, requeued, queuedAfter, nextLeaseExpiryMs, epoch, backoffUntilMs, total, shard,
      userId1, ticket1, requestedAtMs1, ... }
    epoch is the coupon's rebuild generation, which the ledger checks when the batch is written;
    -1 NO_STATE (lib/redis/replies.ts) when the coupon has no state in Redis (nothing is claimed).
    backoffUntilMs is 0 unless the coupon backs off (nothing is claimed then). nextLeaseExpiryMs is the earliest deadline still in flight (0
    when none): when it is near, a drain that found nothing to claim may wait for it.
    When nothing was claimed and the queue is empty (and no back-off), the drain mark is cleared in the
    same step: an admission that lands after this script sees no mark and starts a new drain, so no
    accepted item can wait for the schedule while its admission believed a drain was running.
]]
--@include redis-now
--@include entry
--@include variadic
--@include lease

local stateKey = KEYS[1]
local queueKey = KEYS[2]
local inflightKey = KEYS[3]

local batchSize = tonumber(ARGV[1])
local leaseMs = tonumber(ARGV[2])
local drainMarkMs = tonumber(ARGV[3])

local nowMs = redisNowMs()
local deadline = nowMs + leaseMs

local meta = redis.call("HMGET", stateKey, "total", "epoch", "backoffUntil", "shard")
if not meta[1] then
  return { deadline, 0, 0, 0, -1, 0, 0, 0 }
end
local epoch = tonumber(meta[2]) or 0
local backoffUntil = tonumber(meta[3]) or 0
if backoffUntil <= nowMs then
  backoffUntil = 0
end

-- 1. Expired claims go back to the queue (score = ticket, so ticket order holds).
local requeued = 0
local expired = redis.call("ZRANGEBYSCORE", inflightKey, "-inf", nowMs, "LIMIT", 0, 1000)
if #expired > 0 then
  callVariadic("ZREM", inflightKey, expired)
  -- An item persisted by another drain after this lease expired needs nothing more.
  requeued = requeueUndecided(stateKey, queueKey, expired)
end

-- 2. Claim the lowest tickets, unless the coupon backs off.
local result = { deadline, requeued, 0, 0, epoch, backoffUntil, tonumber(meta[1]), tonumber(meta[4]) or 0 }
if backoffUntil == 0 then
  local popped = redis.call("ZPOPMIN", queueKey, batchSize)
  local users = {}
  for i = 1, #popped, 2 do
    users[#users + 1] = popped[i]
  end
  local entries = callVariadic("HMGET", stateKey, userFields(users)) or {}
  local leased = {}
  for i, userId in ipairs(users) do
    if entries[i] then
      local ticket, requestedAt, outcome = parseEntry(entries[i])
      -- An item already persisted or rejected (a late duplicate) is dropped here instead of rewritten.
      if not outcome then
        leased[#leased + 1] = deadline
        leased[#leased + 1] = userId
        result[#result + 1] = userId
        result[#result + 1] = ticket
        result[#result + 1] = tonumber(requestedAt)
      end
    end
  end
  callVariadic("ZADD", inflightKey, leased)
end

local queuedAfter = redis.call("ZCARD", queueKey)
result[3] = queuedAfter
local earliest = redis.call("ZRANGE", inflightKey, 0, 0, "WITHSCORES")
if earliest[2] then
  result[4] = tonumber(earliest[2])
end
if backoffUntil > 0 then
  redis.call("HSET", stateKey, "drain", math.max(nowMs + drainMarkMs, backoffUntil))
elseif #result == 8 and queuedAfter == 0 then
  redis.call("HDEL", stateKey, "drain")
else
  redis.call("HSET", stateKey, "drain", nowMs + drainMarkMs)
end
return result
