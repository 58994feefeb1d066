#!lua flags=allow-key-locking
--[[
  Load a coupon's state into Redis (after creating it, or when rebuilding it from the ledger), and put
  it in the index the scheduled drain walks, in the same step: a coupon with state is always visited.
  Winners, if any, are restored first by restore-winners.lua; the coupon's own fields come last because
  their presence ("total") is what opens the coupon to admissions and claims.

  Input:
    KEYS[1] state      HASH total, remaining, seq, startsAt, endsAt, epoch, shard, shards, ...
    KEYS[2] index      SET of coupon ids with state (not hash-tagged: see keys.ts)

    ARGV[1] total quantity
    ARGV[2] remaining units
    ARGV[3] seq: the highest ticket already given
    ARGV[4] startsAt (epoch ms)
    ARGV[5] endsAt (epoch ms, 0 = no end)
    ARGV[6] epoch: the ledger's rebuild generation of this shard's state
    ARGV[7] couponId
    ARGV[8] this database's shard index (0-based)
    ARGV[9] the number of shards (databases) the coupon is spread over

  Output:
    1 when loaded, 0 when the coupon already had state (left untouched)
]]
local stateKey = KEYS[1]
local indexKey = KEYS[2]
redis.call("SADD", indexKey, ARGV[7])
if redis.call("HEXISTS", stateKey, "total") == 1 then
  return 0
end
redis.call("HSET", stateKey, "total", ARGV[1], "remaining", ARGV[2], "seq", ARGV[3], "startsAt", ARGV[4], "endsAt", ARGV[5], "epoch", ARGV[6],
  "shard", ARGV[8], "shards", ARGV[9])
return 1
