#!lua flags=allow-key-locking
--[[
  Restore persisted winners from the ledger into a coupon's Redis state, so that they are answered
  ALREADY_ACCEPTED / ISSUED and never admitted again. A winner Redis already has keeps its ticket and
  is marked ISSUED.

  Input:
    KEYS[1] state      HASH u:<userId> -> entry, ...

    ARGV[3k-2] userId, ARGV[3k-1] ticket, ARGV[3k] "<requestedAtMs>:I:<issuedAtMs>", for each winner

  Output:
    number of winners that were missing and are now restored
]]
--@include entry

local stateKey = KEYS[1]

local restored = 0
for i = 1, #ARGV, 3 do
  local field = userField(ARGV[i])
  local entry = redis.call("HGET", stateKey, field)
  if entry then
    local ticket = parseEntry(entry)
    redis.call("HSET", stateKey, field, ticket .. ":" .. ARGV[i + 2])
  else
    redis.call("HSET", stateKey, field, ARGV[i + 1] .. ":" .. ARGV[i + 2])
    restored = restored + 1
  end
end
return restored
