#!lua flags=allow-key-locking
--[[
  Correct a coupon's remaining units (found by reconcile), only if nothing changed it since it was read.

  Input:
    KEYS[1] state      HASH remaining, ...

    ARGV[1] remaining as read
    ARGV[2] remaining to set

  Output:
    1 when set, 0 when remaining had changed meanwhile (run reconcile again)
]]
if redis.call("HGET", KEYS[1], "remaining") ~= ARGV[1] then
  return 0
end
redis.call("HSET", KEYS[1], "remaining", ARGV[2])
return 1
