#!lua flags=allow-key-locking
--[[
  Release a lock only if the caller still holds it. A holder that outlived the lock's TTL finds another
  caller's token there and must leave it alone, or a third caller would take the lock while the second
  still works under it.

  Input:
    KEYS[1] lock       STRING holding the holder's token, with a TTL

    ARGV[1] the token this caller locked with

  Output:
    1 when released, 0 when the lock had expired or belongs to another holder
]]
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call("DEL", KEYS[1])
return 1
