#!lua flags=no-writes,allow-key-locking
--[[
  Read one user's standing on one coupon (read-only).

  Input:
    KEYS[1] state      HASH total, ... and u:<userId> -> entry

    ARGV[1] userId

  Output: (codes: lib/redis/replies.ts)
    { -1 }           NO_STATE       the coupon has no state in Redis
    { 0 }            NOT_REQUESTED  the user has no ticket
    { 1, entry }     WON            the user won; their entry (codec.ts)
]]
--@include entry

local s = redis.call("HMGET", KEYS[1], "total", userField(ARGV[1]))
if not s[1] then
  return { -1 }
end
if not s[2] then
  return { 0 }
end
return { 1, s[2] }
