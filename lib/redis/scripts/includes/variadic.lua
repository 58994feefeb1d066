-- One billed call for many members: `command key arg1 arg2 ...`. Upstash bills each call whatever its
-- arity, so a batch costs one call per command instead of one per item. Sent in chunks small enough for
-- Lua's unpack (its C stack holds about 8,000 values); the chunk size is even, so pairs (ZADD's
-- score member, HSET's field value) are never split. Array replies (HMGET, ZMSCORE) are concatenated,
-- a missing value kept as false (Redis' Lua conversion of nil); integer replies (ZREM, HDEL) summed.
-- Nothing is called for no arguments (nil is returned).
local VARIADIC_CHUNK = 4000

local function callVariadic(command, key, args)
  if #args == 0 then
    return nil
  end
  local result = nil
  for first = 1, #args, VARIADIC_CHUNK do
    local reply = redis.call(command, key, unpack(args, first, math.min(first + VARIADIC_CHUNK - 1, #args)))
    if type(reply) == "table" then
      result = result or {}
      for _, value in ipairs(reply) do
        result[#result + 1] = value
      end
    else
      result = (result or 0) + reply
    end
  end
  return result
end
