-- Reserve one request atomically against every limit, or refuse it and take nothing.
--
-- KEYS[1]  usage hash of (tenant, period): sum, floor, reserved, c:<counter> (cumulative usage
--          of one gateway ledger), r:<reservation id> (open reservations)
-- KEYS[2]  sorted set of open reservations by lease deadline (ms)
-- KEYS[3..] rate buckets: "<level> <updated ms>", a token bucket holding a minute's allowance
--          that refills continuously; a missing key is a full bucket
-- ARGV[1] reservation id   ARGV[2] tokens to reserve (prompt estimate + max tokens)
-- ARGV[3] usage limit of the period (-1: none)   ARGV[4] usage floor (Tenant.status)
-- ARGV[5] when the usage keys expire (unix ms)    ARGV[6] lease of a reservation (ms)
-- ARGV[7] "1": take without checking (a request admitted while the store was unreachable)
-- ARGV[8..] per bucket: capacity, cost
--
-- Returns {status, wait ms, refusing bucket, used, reserved, then remaining and reset ms of each
-- bucket}; status 1 admitted (or already reserved under this id), 0 a rate limit refused,
-- -1 the usage limit refused. The clock is the store's own (TIME), so gateways' clocks do not
-- matter; a bucket's key expires when it would be full again, so idle keys vanish.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local usage, leases = KEYS[1], KEYS[2]
local id, tokens = ARGV[1], tonumber(ARGV[2])
local limit, floor = tonumber(ARGV[3]), tonumber(ARGV[4])
local expire_at, lease, force = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] == '1'
local nb = (#ARGV - 7) / 2

-- Leases that ran out belong to gateways that died mid-request: free what they held.
local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 64)
for _, rid in ipairs(expired) do
  local held = redis.call('HGET', usage, 'r:' .. rid)
  if held then
    redis.call('HINCRBY', usage, 'reserved', -tonumber(held))
    redis.call('HDEL', usage, 'r:' .. rid)
  end
  redis.call('ZREM', leases, rid)
end

local state = redis.call('HMGET', usage, 'sum', 'floor', 'reserved', 'r:' .. id)
local sum, known_floor = tonumber(state[1] or '0'), tonumber(state[2] or '0')
local reserved = tonumber(state[3] or '0')
if floor > known_floor then
  redis.call('HSET', usage, 'floor', floor)
  known_floor = floor
end
local used = math.max(sum, known_floor)

local levels, report = {}, {}
local wait, refusing = 0, 0
for i = 1, nb do
  local cap, cost = tonumber(ARGV[6 + 2 * i]), tonumber(ARGV[7 + 2 * i])
  local rate = cap / 60000
  local level = cap
  local raw = redis.call('GET', KEYS[2 + i])
  if raw then
    local l, u = string.match(raw, '^(%S+) (%S+)$')
    level = math.min(cap, tonumber(l) + math.max(0, now - tonumber(u)) * rate)
  end
  levels[i] = level
  local need = math.min(cost, cap)
  if level < need and (need - level) / rate > wait then
    wait, refusing = (need - level) / rate, i
  end
end

local function remaining(after)
  for i = 1, nb do
    local cap = tonumber(ARGV[6 + 2 * i])
    local level = levels[i] - after[i]
    report[2 * i - 1] = math.floor(math.max(0, level))
    report[2 * i] = math.ceil(math.max(0, cap - level) / (cap / 60000))
  end
  return report
end

local nothing = {}
for i = 1, nb do nothing[i] = 0 end

if state[4] then  -- a retried call: this id holds its reservation already
  return {1, 0, 0, used, reserved, unpack(remaining(nothing))}
end
if not force and refusing > 0 then
  return {0, math.ceil(wait), refusing, used, reserved, unpack(remaining(nothing))}
end
if not force and limit >= 0 and used + reserved + tokens > limit then
  return {-1, 0, 0, used, reserved, unpack(remaining(nothing))}
end

local taken = {}
for i = 1, nb do
  local cap, cost = tonumber(ARGV[6 + 2 * i]), tonumber(ARGV[7 + 2 * i])
  taken[i] = cost
  local level = levels[i] - cost
  if level < cap then
    local full_in = math.ceil((cap - level) / (cap / 60000))
    redis.call('SET', KEYS[2 + i], tostring(level) .. ' ' .. tostring(now), 'PX', full_in + 1000)
  end
end
redis.call('HSET', usage, 'r:' .. id, tokens)
redis.call('HINCRBY', usage, 'reserved', tokens)
redis.call('ZADD', leases, now + lease, id)
redis.call('PEXPIREAT', usage, expire_at)
redis.call('PEXPIREAT', leases, expire_at)
return {1, 0, 0, used, reserved + tokens, unpack(remaining(taken))}
