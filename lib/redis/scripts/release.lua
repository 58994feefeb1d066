#!lua flags=allow-key-locking
--[[
  Give claimed items back after their ledger write failed: to the queue for another try, or to the
  dead-letter set.

  Three reasons, told apart by the caller:
  - "refused": the ledger refused these items on their own (found by splitting the batch): each such
    refusal uses one attempt, and an item refused maxAttempts times is dead-lettered;
  - "transient": the write failed as a whole for a reason that may pass (throttling, a 5xx, no
    connection): no item uses an attempt, and the coupon backs off: no drain claims it again before
    backoffUntil, which doubles with each consecutive failure (reset by the next acknowledged write);
  - "untried": the drain gives back a claim it did not write (it backs off, or stops): no attempt, no
    change to the back-off.
  The error is kept for operators.

  Only items this drain still holds are released: an in-flight entry whose deadline differs from the
  caller's lease deadline belongs to a later claim (the caller's lease expired and another drain took
  the item), and is left alone.

  Input:
    KEYS[1] state      HASH ..., failures, backoffUntil, and u:<userId> -> entry
    KEYS[2] inflight   ZSET userId scored by lease deadline
    KEYS[3] queue      ZSET userId scored by ticket
    KEYS[4] dead       ZSET userId scored by ticket
    KEYS[5] attempts   HASH userId -> times the ledger refused the item on its own
    KEYS[6] errors     HASH userId -> last error

    ARGV[1] the caller's lease deadline (from claim.lua)
    ARGV[2] max attempts before dead-lettering
    ARGV[3] error message to keep ("" keeps the last one)
    ARGV[4] "refused" | "transient" | "untried"
    ARGV[5] back-off after the first consecutive failure, in ms
    ARGV[6] longest back-off, in ms
    ARGV[7] jitter: a number in [0, 1) from the caller (a script's math.random is not random)
    ARGV[8..] userIds

  Output:
    { requeued, deadLettered, backoffUntilMs (0 unless transient) }
]]
--@include redis-now
--@include entry
--@include variadic
--@include lease

local stateKey = KEYS[1]
local inflightKey = KEYS[2]
local queueKey = KEYS[3]
local deadKey = KEYS[4]
local attemptsKey = KEYS[5]
local errorsKey = KEYS[6]

local leaseDeadline = tonumber(ARGV[1])
local maxAttempts = tonumber(ARGV[2])
local errorMessage = ARGV[3]
local refused = ARGV[4] == "refused"
local transient = ARGV[4] == "transient"
local backoffBaseMs = tonumber(ARGV[5])
local backoffMaxMs = tonumber(ARGV[6])
local jitter = tonumber(ARGV[7])

local userIds = {}
for i = 8, #ARGV do
  userIds[#userIds + 1] = ARGV[i]
end

-- Only the items still held under the caller's lease.
local held = takeHeld(inflightKey, userIds, leaseDeadline)

local requeued = 0
local deadLettered = 0
if #held > 0 then
  local entries = callVariadic("HMGET", stateKey, userFields(held))
  local toQueue, toDead, withError = {}, {}, {}
  for i, userId in ipairs(held) do
    local ticket, outcome = nil, nil
    if entries[i] then
      local requestedAt
      ticket, requestedAt, outcome = parseEntry(entries[i])
    end
    if ticket and not outcome then
      if errorMessage ~= "" then
        withError[#withError + 1] = userId
        withError[#withError + 1] = errorMessage
      end
      -- An attempt is counted per item (one call each), but only for what the ledger refused on its
      -- own, which is rare; transient failures, the common case of an outage, count none.
      local attempts = 0
      if refused then
        attempts = redis.call("HINCRBY", attemptsKey, userId, 1)
      end
      if refused and attempts >= maxAttempts then
        toDead[#toDead + 1] = ticket
        toDead[#toDead + 1] = userId
        deadLettered = deadLettered + 1
      else
        toQueue[#toQueue + 1] = ticket
        toQueue[#toQueue + 1] = userId
        requeued = requeued + 1
      end
    end
  end
  callVariadic("HSET", errorsKey, withError)
  callVariadic("ZADD", deadKey, toDead)
  callVariadic("ZADD", queueKey, toQueue)
end

local backoffUntil = 0
if transient and redis.call("HEXISTS", stateKey, "total") == 1 then
  local failures = redis.call("HINCRBY", stateKey, "failures", 1)
  local delay = math.min(backoffMaxMs, backoffBaseMs * 2 ^ math.min(failures - 1, 30))
  backoffUntil = redisNowMs() + math.floor(delay / 2 + delay / 2 * jitter)
  redis.call("HSET", stateKey, "backoffUntil", backoffUntil)
end
return { requeued, deadLettered, backoffUntil }
