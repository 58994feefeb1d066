-- The claimed users still in flight under the caller's lease (their score in the in-flight ZSET is the
-- claim's lease deadline), taken out of flight in the same step. Users a later claim took back carry
-- another deadline and are left alone: a drain that lost its lease changes nothing. Needs variadic.
local function takeHeld(inflightKey, userIds, leaseDeadline)
  local held = {}
  local scores = callVariadic("ZMSCORE", inflightKey, userIds) or {}
  for i, userId in ipairs(userIds) do
    if tonumber(scores[i]) == leaseDeadline then
      held[#held + 1] = userId
    end
  end
  if #held > 0 then
    callVariadic("ZREM", inflightKey, held)
  end
  return held
end
