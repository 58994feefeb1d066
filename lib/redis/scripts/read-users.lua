--[[
  Read some users' standing on one coupon at one instant (read-only): what reconcile checks again after
  its ledger scan, before it reports a difference.

  Input:
    KEYS[1] tickets    HASH userId -> "<ticket>:<requestedAtMs>"
    KEYS[2] outcomes   HASH userId -> "I:<issuedAtMs>" | "R"
    KEYS[3] queue      ZSET userId scored by ticket
    KEYS[4] inflight   ZSET userId scored by lease deadline
    KEYS[5] dead       ZSET userId scored by ticket

    ARGV[1..] userIds

  Output:
    { nowMs, then for each user, in order, five values: ticket entry or false, outcome or false,
      1 when queued else 0, lease deadline when in flight else false, 1 when dead-lettered else 0 }
]]
local time = redis.call("TIME")
local result = { tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) }
for _, userId in ipairs(ARGV) do
  result[#result + 1] = redis.call("HGET", KEYS[1], userId)
  result[#result + 1] = redis.call("HGET", KEYS[2], userId)
  result[#result + 1] = redis.call("ZSCORE", KEYS[3], userId) and 1 or 0
  local lease = redis.call("ZSCORE", KEYS[4], userId)
  result[#result + 1] = lease and tonumber(lease) or false
  result[#result + 1] = redis.call("ZSCORE", KEYS[5], userId) and 1 or 0
end
return result
