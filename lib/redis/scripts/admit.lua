--[[
  Admit one issue request: the whole first-come-first-served decision in one atomic step.

  Input:
    KEYS[1] meta       HASH total, remaining, seq, startsAt, endsAt
    KEYS[2] tickets    HASH userId -> "<ticket>:<requestedAtMs>"
    KEYS[3] outcomes   HASH userId -> "I:<issuedAtMs>" | "R"
    KEYS[4] queue      ZSET userId scored by ticket
    KEYS[5] drainMark  STRING with TTL, present while a drain works on the coupon
    KEYS[6] rateWindow HASH "u:<userId>" | "ip:<clientIp>" -> requests in the current one-second window

    ARGV[1] userId
    ARGV[2] drain mark lifetime in ms (the admission that sets it starts a drain)
    ARGV[3] client IP ("" when unknown)
    ARGV[4] requests per second allowed per user on this coupon (0 = no limit)
    ARGV[5] requests per second allowed per client IP on this coupon (0 = no limit)

  Output:
     { 1, ticket, startDrain }   ACCEPTED: a unit is taken and the user queued; startDrain is 1 when no
                                  drain was marked running and the caller must start one
     { 2, ticket, "PENDING" | "ISSUED", issuedAtMs }  ALREADY_ACCEPTED
    { -1 }                        COUPON_NOT_FOUND: no state in Redis (never created, or lost)
    { -2, startsAtMs }            NOT_OPEN
    { -3 }                        ENDED
    { -4 }                        SOLD_OUT (also for a winner the ledger rejected: there was no unit left)
    { -5 }                        RATE_LIMITED: too many requests this second from this user or IP

  The rate limit is counted here, in the same round trip, rather than by a separate limiter call: that
  would double the Redis requests of every admission. Its window key shares the coupon's hash tag.

  The repeat check comes before the window and stock checks, so a double click is never mistaken for a
  new request, and it comes before the decrement, so a repeat can never leak a unit.
]]
local metaKey = KEYS[1]
local ticketsKey = KEYS[2]
local outcomesKey = KEYS[3]
local queueKey = KEYS[4]
local drainMarkKey = KEYS[5]
local rateWindowKey = KEYS[6]

local userId = ARGV[1]
local drainMarkMs = ARGV[2]
local clientIp = ARGV[3]
local userLimit = tonumber(ARGV[4])
local ipLimit = tonumber(ARGV[5])

local meta = redis.call("HMGET", metaKey, "remaining", "startsAt", "endsAt")
local remaining = tonumber(meta[1])
if remaining == nil then
  return { -1 }
end

if userLimit > 0 or (ipLimit > 0 and clientIp ~= "") then
  local limited = false
  if userLimit > 0 and redis.call("HINCRBY", rateWindowKey, "u:" .. userId, 1) > userLimit then
    limited = true
  end
  if ipLimit > 0 and clientIp ~= "" and redis.call("HINCRBY", rateWindowKey, "ip:" .. clientIp, 1) > ipLimit then
    limited = true
  end
  if redis.call("PTTL", rateWindowKey) < 0 then
    redis.call("PEXPIRE", rateWindowKey, 2000)
  end
  if limited then
    return { -5 }
  end
end

local existing = redis.call("HGET", ticketsKey, userId)
if existing then
  local ticket = tonumber(string.match(existing, "^(%d+)"))
  local outcome = redis.call("HGET", outcomesKey, userId)
  if not outcome then
    return { 2, ticket, "PENDING", 0 }
  end
  if outcome == "R" then
    return { -4 }
  end
  return { 2, ticket, "ISSUED", tonumber(string.sub(outcome, 3)) }
end

local time = redis.call("TIME")
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local startsAt = tonumber(meta[2])
local endsAt = tonumber(meta[3])
if nowMs < startsAt then
  return { -2, startsAt }
end
if endsAt > 0 and nowMs >= endsAt then
  return { -3 }
end
if remaining <= 0 then
  return { -4 }
end

redis.call("HINCRBY", metaKey, "remaining", -1)
local ticket = redis.call("HINCRBY", metaKey, "seq", 1)
redis.call("HSET", ticketsKey, userId, ticket .. ":" .. nowMs)
redis.call("ZADD", queueKey, ticket, userId)

local startDrain = 0
if redis.call("SET", drainMarkKey, "1", "NX", "PX", drainMarkMs) then
  startDrain = 1
end
return { 1, ticket, startDrain }
