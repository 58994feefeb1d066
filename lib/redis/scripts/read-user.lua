--[[
  Read one user's standing on one coupon (read-only).

  Input:
    KEYS[1] meta       HASH total, remaining, ...
    KEYS[2] tickets    HASH userId -> "<ticket>:<requestedAtMs>"
    KEYS[3] outcomes   HASH userId -> "I:<issuedAtMs>" | "R"

    ARGV[1] userId

  Output:
    { -1 }                           the coupon has no state in Redis
    { 0 }                            the user has no ticket
    { 1, ticket, outcome | false }   the user won; outcome as stored, or absent while pending
]]
if redis.call("EXISTS", KEYS[1]) == 0 then
  return { -1 }
end
local entry = redis.call("HGET", KEYS[2], ARGV[1])
if not entry then
  return { 0 }
end
return { 1, tonumber(string.match(entry, "^(%d+)")), redis.call("HGET", KEYS[3], ARGV[1]) }
