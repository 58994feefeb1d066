#!lua flags=allow-key-locking
--[[
  End a transfer on the giver's side once the recipient has taken its units (take-units.lua): the
  record of units in transit goes.

  Input:
    KEYS[1] transfers  HASH transferId -> "out:<units>:<toShard>:<atMs>" | ...

    ARGV[1] transferId

  Output:
    1 when the record was removed, 0 when it was not there
]]
return redis.call("HDEL", KEYS[1], ARGV[1])
