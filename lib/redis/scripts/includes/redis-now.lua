-- Redis' clock in epoch milliseconds (one billed call: TIME).
local function redisNowMs()
  local time = redis.call("TIME")
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
