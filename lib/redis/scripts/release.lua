--[[
  Give claimed items back after a failed ledger write: to the queue for another attempt, or to the
  dead-letter set once they have been claimed maxAttempts times. The error is kept for operators.

  Only items this drain still holds are released: an in-flight entry whose deadline differs from the
  caller's lease deadline belongs to a later claim (the caller's lease expired and another drain took
  the item), and is left alone.

  Input:
    KEYS[1] inflight   ZSET userId scored by lease deadline
    KEYS[2] queue      ZSET userId scored by ticket
    KEYS[3] dead       ZSET userId scored by ticket
    KEYS[4] tickets    HASH userId -> "<ticket>:<requestedAtMs>"
    KEYS[5] attempts   HASH userId -> times claimed
    KEYS[6] errors     HASH userId -> last error
    KEYS[7] outcomes   HASH userId -> "I:<issuedAtMs>" | "R"

    ARGV[1] the caller's lease deadline (from claim.lua)
    ARGV[2] max attempts before dead-lettering
    ARGV[3] error message to keep
    ARGV[4..] userIds

  Output:
    { requeued, deadLettered }
]]
local inflightKey = KEYS[1]
local queueKey = KEYS[2]
local deadKey = KEYS[3]
local ticketsKey = KEYS[4]
local attemptsKey = KEYS[5]
local errorsKey = KEYS[6]
local outcomesKey = KEYS[7]

local leaseDeadline = tonumber(ARGV[1])
local maxAttempts = tonumber(ARGV[2])
local errorMessage = ARGV[3]

local requeued = 0
local deadLettered = 0
for i = 4, #ARGV do
  local userId = ARGV[i]
  if tonumber(redis.call("ZSCORE", inflightKey, userId)) == leaseDeadline then
    redis.call("ZREM", inflightKey, userId)
    local ticket = tonumber(string.match(redis.call("HGET", ticketsKey, userId) or "", "^(%d+)"))
    if ticket and redis.call("HEXISTS", outcomesKey, userId) == 0 then
      redis.call("HSET", errorsKey, userId, errorMessage)
      local attempts = tonumber(redis.call("HGET", attemptsKey, userId) or "0")
      if attempts >= maxAttempts then
        redis.call("ZADD", deadKey, ticket, userId)
        deadLettered = deadLettered + 1
      else
        redis.call("ZADD", queueKey, ticket, userId)
        requeued = requeued + 1
      end
    end
  end
end
return { requeued, deadLettered }
