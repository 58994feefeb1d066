-- A winner's entry in the coupon's state hash, field "u:<userId>": "<ticket>:<requestedAtMs>" while
-- pending, then "<ticket>:<requestedAtMs>:I:<issuedAtMs>" once persisted or "<ticket>:<requestedAtMs>:R"
-- once the ledger's cap refused it. lib/redis/codec.ts reads and writes the same encoding.
local function userField(userId)
  return "u:" .. userId
end

-- ticket (number), requestedAt (string of digits), outcome ("I:<issuedAtMs>" | "R" | nil)
local function parseEntry(entry)
  local ticket, requestedAt, outcome = string.match(entry, "^(%d+):(%d+):?(.*)$")
  if outcome == "" then
    outcome = nil
  end
  return tonumber(ticket), requestedAt, outcome
end

local function entryOf(ticket, requestedAt, outcome)
  if outcome then
    return ticket .. ":" .. requestedAt .. ":" .. outcome
  end
  return ticket .. ":" .. requestedAt
end

-- The state hash's fields of these users' entries, in the same order.
local function userFields(userIds)
  local fields = {}
  for i, userId in ipairs(userIds) do
    fields[i] = userField(userId)
  end
  return fields
end
