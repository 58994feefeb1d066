--[[
  Restore persisted winners from the ledger into a coupon's Redis state, so that they are answered
  ALREADY_ACCEPTED / ISSUED and never admitted again. Existing entries are kept (HSETNX).

  Input:
    KEYS[1] tickets    HASH userId -> "<ticket>:<requestedAtMs>"
    KEYS[2] outcomes   HASH userId -> "I:<issuedAtMs>" | "R"

    ARGV[3k-2] userId, ARGV[3k-1] "<ticket>:<requestedAtMs>", ARGV[3k] "I:<issuedAtMs>", for each winner

  Output:
    number of winners that were missing and are now restored
]]
local ticketsKey = KEYS[1]
local outcomesKey = KEYS[2]

local restored = 0
for i = 1, #ARGV, 3 do
  local userId = ARGV[i]
  restored = restored + redis.call("HSETNX", ticketsKey, userId, ARGV[i + 1])
  redis.call("HSET", outcomesKey, userId, ARGV[i + 2])
end
return restored
