#!lua flags=allow-key-locking
--[[
  Admit one issue request: the whole first-come-first-served decision in one atomic step, with as few
  billed commands as the decision needs (Upstash bills the EVALSHA and every redis.call in it):
    a repeat, or SOLD_OUT:  HMGET                         (2 billed with the EVALSHA)
    NOT_OPEN just before startsAt: TIME                   (2)
    a winner:              HMGET, HSET, ZADD             (4), and TIME near startsAt or endsAt (5)
  Requests that cannot change anything (long before the opening, after the end, a sold-out coupon for
  someone who never won) are answered by the container without calling this at all (coupon-cache.ts).

  The window is decided by one clock. Near startsAt and endsAt it is Redis' (TIME), so the opening is
  fair whatever the containers' clocks; elsewhere the container has checked the window with its own
  clock (corrected by its measured offset to Redis') and passes it, saving the TIME call.

  Input:
    KEYS[1] state      HASH total, remaining, seq, startsAt, endsAt, drain, shard, shards, ... and
                       u:<userId> -> entry
    KEYS[2] queue      ZSET userId scored by ticket

    ARGV[1] userId
    ARGV[2] clock: "container" (the container's time, ARGV[3], decides: it is far from startsAt and
            endsAt), "redis-first" (just before startsAt by the container's clock: Redis' time is asked
            first, and most such requests are refused by it alone), "redis" (Redis' time decides, asked
            only when the answer depends on it)
    ARGV[3] the container's time (epoch ms)
    ARGV[4] startsAt as the container knows it (epoch ms), needed by "redis-first"
    ARGV[5] drain mark lifetime (ms): a winner who finds no drain marked running marks one and starts it

  Output: { code, a, b, c, remaining, seq, startsAt, endsAt, total, redisNowMs }
    the coupon as read (-1 each when the state was not read), and Redis' time (0 when not asked), from
    which the container learns the coupon and its clock's offset to Redis'. Codes: lib/redis/replies.ts.
    code  1 ACCEPTED          a = ticket, b = 1 when the caller must start a drain else 0
    With several shards (databases), seq counts this shard's winners and the ticket interleaves the
    shards, (seq - 1) * shards + shard + 1, so that no two shards give the same ticket; one shard gives
    1, 2, 3, ...
    code  2 ALREADY_ACCEPTED  a = ticket, b = "PENDING" | "ISSUED", c = issuedAtMs (0 while pending)
    code -1 COUPON_NOT_FOUND  no state in Redis (never created, or lost): nothing else is returned
    code -2 NOT_OPEN          a = startsAt
    code -3 ENDED
    code -4 SOLD_OUT          (also for a winner the ledger rejected: there was no unit left)

  The repeat check comes before the window and stock checks, so a double click is never mistaken for a
  new request, and before the decrement, so a repeat can never leak a unit. A unit is taken only after
  startsAt, so remaining at 0 with tickets given (seq > 0) means the coupon is open and sold out.
]]
--@include redis-now
--@include entry

local stateKey = KEYS[1]
local queueKey = KEYS[2]

local userId = ARGV[1]
local clock = ARGV[2]
local containerNow = tonumber(ARGV[3])
local drainMarkMs = tonumber(ARGV[5])

local now = nil
local redisNow = 0
if clock == "redis-first" then
  redisNow = redisNowMs()
  now = redisNow
  local knownStart = tonumber(ARGV[4])
  if knownStart and now < knownStart then
    return { -2, knownStart, 0, 0, -1, -1, -1, -1, -1, redisNow }
  end
elseif clock == "container" then
  now = containerNow
end

local field = userField(userId)
local s = redis.call("HMGET", stateKey, "remaining", "seq", "startsAt", "endsAt", "total", "drain", field, "shard", "shards")
local remaining = tonumber(s[1])
if remaining == nil then
  return { -1 }
end
local seq = tonumber(s[2])
local startsAt = tonumber(s[3])
local endsAt = tonumber(s[4])
local total = tonumber(s[5])
local function reply(code, a, b, c)
  return { code, a or 0, b or 0, c or 0, remaining, seq, startsAt, endsAt, total, redisNow }
end

local entry = s[7]
if entry then
  local ticket, _, outcome = parseEntry(entry)
  if not outcome then
    return reply(2, ticket, "PENDING", 0)
  end
  if outcome == "R" then
    return reply(-4)
  end
  return reply(2, ticket, "ISSUED", tonumber(string.sub(outcome, 3)))
end

if not now then
  if remaining <= 0 and seq > 0 and endsAt == 0 then
    return reply(-4)
  end
  redisNow = redisNowMs()
  now = redisNow
end
if now < startsAt then
  return reply(-2, startsAt)
end
if endsAt > 0 and now >= endsAt then
  return reply(-3)
end
if remaining <= 0 then
  return reply(-4)
end

remaining = remaining - 1
seq = seq + 1
local ticket = (seq - 1) * (tonumber(s[9]) or 1) + (tonumber(s[8]) or 0) + 1
local startDrain = 0
if (tonumber(s[6]) or 0) <= now then
  startDrain = 1
  redis.call("HSET", stateKey, "remaining", remaining, "seq", seq, field, entryOf(ticket, now, nil), "drain", now + drainMarkMs)
else
  redis.call("HSET", stateKey, "remaining", remaining, "seq", seq, field, entryOf(ticket, now, nil))
end
redis.call("ZADD", queueKey, ticket, userId)
return reply(1, ticket, startDrain)
