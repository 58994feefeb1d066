#!lua flags=allow-key-locking
--[[
  Take a coupon out of the index the scheduled drain walks, once nothing is left for a drain to do.

  Checked in the same step as the removal, so that nothing can slip in between: nothing queued, in
  flight or dead-lettered, and no rebuild under way (a rebuild holds the lock from before it loads the
  state until after). Every script that queues work or loads state indexes the coupon in its own step,
  so work added after this removal brings the coupon back.

  Input:
    KEYS[1] index       SET of coupon ids with state (not hash-tagged: see keys.ts)
    KEYS[2] state       HASH
    KEYS[3] queue       ZSET
    KEYS[4] inflight    ZSET
    KEYS[5] dead        ZSET
    KEYS[6] rebuildLock STRING

    ARGV[1] couponId
    ARGV[2] "SETTLED": the caller found the coupon finished or ended; "STATELESS": the caller found no
            state, which must still hold (a restore may have loaded it since)

  Output:
    1 when removed, 0 when kept
]]
if ARGV[2] == "STATELESS" and redis.call("HEXISTS", KEYS[2], "total") == 1 then
  return 0
end
if redis.call("EXISTS", KEYS[3]) == 1 or redis.call("EXISTS", KEYS[4]) == 1 or redis.call("EXISTS", KEYS[5]) == 1
  or redis.call("EXISTS", KEYS[6]) == 1 then
  return 0
end
return redis.call("SREM", KEYS[1], ARGV[1])
