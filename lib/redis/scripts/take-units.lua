#!lua flags=allow-key-locking
--[[
  Take the units another shard gave (give-units.lua) into this shard's remaining. Idempotent by the
  transfer's id, so a transfer completed twice (its giver and reconcile racing) credits once.

  Input:
    KEYS[1] state      HASH remaining, ...
    KEYS[2] transfers  HASH transferId -> "out:..." | "in:<units>:<fromShard>"

    ARGV[1] transferId
    ARGV[2] units
    ARGV[3] the giver's shard index

  Output:
    the units taken (0 when this transfer was taken before);
    -1 NO_STATE when the coupon has no state here (lib/redis/replies.ts)
]]
local stateKey = KEYS[1]
local transfersKey = KEYS[2]

if redis.call("HEXISTS", stateKey, "total") == 0 then
  return -1
end
if redis.call("HSETNX", transfersKey, ARGV[1], "in:" .. ARGV[2] .. ":" .. ARGV[3]) == 0 then
  return 0
end
redis.call("HINCRBY", stateKey, "remaining", tonumber(ARGV[2]))
return tonumber(ARGV[2])
