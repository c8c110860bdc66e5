-- Settle a request: release its reservation, give back to each token bucket what it did not
-- use (or take what it used beyond it), and raise the gateway ledger's cumulative counter.
--
-- KEYS[1] usage hash   KEYS[2] leases   KEYS[3..] token buckets
-- ARGV[1] reservation id ('' = no reservation: the bucket adjustments apply unconditionally)
-- ARGV[2] counter field ('' = none)   ARGV[3] the ledger's cumulative tokens for this
--         (tenant, period): a counter only rises, so a repeated or late call counts nothing twice
-- ARGV[4] when the usage keys expire (unix ms)
-- ARGV[5..] per bucket: capacity, tokens to give back (negative: to take)
--
-- The adjustments happen once per reservation (a retried settle finds it gone); returns
-- {1 if the reservation was open, the period's settled sum}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local usage, leases = KEYS[1], KEYS[2]
local id, counter, value = ARGV[1], ARGV[2], tonumber(ARGV[3])
local expire_at = tonumber(ARGV[4])
local nb = (#ARGV - 4) / 2

local open = 0
if id ~= '' then
  local held = redis.call('HGET', usage, 'r:' .. id)
  if held then
    open = 1
    redis.call('HINCRBY', usage, 'reserved', -tonumber(held))
    redis.call('HDEL', usage, 'r:' .. id)
    redis.call('ZREM', leases, id)
  end
end

if id == '' or open == 1 then
  for i = 1, nb do
    local cap, back = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
    if back ~= 0 then
      local rate = cap / 60000
      local level = cap
      local raw = redis.call('GET', KEYS[2 + i])
      if raw then
        local l, u = string.match(raw, '^(%S+) (%S+)$')
        level = math.min(cap, tonumber(l) + math.max(0, now - tonumber(u)) * rate)
      end
      level = math.min(cap, level + back)
      if level < cap then
        local full_in = math.ceil((cap - level) / rate)
        redis.call('SET', KEYS[2 + i], tostring(level) .. ' ' .. tostring(now), 'PX', full_in + 1000)
      else
        redis.call('DEL', KEYS[2 + i])
      end
    end
  end
end

if counter ~= '' then
  local current = tonumber(redis.call('HGET', usage, counter) or '0')
  if value > current then
    redis.call('HSET', usage, counter, value)
    redis.call('HINCRBY', usage, 'sum', value - current)
  end
  redis.call('PEXPIREAT', usage, expire_at)
end
return {open, tonumber(redis.call('HGET', usage, 'sum') or '0')}
