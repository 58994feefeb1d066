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

-- Back to the queue, by their ticket (so ticket order holds), the users among `userIds` who still wait
-- for the ledger: an entry without an outcome. One a drain persisted meanwhile, or one without an entry,
-- needs nothing more. Returns how many went back. Needs entry and variadic.
local function requeueUndecided(stateKey, queueKey, userIds)
  local entries = callVariadic("HMGET", stateKey, userFields(userIds))
  local back = {}
  local count = 0
  for i, userId in ipairs(userIds) do
    if entries[i] then
      local ticket, _, outcome = parseEntry(entries[i])
      if not outcome then
        back[#back + 1] = ticket
        back[#back + 1] = userId
        count = count + 1
      end
    end
  end
  callVariadic("ZADD", queueKey, back)
  return count
end
