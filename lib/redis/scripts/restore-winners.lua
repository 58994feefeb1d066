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
--@include variadic

local stateKey = KEYS[1]

local users = {}
for i = 1, #ARGV, 3 do
  users[#users + 1] = ARGV[i]
end
local entries = callVariadic("HMGET", stateKey, userFields(users)) or {}
local restored = 0
local updates = {}
for k, userId in ipairs(users) do
  local i = 3 * k - 2
  local ticket = ARGV[i + 1]
  if entries[k] then
    ticket = parseEntry(entries[k])
  else
    restored = restored + 1
  end
  updates[#updates + 1] = userField(userId)
  updates[#updates + 1] = ticket .. ":" .. ARGV[i + 2]
end
callVariadic("HSET", stateKey, updates)
return restored
