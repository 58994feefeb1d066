--[[
  Claim a batch of queued winners for persistence, first returning expired claims to the queue.

  Nothing is ever popped and forgotten: a claimed item moves to the in-flight set with a lease
  deadline and stays there until the drain acknowledges it (ack.lua) or gives it back (release.lua).
  If the drain dies, the lease expires and the next claim puts the item back in the queue in ticket
  order, or in the dead-letter set once it has been claimed maxAttempts times.

  Input:
    KEYS[1] queue      ZSET userId scored by ticket
    KEYS[2] inflight   ZSET userId scored by lease deadline (epoch ms)
    KEYS[3] tickets    HASH userId -> "<ticket>:<requestedAtMs>"
    KEYS[4] outcomes   HASH userId -> "I:<issuedAtMs>" | "R"
    KEYS[5] attempts   HASH userId -> times claimed
    KEYS[6] dead       ZSET userId scored by ticket
    KEYS[7] errors     HASH userId -> last error
    KEYS[8] drainMark  STRING with TTL, present while a drain works on the coupon

    ARGV[1] batch size (items to claim at most)
    ARGV[2] claim lease in ms
    ARGV[3] max attempts before dead-lettering
    ARGV[4] drain mark lifetime in ms

  Output:
    { leaseDeadlineMs, requeued, deadLettered, queuedAfter, nextLeaseExpiryMs,
      userId1, ticket1, requestedAtMs1, attempt1, ... }
    nextLeaseExpiryMs is the earliest deadline still in flight (0 when none): when it is near, a drain
    that found nothing to claim may wait for it instead of leaving the item to the next scheduled run.
    When nothing was claimed and the queue is empty, the drain mark is deleted in the same step: an
    admission that lands after this script sees no mark and starts a new drain, so no accepted item
    can wait for the schedule while its admission believed a drain was running.
]]
local queueKey = KEYS[1]
local inflightKey = KEYS[2]
local ticketsKey = KEYS[3]
local outcomesKey = KEYS[4]
local attemptsKey = KEYS[5]
local deadKey = KEYS[6]
local errorsKey = KEYS[7]
local drainMarkKey = KEYS[8]

local batchSize = tonumber(ARGV[1])
local leaseMs = tonumber(ARGV[2])
local maxAttempts = tonumber(ARGV[3])
local drainMarkMs = ARGV[4]

local time = redis.call("TIME")
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- 1. Expired claims go back to the queue (score = ticket, so ticket order holds) or to dead letters.
local requeued = 0
local deadLettered = 0
local expired = redis.call("ZRANGEBYSCORE", inflightKey, "-inf", nowMs, "LIMIT", 0, 1000)
for _, userId in ipairs(expired) do
  redis.call("ZREM", inflightKey, userId)
  -- An item persisted by another drain after this lease expired needs nothing more.
  if redis.call("HEXISTS", outcomesKey, userId) == 0 then
    local ticket = tonumber(string.match(redis.call("HGET", ticketsKey, userId) or "", "^(%d+)"))
    if ticket then
      local attempts = tonumber(redis.call("HGET", attemptsKey, userId) or "0")
      if attempts >= maxAttempts then
        redis.call("ZADD", deadKey, ticket, userId)
        if redis.call("HEXISTS", errorsKey, userId) == 0 then
          redis.call("HSET", errorsKey, userId, "claim lease expired " .. attempts .. " times")
        end
        deadLettered = deadLettered + 1
      else
        redis.call("ZADD", queueKey, ticket, userId)
        requeued = requeued + 1
      end
    end
  end
end

-- 2. Claim the lowest tickets.
local deadline = nowMs + leaseMs
local result = { deadline, requeued, deadLettered, 0, 0 }
local popped = redis.call("ZPOPMIN", queueKey, batchSize)
for i = 1, #popped, 2 do
  local userId = popped[i]
  -- An item already persisted or rejected (a late duplicate) is dropped here instead of rewritten.
  if redis.call("HEXISTS", outcomesKey, userId) == 0 then
    local entry = redis.call("HGET", ticketsKey, userId)
    if entry then
      local ticket, requestedAt = string.match(entry, "^(%d+):(%d+)$")
      local attempt = redis.call("HINCRBY", attemptsKey, userId, 1)
      redis.call("ZADD", inflightKey, deadline, userId)
      result[#result + 1] = userId
      result[#result + 1] = tonumber(ticket)
      result[#result + 1] = tonumber(requestedAt)
      result[#result + 1] = attempt
    end
  end
end

local queuedAfter = redis.call("ZCARD", queueKey)
result[4] = queuedAfter
local earliest = redis.call("ZRANGE", inflightKey, 0, 0, "WITHSCORES")
if earliest[2] then
  result[5] = tonumber(earliest[2])
end
if #result == 5 and queuedAfter == 0 then
  redis.call("DEL", drainMarkKey)
else
  redis.call("SET", drainMarkKey, "1", "PX", drainMarkMs)
end
return result
