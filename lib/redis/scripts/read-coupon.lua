#!lua flags=no-writes,allow-key-locking
--[[
  Read a coupon's live counters in this shard (read-only).

  Input:
    KEYS[1] state      HASH total, remaining, seq, startsAt, endsAt, shard, shards, ...
    KEYS[2] queue      ZSET
    KEYS[3] inflight   ZSET
    KEYS[4] dead       ZSET
    KEYS[5] transfers  HASH transferId -> "out:<units>:<toShard>:<atMs>" | "in:..."

  Output: (codes: lib/redis/replies.ts)
    { -1 } NO_STATE when the coupon has no state in Redis, else
    { 1 FOUND, total, remaining, seq, startsAt, endsAt, queued, inflight, deadLettered, nowMs, shard, shards,
      inTransit }
    inTransit: units this shard gave that no recipient has taken yet (see give-units.lua)
]]
--@include redis-now
--@include coupon-counters

return couponCounters(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
