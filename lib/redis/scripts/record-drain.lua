#!lua flags=allow-key-locking
--[[
  Count what a drain did, for the live operator page: the running totals of every drain of this shard,
  and the persist lag (accepted to written in the ledger) of its latest batch. Called alongside the
  batch's own acknowledgement or release, not after it. Only counters that moved are written.

  Input:
    KEYS[1] live       HASH; fields written here: issued, redelivered, rejected, deadLettered,
                       throttled, stale (running totals), lag:<shard> -> "<p50Ms>,<p99Ms>,<maxMs>|<atMs>"

    ARGV[1] shard
    ARGV[2] "<p50Ms>,<p99Ms>,<maxMs>|<atMs>" of the batch's written items, or "" when none was written
    ARGV[3..] counter name, increment, ...

  Output:
    number of counters incremented
]]

local incremented = 0
for i = 3, #ARGV, 2 do
  local by = tonumber(ARGV[i + 1])
  if by and by ~= 0 then
    redis.call("HINCRBY", KEYS[1], ARGV[i], by)
    incremented = incremented + 1
  end
end
if ARGV[2] ~= "" then
  redis.call("HSET", KEYS[1], "lag:" .. ARGV[1], ARGV[2])
end
return incremented
