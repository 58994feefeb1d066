#!lua flags=allow-key-locking
--[[
  Give some of this shard's units to another shard that ran out (the first half of a transfer; the
  recipient's take-units.lua is the second). The units leave `remaining` and are recorded as in transit
  under the transfer's id until settle-transfer.lua removes the record: a transfer whose giver died
  before the recipient took the units is found there and completed by reconcile or the schedule. A unit
  is never in two places: in transit it is in neither shard's remaining.

  Input:
    KEYS[1] state      HASH remaining, ...
    KEYS[2] transfers  HASH transferId -> "out:<units>:<toShard>:<atMs>" | "in:<units>:<fromShard>"

    ARGV[1] transferId (unique)
    ARGV[2] units wanted
    ARGV[3] the recipient's shard index

  Output:
    the units given (0 when this shard has none left);
    -1 NO_STATE when the coupon has no state here (lib/redis/replies.ts)
]]
--@include redis-now

local stateKey = KEYS[1]
local transfersKey = KEYS[2]

local remaining = tonumber(redis.call("HGET", stateKey, "remaining"))
if remaining == nil then
  return -1
end
local units = math.min(tonumber(ARGV[2]), remaining)
if units <= 0 then
  return 0
end
redis.call("HSET", stateKey, "remaining", remaining - units)
redis.call("HSET", transfersKey, ARGV[1], "out:" .. units .. ":" .. ARGV[3] .. ":" .. redisNowMs())
return units
