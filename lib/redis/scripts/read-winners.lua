#!lua flags=no-writes,allow-key-locking
--[[
  Read every user who holds an entry on a coupon (read-only), for a container that learned the coupon
  is sold out: it then answers SOLD_OUT by itself to anyone else, and sends only winners to Redis.
  Read once per container and per change of seq (a freed unit sold again), not per request.

  Input:
    KEYS[1] state      HASH seq, ... and u:<userId> -> entry

  Output: (codes: lib/redis/replies.ts)
    { -1 } NO_STATE               the coupon has no state in Redis, else
    { seq, field1, field2, ... }  every field of the state (u:<userId> for users; the coupon's own
                                  fields are the caller's to skip)
]]
local seq = redis.call("HGET", KEYS[1], "seq")
if not seq then
  return { -1 }
end
local result = redis.call("HKEYS", KEYS[1])
table.insert(result, 1, tonumber(seq))
return result
